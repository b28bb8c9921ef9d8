"""TIR kernels of a matrix product against quantized weights, `y = x @ dequantize(W)`: what an rnnx quantized
export's `DequantizeLinear -> MatMul` compiles to (`rnnx/compiler/quantized.py` packs the weights and calls these).

Parameters `(x, wp, scale, y)`: x `(M, K)` fp32; y `(M, N)` fp32; the weights packed in tiles of `nt` output
columns, so that a tile's weights are one contiguous stream:

- int8 (`bits` 8): `wp` int8 `(N / nt, K, nt)`, `W[k, n] = scale[n] · wp[n // nt, k, n % nt]`, `scale` `(N,)`,
  symmetric per output channel;
- int4 (`bits` 4): `wp` int8 `(N / nt, K, nt / 2)`, each byte two weights as `u = w + 8` (0..15), column `j`
  of the tile in its low nibble and column `j + nt / 2` in its high one, so that one vector load unpacks into
  two vectors with a mask and a shift; `scale` `(K / group, N)`, blocked along K as the ONNX DequantizeLinear's `block_size`.

The weights stay int8 / int4 in the library and are widened in registers: per k, the tile's `nt` weights
become fp32 (times their scale for int4), then a register block of `mr` rows multiply-adds them, so each
widened weight serves `mr` rows. Each row block keeps `mr x nt` accumulators in registers; int8's per-channel
scale is applied once, at the end. The step (M = 1: a matrix-vector product, bound by the bytes of weights it
reads) uses `mr` = M; the prefill (a symbolic M) blocks of 4 rows and a tail of single rows. Tiles run in
parallel where `attrs["parallel"]` (the caller's choice, as `rnnx.compiler.schedules.PARALLEL_MIN_MACS`).
"""
from __future__ import annotations

from . import register

F32, I8, I32 = "float32", "int8", "int32"
CHAINS = 2         # the matrix-vector product's accumulator sets (`vector`)
SEQUENCE_ROWS = 4  # the prefill's register block: 4 rows x nt columns of accumulators
BLOCK_ROWS = 64    # rows of x that every tile reads before the next: 64 x K floats stay in L2 (K = 2048: 512 KB)


