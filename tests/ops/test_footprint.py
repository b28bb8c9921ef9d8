"""The chunk form of every op stays linear in T: no T x T tensor, largest tensor proportional to T."""
import pytest

from rnnx.ops import OPS
from rnnx.ops.footprint import Footprint

from .cases import make_case
from .test_forms import run

T = 1024


def footprint(op_name, mode, length):
    with Footprint() as fp:
        run(op_name, mode, *make_case(op_name, length, B=1, H=1))
    return fp


@pytest.mark.parametrize("op_name", sorted(OPS))
def test_chunk_form_builds_no_T_by_T_tensor(op_name):
    assert footprint(op_name, "chunk", T).square(T) == []
    assert footprint(op_name, "chunk", 2 * T).largest <= 2.1 * footprint(op_name, "chunk", T).largest


@pytest.mark.parametrize("op_name", ["decay_linear_attention", "gated_delta_rule", "sliding_window_attention"])
def test_parallel_form_is_quadratic(op_name):
    assert footprint(op_name, "parallel", T).square(T)  # the detector sees what it must
