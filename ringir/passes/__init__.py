"""RingIR passes: each maps a module to a module and is usable alone."""

from ringkernel.ringir.passes.constfold import fold_constants
from ringkernel.ringir.passes.dce import eliminate_dead_code
from ringkernel.ringir.passes.fingerprint import CODEGEN_ENV_VARS, fingerprint
from ringkernel.ringir.passes.manager import (
    DEFAULT_PASSES,
    Pass,
    PassManager,
    run_default_pipeline,
)

__all__ = [
    "fold_constants", "eliminate_dead_code", "fingerprint", "CODEGEN_ENV_VARS",
    "DEFAULT_PASSES", "Pass", "PassManager", "run_default_pipeline",
]
