"""The import layering of DESIGN.md "Layering", enforced by scanning every import of the tree.

ringir/ imports nothing of the project above it; frontends/ imports ringir/;
lowering/ imports ringir/ (and itself); runtime/ imports lowering/ and
ringir/; only the facade (ringkernel/) imports everything.  Within lowering/
each target imports only itself and the shared cores (``lowering.common``,
and ``lowering.llvm``, which PTX is built on); the shared cores import no
target, so there is no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {  # folder -> the package it installs as
    "ringir": "ringkernel.ringir",
    "frontends": "ringkernel.frontends",
    "lowering": "ringkernel.lowering",
    "runtime": "ringkernel.runtime",
    "ringkernel": "ringkernel",
}
ALLOWED = {  # layer -> the layers it may import
    "ringkernel.ringir": {"ringkernel.ringir"},
    "ringkernel.frontends": {"ringkernel.ringir", "ringkernel.frontends"},
    "ringkernel.lowering": {"ringkernel.ringir", "ringkernel.lowering"},
    "ringkernel.runtime": {"ringkernel.ringir", "ringkernel.lowering", "ringkernel.runtime"},
}
LAYERS = tuple(ALLOWED)
SHARED_CORES = ("common", "llvm")  # lowering packages every target may build on

# Imports that still run against the rules, each to be removed by the work that owns it.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def layer_of(module: str) -> str | None:
    for layer in LAYERS:
        if module == layer or module.startswith(layer + "."):
            return layer
    return "ringkernel" if module == "ringkernel" or module.startswith("ringkernel.") else None


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [p for p in rest if p != "__init__"]
    return ".".join([FOLDERS[folder], *parts])


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every project module ``path`` imports (absolute and relative), with its line."""
    me = module_name(path)
    package = me.split(".") if path.name == "__init__.py" else me.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            target = ".".join(p for p in (base, node.module or "") if p)
            if node.module:
                found.append((node.lineno, target))
            else:
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def project_files() -> list[Path]:
    return sorted(f for folder in FOLDERS for f in (ROOT / folder).rglob("*.py"))


def lowering_target(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["ringkernel", "lowering"] else None


def test_every_import_respects_the_layering() -> None:
    broken = []
    for path in project_files():
        me = module_name(path)
        mine = layer_of(me)
        for line, target in imports_of(path):
            theirs = layer_of(target)
            if theirs is None or (me, target) in KNOWN_VIOLATIONS:
                continue
            if mine in ALLOWED and theirs not in ALLOWED[mine]:
                broken.append(f"{path.relative_to(ROOT)}:{line}: {mine} imports {target}")
    assert not broken, "imports against DESIGN.md 'Layering':\n" + "\n".join(broken)


def test_lowering_targets_do_not_import_each_other() -> None:
    broken = []
    for path in project_files():
        me = module_name(path)
        mine = lowering_target(me)
        if mine is None:
            continue
        for line, target in imports_of(path):
            theirs = lowering_target(target)
            shared = ("common",) if mine in SHARED_CORES else SHARED_CORES
            if theirs not in (None, mine, *shared):
                broken.append(f"{path.relative_to(ROOT)}:{line}: lowering.{mine} imports {target}")
    assert not broken, "\n".join(broken)


def test_known_violations_are_still_real() -> None:
    """An entry of KNOWN_VIOLATIONS that no longer occurs must be removed from the list."""
    seen = {(module_name(p), t) for p in project_files() for _, t in imports_of(p)}
    assert KNOWN_VIOLATIONS <= seen, sorted(KNOWN_VIOLATIONS - seen)


def test_importing_the_ir_loads_nothing_above_it() -> None:
    probe = (
        "import sys, ringkernel.ringir, ringkernel.ringir.passes\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('ringkernel')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    above = [m for m in loaded if m != "ringkernel" and layer_of(m) != "ringkernel.ringir"]
    assert not above, f"import ringkernel.ringir loaded {above}"


def test_importing_ringkernel_is_lazy() -> None:
    probe = "import sys, ringkernel\nprint('\\n'.join(m for m in sys.modules if m.startswith('ringkernel')))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert not [m for m in loaded if layer_of(m) in ("ringkernel.frontends", "ringkernel.runtime")]
    assert "ringkernel.lowering" not in " ".join(loaded)