def _kernel(shapes, attrs, name):
    from tvm.script import tirx as T

    (M, K), wshape, sshape = shapes[0], tuple(shapes[1]), tuple(shapes[2])
    bits, N = int(attrs["bits"]), int(attrs["N"])
    tiles, half = wshape[0], wshape[2]
    nt = half * 2 if bits == 4 else half
    group = K // sshape[0] if bits == 4 else K
    static = isinstance(M, int)
    mr = M if static and M <= SEQUENCE_ROWS else SEQUENCE_ROWS
    loop = T.parallel if attrs.get("parallel") else T.serial
    tail = not static or M % mr != 0  # rows after the last full block
    chained = group % CHAINS == 0     # single rows go through `vector`

    @T.macro
    def widen(w_, r_, wp_, s_, n0_, k_, scaled: bool):
        # w_[r_] = the tile's weights at row k_ as fp32; int4's unsigned nibbles u = w + 8 as they are, or
        # (scaled) as (u - 8) times the scale of k_'s block
        if bits == 8:
            for j_ in T.vectorized(nt):
                w_[r_, j_] = T.Cast(F32, wp_[n0_, k_, j_])
        else:
            for j_ in T.vectorized(half):
                w_[r_, j_] = T.Cast(F32, T.bitwise_and(T.Cast(I32, T.Cast("uint8", wp_[n0_, k_, j_])), 15))
                w_[r_, half + j_] = T.Cast(F32, T.shift_right(T.Cast(I32, T.Cast("uint8", wp_[n0_, k_, j_])), 4))
            if scaled:
                for j_ in T.vectorized(nt):
                    w_[r_, j_] = (w_[r_, j_] - T.float32(8)) * s_[k_ // group, n0_ * nt + j_]

    @T.macro
    def rows(x_, wp_, s_, y_, n0_, m0_, rows_: int):
        # y_[m0_ : m0_ + rows_, the tile's columns]: each widened (and, int4, scaled) weight serves rows_ rows
        acc_ = T.alloc_buffer((rows_, nt), F32, scope="global")
        w_ = T.alloc_buffer((1, nt), F32, scope="global")
        for mi_ in T.unroll(rows_):
            for j_ in T.vectorized(nt):
                acc_[mi_, j_] = T.float32(0)
        for k_ in range(K):
            widen(w_, 0, wp_, s_, n0_, k_, True)
            for mi_ in T.unroll(rows_):
                for j_ in T.vectorized(nt):
                    acc_[mi_, j_] = acc_[mi_, j_] + x_[m0_ + mi_, k_] * w_[0, j_]
        for mi_ in T.unroll(rows_):
            for j_ in T.vectorized(nt):
                if bits == 8:
                    y_[m0_ + mi_, n0_ * nt + j_] = acc_[mi_, j_] * s_[n0_ * nt + j_]
                else:
                    y_[m0_ + mi_, n0_ * nt + j_] = acc_[mi_, j_]

    @T.macro
    def vector(x_, wp_, s_, y_, n0_, m_):
        # one row (the step's matrix-vector product): CHAINS accumulator sets over alternate k, so that the
        # multiply-adds of consecutive k do not wait for each other; int4 sums each block's products of the
        # unsigned nibbles and applies its scale and offset once: s · (Σ x·u - 8 Σ x)
        acc_ = T.alloc_buffer((nt,), F32, scope="global")
        part_ = T.alloc_buffer((CHAINS, nt), F32, scope="global")
        w_ = T.alloc_buffer((CHAINS, nt), F32, scope="global")
        xs_ = T.alloc_buffer((CHAINS,), F32, scope="global")
        for j_ in T.vectorized(nt):
            acc_[j_] = T.float32(0)
        for kb_ in range(K // group):
            for c_ in T.unroll(CHAINS):
                xs_[c_] = T.float32(0)
                for j_ in T.vectorized(nt):
                    part_[c_, j_] = T.float32(0)
            for k0_ in range(group // CHAINS):
                for c_ in T.unroll(CHAINS):
                    widen(w_, c_, wp_, s_, n0_, kb_ * group + k0_ * CHAINS + c_, False)
                    xs_[c_] = xs_[c_] + x_[m_, kb_ * group + k0_ * CHAINS + c_]
                    for j_ in T.vectorized(nt):
                        part_[c_, j_] = part_[c_, j_] + x_[m_, kb_ * group + k0_ * CHAINS + c_] * w_[c_, j_]
            for j_ in T.vectorized(nt):
                if bits == 8:
                    acc_[j_] = part_[0, j_] + part_[1, j_]
                else:
                    acc_[j_] = acc_[j_] + s_[kb_, n0_ * nt + j_] * (
                        part_[0, j_] + part_[1, j_] - T.float32(8) * (xs_[0] + xs_[1]))
        for j_ in T.vectorized(nt):
            if bits == 8:
                y_[m_, n0_ * nt + j_] = acc_[j_] * s_[n0_ * nt + j_]
            else:
                y_[m_, n0_ * nt + j_] = acc_[j_]

    @T.macro
    def body(x_, wp_, s_, y_, m_):
        for b_ in range((m_ + BLOCK_ROWS - 1) // BLOCK_ROWS):
            for n0_ in loop(tiles):
                for m0_ in range(T.min(BLOCK_ROWS, m_ - b_ * BLOCK_ROWS) // mr):
                    if mr == 1 and chained:
                        vector(x_, wp_, s_, y_, n0_, b_ * BLOCK_ROWS + m0_)
                    else:
                        rows(x_, wp_, s_, y_, n0_, b_ * BLOCK_ROWS + m0_ * mr, mr)
                if tail:
                    for m1_ in range(b_ * BLOCK_ROWS + T.min(BLOCK_ROWS, m_ - b_ * BLOCK_ROWS) // mr * mr,
                                     T.min(m_, (b_ + 1) * BLOCK_ROWS)):
                        if chained:
                            vector(x_, wp_, s_, y_, n0_, m1_)
                        else:
                            rows(x_, wp_, s_, y_, n0_, m1_, 1)

    if static:
        @T.prim_func
        def kernel(x: T.Buffer((M, K), F32), wp: T.Buffer(wshape, I8), scale: T.Buffer(sshape, F32),
                   y: T.Buffer((M, N), F32)):
            T.func_attr({"global_symbol": name, "tir.noalias": True})
            body(x, wp, scale, y, M)
    else:  # M bound by match_buffer, as TVM's legalized functions do: a copy of the function keeps that binding
        @T.prim_func(s_tir=True)
        def kernel(x_: T.handle, wp: T.Buffer(wshape, I8), scale: T.Buffer(sshape, F32), y_: T.handle):
            T.func_attr({"global_symbol": name, "tir.noalias": True})
            rows_ = T.int64()
            x = T.match_buffer(x_, (rows_, K), F32)
            y = T.match_buffer(y_, (rows_, N), F32)
            body(x, wp, scale, y, rows_)

    return kernel


register("quantized_matmul", "step", _kernel)
register("quantized_matmul", "sequence", _kernel)
