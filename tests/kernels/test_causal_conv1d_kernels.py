"""causal_conv1d's TIR kernel (`rnnx/kernels/causal_conv1d.py`) beyond the cases every op runs: other widths,
no activation, channel counts that take fewer vector lanes, and builds for every target rnnx knows."""
import pytest

from rnnx.lowerings import choose
from rnnx.targets import TARGETS, get_target

from ..ops.test_causal_conv1d import case
from ..ops.test_forms import assert_matches
from .test_tir_kernels import call, kernel, reference, shapes

tvm = pytest.importorskip("tvm")
cc = pytest.importorskip("tvm.support.cc")
OP = "causal_conv1d"


@pytest.mark.parametrize(("kind", "T"), [("step", 1), ("sequence", 1), ("sequence", 2), ("sequence", 37)])
@pytest.mark.parametrize(("W", "D"), [(2, 5), (3, 6), (4, 48), (7, 40)], ids=["W2-D5", "W3-D6", "W4-D48", "W7-D40"])
@pytest.mark.parametrize("activation", ["silu", "none"])
def test_kernel_at_each_width_channel_count_and_activation_matches_fp64_reference(activation, W, D, kind, T):
    """D = 5, 6, 40, 48 run in 1, 2, 8 and 16 lanes; sequences shorter than the state too."""
    inputs, state, attrs = case(T, W, D, activation)
    fn = kernel(OP, kind, inputs, (state,), attrs)
    assert_matches(call(OP, fn, inputs, (state,)), reference(OP, inputs, (state,), attrs))


def kernels(target) -> tvm.IRModule:
    """The step and the symbolic-T sequence kernel at a model's size (3 · 4 heads of 64 channels), chosen
    for `target` as the compiler chooses them."""
    inputs, state, attrs = case(1, D=768)
    funcs = {}
    for kind, t_axis in (("step", None), ("sequence", tvm.tirx.Var("T", "int64"))):
        dims = shapes(inputs, (state,), t_axis)
        funcs[kind] = choose("tir", OP, kind, target, dims)(dims, attrs | {"mode": "chunk"})
    return tvm.IRModule(funcs)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_kernels_build_for_every_target(name):
    target = tvm.target.Target(get_target(name).resolved())
    with tvm.transform.PassContext(config={"tirx.disable_assert": True}):  # as the static runtime builds them
        assert tvm.tirx.build(kernels(target), target=target) is not None


def test_kernels_link_for_an_aarch64_board(tmp_path):
    board = get_target("raspberry-pi-5")
    if not board.toolchain.find():
        pytest.skip(f"needs {board.toolchain.cxx} ({board.toolchain.install})")
    library = tvm.compile(kernels(board), target=tvm.target.Target(board.resolved()))
    library.export_library(str(tmp_path / "kernels.so"), fcompile=cc.cross_compiler(board.toolchain.find()))
    assert (tmp_path / "kernels.so").stat().st_size > 0
