"""The kernels of MatMuls reading quantized activations (rnnx/kernels/quantized_activations.py), compiled alone for
the host CPU: the per-token quantization bit for bit against numpy's and onnxruntime's run of the graph's
function (`rnnx.quantize.activations`), and the VNNI integer product against the quantized activations times the
dequantized weights in fp64, int8 and int4, at the fp32 tolerance."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

import rnnx.kernels  # noqa: F401  (registers the TIR lowerings)
from rnnx.compiler.quantized import pack_integer
from rnnx.export.onnx_ops import DOMAIN, OPSET, VERSION
from rnnx.kernels.quantized_activations import has_vnni
from rnnx.lowerings import choose
from rnnx.numerics import compare
from rnnx.quantize import activations
from rnnx.targets import get_target

tvm = pytest.importorskip("tvm")

K, N, GROUP = 96, 64, 32  # N a multiple of the integer kernel's 32-column tiles, K of the group


def _host():
    return tvm.target.Target(get_target("host").resolved())


def _quantized(x: np.ndarray) -> np.ndarray:
    """The rule the graph states, in numpy fp32: per row, s = max(max |x| / 127, tiny), clip(round(x / s)) · s."""
    s = np.maximum(np.abs(x).max(-1, keepdims=True) / np.float32(127), np.float32(activations.TINY))
    return np.clip(np.round(x / s), -127, 127) * s


def _rows(gen, m: int) -> np.ndarray:
    x = gen.standard_normal((m, K)).astype(np.float32)
    x[0, :] = 0  # an all-zero token: scale TINY, values 0
    if m > 1:
        x[1, 5] = 40.0  # an outlier sets its token's scale
        x[-1, :] = np.round(x[-1, :] * 4) / 4 * (np.abs(x[-1]).max() / 127 * 4)  # values on rounding ties
    return x


def _onnxruntime(x: np.ndarray) -> np.ndarray:
    node = helper.make_node(activations.FUNCTION, ["x"], ["y"], domain=DOMAIN)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, VERSION)],
                              functions=[activations.function(OPSET)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("kind, m", [("step", 1), ("step", 3), ("sequence", 5)])
def test_quantize_activations_kernel_equals_the_graph_function_in_onnxruntime_bit_for_bit(kind, m):
    x = _rows(np.random.default_rng(m), m)
    M = m if kind == "step" else tvm.tirx.Var("M", "int64")
    kernel = choose("tir", "quantize_activations", kind)([(M, K)], {})
    lib = tvm.compile(tvm.IRModule({"main": kernel}), target=_host())
    y = tvm.runtime.tensor(np.full((m, K), np.nan, np.float32))
    lib["main"](tvm.runtime.tensor(x), y)
    assert np.array_equal(y.numpy(), _quantized(x))
    assert np.array_equal(y.numpy(), _onnxruntime(x))


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("m", [1, 3])
def test_integer_matmul_matches_quantized_activations_times_dequantized_weights_in_fp64(bits, m):
    target = _host()
    gen = np.random.default_rng(bits)
    limit = 8 if bits == 4 else 128
    w = gen.integers(-limit, limit, (K, N)).astype(np.int8)
    scale = gen.uniform(0.001, 0.02, N if bits == 8 else (K // GROUP, N)).astype(np.float32)
    exact = w * (scale if bits == 8 else np.repeat(scale, GROUP, 0)).astype(np.float64)
    wp = pack_integer(w, bits)
    shapes = [(m, K), wp.shape, scale.shape]
    if not has_vnni(target, shapes):
        pytest.skip("this CPU has no AVX-512 VNNI: the integer product's kernel does not apply here")
    kernel = choose("tir", "integer_matmul", "step", target, shapes)(shapes, {"bits": bits, "N": N, "parallel": True})
    lib = tvm.compile(tvm.IRModule({"main": kernel}), target=target)
    x = _rows(gen, m)
    y = tvm.runtime.tensor(np.full((m, N), np.nan, np.float32))
    lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(wp), tvm.runtime.tensor(scale), y)
    result = compare(torch.from_numpy(y.numpy()), torch.from_numpy(_quantized(x).astype(np.float64) @ exact))
    assert result.passed, result


def test_integer_packing_offsets_weights_to_unsigned_in_tiles_of_four_k():
    w = np.arange(-8, 8, dtype=np.int8)[np.arange(4 * 32) % 16].reshape(4, 32)  # K = 4, N = 32
    int4 = pack_integer(w, 4)
    assert int4.shape == (1, 1, 64)
    for j in range(16):
        for i in range(4):
            assert int4[0, 0, 4 * j + i] & 0xF == int(w[i, j]) + 8 and int4[0, 0, 4 * j + i] >> 4 == int(w[i, 16 + j]) + 8
    int8 = pack_integer(w, 8)
    assert int8.shape == (1, 1, 128) and int8[0, 0, 64 + 4 * 3 + 2] == int(w[2, 16 + 3]) + 128
