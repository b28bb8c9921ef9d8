"""TIR kernels of a MatMul whose input is a quantized export's quantized activations (`rnnx quantize
--activations int8`: `ai.rnnx.QuantizeInt8PerToken(x)`, `rnnx/quantize/activations.py`), against quantized
weights: per token (row), `s = max(max |x| / 127, TINY)`, `q = clip(round(x / s), -127, 127)`, rounding half to
even as the graph's Round does.

- `quantize_activations` (step and sequence): `x (M, K)` fp32 -> `q · s (M, K)` fp32, what the graph's function
  computes, for the weight-only kernels of `quantized_matmul.py` (every target);
- `integer_matmul` (step, where the target has AVX-512 VNNI): `x (M, K)` quantized in the kernel and multiplied
  as integers with `vpdpbusd`, which sums four u8 x s8 products into each int32 lane. The weights are its u8
  operand, offset to unsigned (int8 `w + 128`, int4 `w + 8`), the activations its s8 one, so that `Σ u q = Σ w q
  + offset · Σ q`: the kernel subtracts the activations' sum per block, and nothing depends on a weight sum.
  Parameters `(x, wp, scale, y)`; tiles of TILE = 32 output columns and 4 k (the instruction's): int8 `wp`
  `(N / 32, K / 4, 128)`, byte `64 v + 4 j + i` the weight at k = 4 k4 + i, column 32 t + 16 v + j; int4 `(N /
  32, K / 4, 64)`, byte `4 j + i` holding column 32 t + j in its low nibble and 32 t + 16 + j in its high one.
  int8's `scale (N,)` is per column, int4's `(K / group, N)` per block along K, applied once a block:
  `y = s_x · Σ_b s_b · (Σ_k∈b u q - offset · Σ_k∈b q)`.
"""
from __future__ import annotations

from ..quantize.activations import QMAX, TINY
from . import register

F32, I8, U8, I32 = "float32", "int8", "uint8", "int32"
TILE = 32    # output columns of a tile: two vectors of 16 int32 accumulators
CHAINS = 2   # accumulator sets over alternate groups of 4 k, so that consecutive vpdpbusd do not wait for each other
LANES = 16   # of the per-token reductions and the quantization
DOT = "llvm.x86.avx512.vpdpbusd.512"


