"""ScalarType.min_value/max_value: the one table of integer ranges every stage uses."""

import numpy as np
import pytest

from ringkernel.ringir.types import SCALAR_TYPES


@pytest.mark.parametrize("name", ["i32", "u32", "i64", "u64"])
def test_integer_range_matches_numpy(name: str) -> None:
    ty = SCALAR_TYPES[name]
    info = np.iinfo(np.dtype(ty.numpy_dtype))
    assert (ty.min_value, ty.max_value) == (int(info.min), int(info.max))


@pytest.mark.parametrize("name", ["f32", "f64", "bool"])
def test_non_integer_has_no_range(name: str) -> None:
    with pytest.raises(TypeError, match="not an integer type"):
        SCALAR_TYPES[name].min_value
    with pytest.raises(TypeError, match="not an integer type"):
        SCALAR_TYPES[name].max_value
