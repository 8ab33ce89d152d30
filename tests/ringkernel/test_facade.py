"""The lazy facade: every public name resolves to what it names, in any import order."""

from __future__ import annotations

import subprocess
import sys
import types

import ringkernel as rk


def test_every_public_name_resolves() -> None:
    for name in rk.__all__:
        value = getattr(rk, name)
        assert not isinstance(value, types.ModuleType) or name == "ringir", name


def test_submodules_never_shadow_public_names() -> None:
    """Importing a facade submodule first must not replace a decorator of the same name."""
    probe = (
        "import ringkernel.kernels, ringkernel.actors, ringkernel.compiler, ringkernel.cache\n"
        "import ringkernel as rk, types\n"
        "bad = [n for n in rk.__all__ if n != 'ringir' and isinstance(getattr(rk, n), types.ModuleType)]\n"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        rk.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("rk.no_such_thing resolved")
