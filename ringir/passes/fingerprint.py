"""The compile-cache key: a sha256 over everything that decides the output text.

It covers the compiler version, the RingIR text version, the canonical module
text (which already holds every callee, struct and folded constant), the
target, the sorted options and the environment variables that change code
generation (:data:`CODEGEN_ENV_VARS`).  Option values must have a
deterministic ``repr`` (strings, numbers, booleans, tuples of those).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ringkernel.ringir import version
from ringkernel.ringir.nodes import Module
from ringkernel.ringir.printer import TEXT_VERSION

CODEGEN_ENV_VARS: tuple[str, ...] = ()
"""Environment variables whose value changes the code a backend emits (none today: every
code-generation choice is an explicit option).  A variable added here joins every key."""


def fingerprint(module: Module, target: str, options: dict[str, Any] | None = None) -> str:
    """The hex sha256 cache key of compiling ``module`` for ``target`` with ``options``."""
    parts = [
        f"ringkernel {version.__version__}",
        f"ringir {TEXT_VERSION}",
        f"target {target}",
        "options " + repr(sorted((str(k), repr(v)) for k, v in (options or {}).items())),
        *(f"env {name}={os.environ.get(name, '')}" for name in CODEGEN_ENV_VARS),
        str(module),
    ]
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8")
        # Length prefixes keep the parts apart: no two part lists hash alike.
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()
