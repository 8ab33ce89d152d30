"""The pass manager: a named, ordered list of module -> module passes.

``RINGKERNEL_DUMP_IR`` prints the module to stderr after chosen passes:
``after:<pass>`` (several separated by commas) or ``all``.  The dump is RingIR
text under a ``#`` comment line, so it parses back as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from ringkernel.ringir.nodes import Module
from ringkernel.ringir.passes.constfold import fold_constants
from ringkernel.ringir.passes.dce import eliminate_dead_code
from ringkernel.ringir.verifier import verify

DUMP_ENV = "RINGKERNEL_DUMP_IR"


@dataclass(frozen=True)
class Pass:
    """One step of a pipeline, named for ``RINGKERNEL_DUMP_IR``."""

    name: str
    run: Callable[[Module], Module]


class PassManager:
    """Runs passes in order, dumping the IR after those ``RINGKERNEL_DUMP_IR`` names."""

    def __init__(self, passes: tuple[Pass, ...] | list[Pass]) -> None:
        self.passes = tuple(passes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.passes)

    def run(self, module: Module, stream: TextIO | None = None) -> Module:
        dump = self._dump_set(stream)
        for p in self.passes:
            module = p.run(module)
            if p.name in dump:
                out = stream or sys.stderr
                out.write(f"# RingIR after pass '{p.name}'\n{module}")
                out.flush()
        return module

    def _dump_set(self, stream: TextIO | None) -> set[str]:
        spec = os.environ.get(DUMP_ENV, "").strip()
        if not spec:
            return set()
        if spec == "all":
            return set(self.names)
        wanted = set()
        for item in spec.split(","):
            name = item.strip().removeprefix("after:")
            if name in self.names:
                wanted.add(name)
            else:
                (stream or sys.stderr).write(
                    f"{DUMP_ENV}: ignoring '{item.strip()}'; use 'all' or 'after:<pass>' "
                    f"with a pass among: {', '.join(dict.fromkeys(self.names))}\n"
                )
        return wanted


DEFAULT_PASSES = (
    Pass("constfold", fold_constants),
    Pass("dce", eliminate_dead_code),
    Pass("verify-final", verify),
)
"""The standard pipeline every compile runs before lowering.

The driver verifies its input; the final verify checks what the passes made.
"""


def run_default_pipeline(module: Module, stream: TextIO | None = None) -> Module:
    """Verifies, folds constants, removes dead code and verifies again."""
    return PassManager(DEFAULT_PASSES).run(module, stream)
