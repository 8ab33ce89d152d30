"""What the text backends (WGSL, MSL) share, so they solve each problem one way.

- :mod:`.names`: one :class:`Namer`, fed each target's reserved words;
- :mod:`.templates`: one jinja2 environment factory and template convention;
- :mod:`.capabilities`: one declarative support table per target and one check;
- :mod:`.atomics`: which arrays need atomic element types.
"""

from ringkernel.lowering.common.atomics import ArrayKey, atomic_array, atomic_arrays
from ringkernel.lowering.common.capabilities import Capabilities, TypeUse, check_module, type_uses
from ringkernel.lowering.common.names import (
    GENERATED_PREFIX,
    Namer,
    NamingRules,
    escaped_identifier,
    hashed_identifier,
)
from ringkernel.lowering.common.templates import (
    Macros,
    Statement,
    environment,
    macros,
    make_environment,
    render,
)

__all__ = [
    "ArrayKey", "atomic_array", "atomic_arrays",
    "Capabilities", "TypeUse", "check_module", "type_uses",
    "GENERATED_PREFIX", "Namer", "NamingRules", "escaped_identifier", "hashed_identifier",
    "Macros", "Statement", "environment", "macros", "make_environment", "render",
]
