"""rnnx's dense CPU schedules: a Relax matmul against a constant weight (with a sigmoid epilogue, as FuseOps
fuses it) built with and without `schedule_dense`, both compared with numpy."""
import numpy as np
import pytest
import tvm
from tvm import relax, tirx
from tvm.relax.backend.cpu_generic import pipeline as cpu
from tvm.target.codegen import llvm_cpu_has_features, llvm_get_system_cpu

from rnnx.compiler.schedules import schedule_dense, vector_lanes

HOST = tvm.target.Target({"kind": "llvm", "mcpu": llvm_get_system_cpu(), "num-cores": 2})
AVX2 = tvm.target.Target({"kind": "llvm", "mcpu": "haswell", "num-cores": 2})  # 8 lanes, 16 registers
TARGETS = [pytest.param(HOST, id="host"),
           pytest.param(AVX2, id="avx2", marks=pytest.mark.skipif(
               not all(llvm_cpu_has_features([f], HOST) for f in ("avx2", "fma")), reason="no AVX2 here"))]
# K, N: multiples of the tiles; N = 100, which no vector divides (predicated tail, weight left unpacked);
# N = 96, a 3-vector matrix-vector tile on AVX-512
SIZES = [(64, 128), (72, 100), (40, 96)]


def dense_module(K, N, rows, seed=0):
    """main(x: (1, rows, K)) = sigmoid(x @ W), W a (K, N) constant as the ONNX importer makes it."""
    w = np.random.default_rng(seed).standard_normal((K, N), dtype="float32") / np.sqrt(K)
    x = relax.Var("x", relax.TensorType((1, rows, K), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            y = bb.emit(relax.op.sigmoid(relax.op.matmul(x, relax.const(w))))
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get(), w


def build(mod, target, scheduled):
    middle = [schedule_dense(target)] if scheduled else []
    passes = (cpu.library_dispatch_passes(target) + cpu.legalize_passes(target) + middle
              + cpu.dataflow_lower_passes(target) + cpu.finalize_passes(target))

    @tvm.transform.module_pass(opt_level=0, name="test_pipeline")
    def pipeline(m, _ctx):
        with target:
            return tvm.transform.Sequential(passes)(m)

    return relax.VirtualMachine(tvm.compile(mod, target=target, relax_pipeline=pipeline), tvm.cpu())


def assert_matches_numpy(vm, x, w):
    ref = 1 / (1 + np.exp(-(x.astype(np.float64) @ w)))
    out = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert np.abs(out - ref).max() <= 1e-5 * np.abs(ref).max()


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("K,N", SIZES)
def test_matvec_with_and_without_schedule_matches_numpy(K, N, target):
    mod, w = dense_module(K, N, 1)
    x = np.random.default_rng(1).standard_normal((1, 1, K), dtype="float32")
    for scheduled in (False, True):
        assert_matches_numpy(build(mod, target, scheduled), x, w)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("K,N", SIZES)
def test_matmul_symbolic_T_with_and_without_schedule_matches_numpy(K, N, target):
    mod, w = dense_module(K, N, tirx.Var("T", "int64"))
    vms = [build(mod, target, scheduled) for scheduled in (False, True)]
    for T in (1, 7, 64, 130):
        x = np.random.default_rng(T).standard_normal((1, T, K), dtype="float32")
        for vm in vms:
            assert_matches_numpy(vm, x, w)


@pytest.mark.parametrize("rows", [1, tirx.Var("T", "int64")], ids=["matvec", "matmul"])
@pytest.mark.parametrize("K,N", SIZES)
def test_schedule_dense_schedules_the_matmul_and_folds_the_packed_weight(K, N, rows):
    """Guards the tests above: a pattern that stopped matching would leave the kernel unscheduled, and
    still correct."""
    mod, _ = dense_module(K, N, rows)
    with HOST:
        mod = tvm.transform.Sequential(cpu.legalize_passes(HOST) + [schedule_dense(HOST)])(mod)
    (func,) = [f for _, f in mod.functions_items() if isinstance(f, tirx.PrimFunc)]  # packing ran and is gone
    assert "tirx.is_scheduled" in func.attrs
    call = next(b.value for b in mod["main"].body.blocks[0].bindings if isinstance(b.value, relax.Call))
    weight = call.args[1].fields[1]
    assert isinstance(weight, tvm.ir.GenericConst)
    # both schedules find a tile dividing N on any target, and the matrix-vector one pads N to its tile
    # otherwise: packed to [N / tile, K, tile]
    if N % 32 == 0 or rows == 1:
        assert weight.ty.ndim == 3 and weight.ty.shape[1] == K


def test_vector_lanes_follow_the_target_features():
    assert vector_lanes(tvm.target.Target({"kind": "llvm", "mcpu": "skylake-avx512"})) == 16
    assert vector_lanes(AVX2) == 8
    assert vector_lanes(tvm.target.Target({"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]})) == 4
