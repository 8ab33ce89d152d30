"""One jinja2 setup and one template convention for every text backend.

Templates hold target syntax; Python holds decisions.  Each target keeps its
templates in its package's ``templates/`` folder and gets its environment
from :func:`environment` (autoescape off: the output is source code, not
HTML; undefined names are errors; a block tag eats the line break after it
and the indentation before it, so a template writes ``+%}`` where it wants
that line break kept).

The convention between an emitter and its templates:

- expressions: a macro of ``expressions.j2`` per form, called from Python
  with operands already rendered, returns the expression's text;
- statements: the emitter builds ``kind``-tagged dicts (``{"kind": "assign",
  "target": ..., "expr": ...}``, bodies as lists of such dicts) and the
  ``stmt`` macro of ``statements.j2`` renders one by its ``kind`` (its
  ``block`` macro a list), so a statement's syntax lives in one place;
- helpers and module layout: ``helpers.j2`` and ``module.j2``.

A template reaching a case the emitter should never produce calls
``raise(message)``, which fails loudly instead of printing half a program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, cast

import jinja2

Statement = dict[str, Any]
"""A statement for a target's ``statements.j2``: its ``kind`` picks the form."""


class Macros(Protocol):
    """A template's macros as Python callables; each returns the text it renders."""

    def __getattr__(self, name: str) -> Callable[..., str]: ...


def _raise(message: str) -> None:
    raise AssertionError(message)


@functools.cache
def environment(package: str) -> jinja2.Environment:
    """The jinja2 environment for the templates of ``package`` (e.g. ``ringkernel.lowering.msl``)."""
    return make_environment(jinja2.PackageLoader(package, "templates"))


def make_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """An environment with the shared settings over any loader (tests patch templates this way)."""
    env = jinja2.Environment(
        loader=loader,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["raise"] = _raise
    return env


def macros(package: str, template: str) -> Macros:
    """The macros of one template of ``package``, callable from Python."""
    # jinja2 adds a template's macros to its module as attributes at run time.
    return cast(Macros, environment(package).get_template(template).module)


def render(package: str, template: str, **context: Any) -> str:
    """``template`` of ``package`` rendered with ``context``."""
    return environment(package).get_template(template).render(**context)
