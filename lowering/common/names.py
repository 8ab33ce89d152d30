"""One namer for every text backend: user strings in, safe unique identifiers out.

As in naga's ``proc::Namer``, each target feeds the same :class:`Namer` its own
:class:`NamingRules` (its reserved-word list and how it spells a user string
as identifier characters).  Every name a backend prints comes either from a
namer or from the backend itself (generated names start with ``rk_`` or are
``t<n>``), so no user string can spell a keyword, a builtin, a generated name,
or anything but an identifier.  Names are handed out in call order, so equal
input gives equal output.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

GENERATED_PREFIX = "rk_"
"""Names the backends generate themselves start with this; user names never do."""

_IDENT = re.compile(r"[A-Za-z0-9_]+")
_INVALID = re.compile(r"[^A-Za-z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_MACRO_LIKE = re.compile(r"^[A-Z][A-Z0-9]*_[A-Z0-9_]*$")


def hashed_identifier(name: str) -> str:
    """``name`` as identifier characters; a name that needed changing gets a hash suffix.

    For targets that put a fixed prefix before every user name (so the result
    never starts with a digit and never meets a keyword or a generated name).
    """
    if _IDENT.fullmatch(name):
        return name
    cleaned = _INVALID.sub("_", name)
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned}_h{digest}"


def escaped_identifier(name: str, reserved: frozenset[str]) -> str:
    """A valid, non-reserved C-family identifier for ``name`` with no prefix of its own.

    Double underscores, a leading underscore or digit, a ``rk_`` start, a
    reserved word and a macro-like ALL_CAPS spelling are each escaped.
    """
    ident = _UNDERSCORES.sub("_", _INVALID.sub("_", name))
    if not ident or ident[0] == "_" or ident[0].isdigit():
        ident = "u" + ident
    if ident.lower().startswith(GENERATED_PREFIX):
        ident = "u" + ident
    if ident in reserved or _MACRO_LIKE.match(ident):
        ident = ident + "_u"
    return ident


@dataclass(frozen=True)
class NamingRules:
    """What one target forbids and how it turns a user string into identifier characters."""

    target: str
    reserved: frozenset[str]
    spell: Callable[[str], str]

    def sanitize(self, name: str) -> str:
        """``name`` as this target spells it (valid characters, not yet unique)."""
        return self.spell(name)


class Namer:
    """Hands out unique identifiers within one scope, in call order.

    ``fresh`` always gives a new name; ``name`` gives the same answer for the
    same ``(kind, original)`` pair.  A child scope (:meth:`scope`) starts with
    every name its parent has given so far.
    """

    def __init__(self, rules: NamingRules, taken: set[str] | frozenset[str] = frozenset()) -> None:
        self.rules = rules
        self.taken: set[str] = set(taken)
        self._given: dict[tuple[str, str], str] = {}

    def scope(self) -> Namer:
        """A namer for a nested scope: the names taken here stay taken there."""
        return Namer(self.rules, self.taken)

    def reserve(self, ident: str) -> None:
        """Marks ``ident`` (a name chosen outside the namer) as taken."""
        self.taken.add(ident)

    def fresh(self, original: str, prefix: str = "") -> str:
        """A new identifier: ``prefix`` + ``original`` as spelled, numbered if taken."""
        if prefix and not original:
            base = prefix.rstrip("_")
        else:
            base = prefix + self.rules.sanitize(original)
        candidate, n = base, 0
        while candidate in self.taken or candidate in self.rules.reserved:
            n += 1
            candidate = f"{base}_{n}"
        self.taken.add(candidate)
        return candidate

    def name(self, kind: str, original: str) -> str:
        """The identifier for ``original`` of ``kind``, the same on every call."""
        key = (kind, original)
        ident = self._given.get(key)
        if ident is None:
            ident = self._given[key] = self.fresh(original)
        return ident
