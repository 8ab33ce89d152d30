"""Runs mypy over the package as it installs (``ringkernel.ringir`` from ``ringir/``, ...).

mypy cannot follow setuptools' ``package-dir`` mapping or its editable-install
import hook, so this builds the installed layout out of symlinks in a temporary
folder, runs mypy there and prints paths as they are in the checkout.

    python tools/typecheck.py            # the configured strictness per package (pyproject.toml)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("ringir", "frontends", "lowering", "runtime")


def build_tree(into: Path) -> Path:
    package = into / "ringkernel"
    package.mkdir()
    for source in (ROOT / "ringkernel").glob("*.py"):
        (package / source.name).symlink_to(source)
    for folder in (ROOT / "ringkernel").glob("*/__init__.py"):  # subpackages kept in ringkernel/ itself
        (package / folder.parent.name).symlink_to(folder.parent, target_is_directory=True)
    for folder in SUBPACKAGES:
        (package / folder).symlink_to(ROOT / folder, target_is_directory=True)
    return package


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ringkernel-mypy-") as tmp:
        build_tree(Path(tmp))
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p", "ringkernel"],
            cwd=tmp, capture_output=True, text=True,
        )
    for folder in SUBPACKAGES:
        result.stdout = result.stdout.replace(f"ringkernel/{folder}/", f"{folder}/")
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