def _quantize(T):
    """Macro: s_[at_] = the scale of row m_ of x_ (K_ values)."""
    @T.macro
    def scale(x_, m_, K_: int, s_, at_):
        peak_ = T.alloc_buffer((LANES,), F32, scope="global")
        for j_ in T.vectorized(LANES):
            peak_[j_] = T.float32(0)
        for i_ in range(K_ // LANES):
            for j_ in T.vectorized(LANES):
                peak_[j_] = T.max(peak_[j_], T.abs(x_[m_, i_ * LANES + j_]))
        for k_ in range(K_ // LANES * LANES, K_):
            peak_[0] = T.max(peak_[0], T.abs(x_[m_, k_]))
        for j_ in range(1, LANES):
            peak_[0] = T.max(peak_[0], peak_[j_])
        s_[at_] = T.max(peak_[0] / T.float32(QMAX), T.float32(TINY))

    return scale


def _q(T, x, s):
    return T.min(T.max(T.nearbyint(x / s), T.float32(-QMAX)), T.float32(QMAX))


def _fake_quantize(shapes, attrs, name):
    from tvm.script import tirx as T

    (M, K), = shapes
    scale = _quantize(T)

    @T.macro
    def body(x_, y_, rows_):
        s_ = T.alloc_buffer((1,), F32, scope="global")
        for m_ in range(rows_):
            scale(x_, m_, K, s_, 0)
            for i_ in range(K // LANES):
                for j_ in T.vectorized(LANES):
                    y_[m_, i_ * LANES + j_] = _q(T, x_[m_, i_ * LANES + j_], s_[0]) * s_[0]
            for k_ in range(K // LANES * LANES, K):
                y_[m_, k_] = _q(T, x_[m_, k_], s_[0]) * s_[0]

    # in a root block, even for a static M: relax's op-pattern analysis reads a function whose output has its
    # input's shape as a possible reshape, and needs its body to be one; marked scheduled, as it is
    if isinstance(M, int):
        @T.prim_func(s_tir=True)
        def kernel(x: T.Buffer((M, K), F32), y: T.Buffer((M, K), F32)):
            T.func_attr({"global_symbol": name, "tir.noalias": True, "tirx.is_scheduled": True})
            with T.sblock("root"):
                body(x, y, M)
    else:  # M bound by match_buffer (see quantized_matmul.py)
        @T.prim_func(s_tir=True)
        def kernel(x_: T.handle, y_: T.handle):
            T.func_attr({"global_symbol": name, "tir.noalias": True, "tirx.is_scheduled": True})
            rows = T.int64()
            x = T.match_buffer(x_, (rows, K), F32)
            y = T.match_buffer(y_, (rows, K), F32)
            with T.sblock("root"):
                body(x, y, rows)
    return kernel


def _integer_matmul(shapes, attrs, name):
    from tvm.script import tirx as T

    (M, K), wshape, sshape = shapes[0], tuple(shapes[1]), tuple(shapes[2])
    bits, N = int(attrs["bits"]), int(attrs["N"])
    group = K // sshape[0] if bits == 4 else K
    offset = 128 if bits == 8 else 8
    loop = T.parallel if attrs.get("parallel") else T.serial
    scale = _quantize(T)

    def weights(wp_, t_, k4_, v_):
        # the 64 unsigned weights of vector v_ (of 2) at k = 4 k4_ .. 4 k4_ + 3
        if bits == 8:
            return wp_[t_, k4_, T.ramp(64 * v_, 1, 64)]
        nibbles = T.shift_right(wp_[t_, k4_, T.ramp(0, 1, 64)], T.Broadcast(T.Cast(U8, 4 * v_), 64))
        return T.bitwise_and(nibbles, T.Broadcast(T.uint8(15), 64))

    @T.prim_func
    def kernel(x: T.Buffer((M, K), F32), wp: T.Buffer(wshape, U8), w_scale: T.Buffer(sshape, F32),
               y: T.Buffer((M, N), F32)):
        T.func_attr({"global_symbol": name, "tir.noalias": True})
        s = T.alloc_buffer((M,), F32, scope="global")
        q = T.alloc_buffer((M, K), I8)
        qsum = T.alloc_buffer((M, K // group), I32)
        part = T.alloc_buffer((LANES,), F32, scope="global")
        for m in range(M):
            scale(x, m, K, s, m)
            for b in range(K // group):
                for j in T.vectorized(LANES):
                    part[j] = T.float32(0)
                for i in range(group // LANES):
                    for j in T.vectorized(LANES):
                        part[j] = part[j] + _q(T, x[m, b * group + i * LANES + j], s[m])
                        q[m, b * group + i * LANES + j] = T.Cast(I8, _q(T, x[m, b * group + i * LANES + j], s[m]))
                qsum[m, b] = 0
                for j in range(LANES):
                    qsum[m, b] = qsum[m, b] + T.Cast(I32, part[j])
        for m in range(M):
            for t in loop(N // TILE):
                total = T.alloc_buffer((TILE,), F32, scope="global")
                acc = T.alloc_buffer((CHAINS, TILE), I32, scope="global")
                for j in T.vectorized(TILE):
                    total[j] = T.float32(0)
                for b in range(K // group):
                    for ch in T.unroll(CHAINS):
                        for j in T.vectorized(TILE):
                            acc[ch, j] = 0
                    for k0 in range(group // 4 // CHAINS):
                        for ch in T.unroll(CHAINS):
                            for v in T.unroll(2):
                                acc[ch, T.ramp(16 * v, 1, 16)] = T.call_llvm_pure_intrin(
                                    "int32x16", DOT, acc[ch, T.ramp(16 * v, 1, 16)],
                                    weights(wp, t, b * (group // 4) + k0 * CHAINS + ch, v),
                                    T.reinterpret("int8x64", T.Broadcast(T.reinterpret(
                                        I32, q[m, T.ramp(b * group + (k0 * CHAINS + ch) * 4, 1, 4)]), 16)))
                    for j in T.vectorized(TILE):
                        total[j] = total[j] + T.Cast(F32, acc[0, j] + acc[1, j] - offset * qsum[m, b]) * (
                            w_scale[t * TILE + j] if bits == 8 else w_scale[b, t * TILE + j])
                for j in T.vectorized(TILE):
                    y[m, t * TILE + j] = s[m] * total[j]

    return kernel


def has_vnni(target, shapes) -> bool:
    """Where `integer_matmul` runs: AVX-512 VNNI, and shapes `[(M, K), wp, scale]` it tiles."""
    from tvm.target.codegen import llvm_cpu_has_features

    (_, K), wshape, sshape = shapes[0], shapes[1], shapes[2]
    group = K // sshape[0] if wshape[2] == 2 * TILE else K
    return (target is not None and target.kind.name == "llvm" and llvm_cpu_has_features(["avx512vnni"], target)
            and group % LANES == 0 and group % (4 * CHAINS) == 0)


register("quantize_activations", "step", _fake_quantize)
register("quantize_activations", "sequence", _fake_quantize)
register("integer_matmul", "step", _integer_matmul, variant="vnni", when=has_vnni)
