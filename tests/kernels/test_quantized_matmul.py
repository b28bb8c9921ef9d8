"""The quantized matrix-product kernels (rnnx/kernels/quantized_matmul.py), compiled alone for the host CPU with the
weights packed as the compiler packs them, against x @ dequantize(W) in fp64: int8 per output channel and int4 in
blocks along K, the step's static row counts and the prefill's symbolic one at lengths that end inside a register
block, on a block boundary and after several 64-row blocks."""
import numpy as np
import pytest
import torch

import rnnx.kernels  # noqa: F401  (registers the TIR lowerings)
from rnnx.compiler.quantized import pack
from rnnx.lowerings import choose
from rnnx.numerics import compare
from rnnx.targets import get_target

tvm = pytest.importorskip("tvm")

K, N, GROUP = 96, 80, 32  # N a multiple of the tiles below, K of the group


def _weights(bits: int, gen) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quantized W (K, N) int8, its scale, W dequantized in fp64)."""
    limit = 8 if bits == 4 else 128
    w = gen.integers(-limit, limit, (K, N)).astype(np.int8)
    if bits == 8:
        scale = gen.uniform(0.001, 0.02, N).astype(np.float32)
        return w, scale, w * scale.astype(np.float64)
    scale = gen.uniform(0.001, 0.02, (K // GROUP, N)).astype(np.float32)
    return w, scale, w * np.repeat(scale.astype(np.float64), GROUP, 0)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("kind, rows", [("step", [1]), ("step", [3]), ("sequence", [1, 3, 4, 67, 130])])
def test_kernel_matches_dequantized_product_in_fp64(bits, kind, rows):
    gen = np.random.default_rng(bits)
    w, scale, exact = _weights(bits, gen)
    wp, s = pack(w, scale, bits, tile=16)
    M = rows[0] if kind == "step" else tvm.tirx.Var("M", "int64")
    shapes = [(M, K), wp.shape, s.shape]
    kernel = choose("tir", "quantized_matmul", kind)(shapes, {"bits": bits, "N": N, "parallel": True})
    lib = tvm.compile(tvm.IRModule({"main": kernel}), target=tvm.target.Target(get_target("host").resolved()))
    for m in rows:
        x = gen.standard_normal((m, K)).astype(np.float32)
        y = tvm.runtime.tensor(np.full((m, N), np.nan, np.float32))
        lib["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(wp), tvm.runtime.tensor(s), y)
        result = compare(torch.from_numpy(y.numpy()), torch.from_numpy(x.astype(np.float64) @ exact))
        assert result.passed, (m, result)


def test_int4_packing_puts_a_tile_s_halves_in_the_low_and_high_nibbles_offset_by_8():
    w = np.arange(-8, 8, dtype=np.int8).reshape(1, 16).repeat(2, 0)  # K = 2 rows of 16 columns
    wp, _ = pack(w, np.ones((1, 16), np.float32), 4, tile=16)
    assert wp.shape == (1, 2, 8)
    u = wp.view(np.uint8)
    assert ((u & 0xF) == w[:, :8] + 8).all() and ((u >> 4) == w[:, 8:] + 8).all()
