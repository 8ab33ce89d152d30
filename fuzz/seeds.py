"""Writes the small seed corpora under ``fuzz/corpus/<target>/`` (``python -m fuzz seeds``).

parser: the RingIR text of every kernel in ``tests/kernel_corpus.py`` and a
few generated modules; frontend: each corpus kernel as a standalone source
file (its imports, module constants, ``@rk.struct`` classes and every
``@rk.func``) plus the examples; ptx/wgsl/msl: a few byte strings (the generator gives any bytes a
meaning).  Deterministic: the same tree gives the same files.
"""

from __future__ import annotations

import ast
import random
import sys
from pathlib import Path

FUZZ_DIR = Path(__file__).resolve().parent
REPO = FUZZ_DIR.parent

_HEADER = '''import math

import numpy as np

import ringkernel as rk
from ringkernel import Array, Vec, f16, f32, f64, i32, u8, u16, u32

'''


def _kernel_sources() -> dict[str, str]:
    """name -> standalone source of each ``@rk.kernel`` of the kernel corpus."""
    text = (REPO / "tests" / "kernel_corpus.py").read_text()
    tree = ast.parse(text)
    constants, funcs, kernels = [], [], {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper()
                                                 for t in node.targets):
            constants.append(ast.get_source_segment(text, node))
        if isinstance(node, ast.ClassDef) and any(ast.unparse(d) == "rk.struct" for d in node.decorator_list):
            constants.append("@rk.struct\n" + ast.get_source_segment(text, node))  # in order
        if not isinstance(node, ast.FunctionDef):
            continue
        decorators = [ast.unparse(d) for d in node.decorator_list]
        body = ast.get_source_segment(text, node)
        start = body.index("def ")
        if "rk.func" in decorators:
            funcs.append("@rk.func\n" + body[start:])
        elif "rk.kernel" in decorators:
            kernels[node.name] = "@rk.kernel\n" + body[start:]
    prefix = _HEADER + "\n".join(constants) + "\n\n\n" + "\n\n\n".join(funcs) + "\n\n\n"
    return {name: prefix + src + "\n" for name, src in kernels.items()}


def write_seeds() -> None:
    sys.path.insert(0, str(REPO / "tests"))
    import kernel_corpus

    from fuzz.ir_generator import FULL, Draw, generate_module

    parser = FUZZ_DIR / "corpus" / "parser"
    parser.mkdir(parents=True, exist_ok=True)
    for case in kernel_corpus.CASES:
        (parser / f"{case.name}.rir").write_text(str(case.kernel.ir))

    class _Bytes:  # a deterministic stand-in for FuzzedDataProvider, for seed modules only
        def __init__(self, seed: int) -> None:
            self.rng = random.Random(seed)

        def ConsumeIntInRange(self, lo: int, hi: int) -> int:  # noqa: N802 (atheris' name)
            return self.rng.randint(lo, hi)

        def ConsumeBool(self) -> bool:  # noqa: N802
            return self.rng.random() < 0.5

        def ConsumeRegularFloat(self) -> float:  # noqa: N802
            return self.rng.uniform(-1e6, 1e6)

    for seed in range(4):
        (parser / f"generated_{seed}.rir").write_text(str(generate_module(Draw(_Bytes(seed)), FULL)))

    frontend = FUZZ_DIR / "corpus" / "frontend"
    frontend.mkdir(parents=True, exist_ok=True)
    for name, source in _kernel_sources().items():
        (frontend / f"{name}.py").write_text(source)
    for example in sorted((REPO / "examples").glob("*.py")):
        (frontend / f"example_{example.name}").write_text(example.read_text())

    rng = random.Random(7)
    for target in ("ptx", "wgsl", "msl", "queues", "hlc", "checkpoint"):
        directory = FUZZ_DIR / "corpus" / target
        directory.mkdir(parents=True, exist_ok=True)
        for i, size in enumerate((16, 200, 1000, 3000)):
            (directory / f"seed_{i}.bin").write_bytes(rng.randbytes(size))

    from fuzz.fuzz_checkpoint import seed_files

    for name, data in seed_files().items():
        (FUZZ_DIR / "corpus" / "checkpoint" / name).write_bytes(data)


__all__ = ["write_seeds"]
