"""ONNX function bodies (opset 20) of aaren: `sequence` mirrors `ops/aaren/chunk.py`, `step` folds one
token in.

Both keep every exponent <= 0 by rescaling to the running max, as `ops/aaren/scan.py`'s `combine` does,
so scores of any magnitude stay finite; an empty summary (running max -inf) gets the factor 1 instead
of the NaN of `exp(-inf - -inf)`, its u and w being 0.
"""
from onnxscript import FLOAT, graph, opset20 as op, script

from ...lowerings import lowering

NEG_INF = float("-inf")


@lowering("onnx", "aaren", "sequence")
@script()
def sequence(q: FLOAT, k: FLOAT, v: FLOAT, running_max: FLOAT, denominator: FLOAT, numerator: FLOAT,
             scale: float, mode: str, chunk_size: int):
    """q `(H, Dk)`, k `(B, T, H, Dk)`, v `(B, T, H, Dv)`, state `(B, H)`, `(B, H)`, `(B, H, Dv)`, any T >= 1
    -> o `(B, T, H, Dv)` and the state after the last token. Blocks of C = chunk_size tokens are summarised
    in parallel, then merged with the state one block after another by a Scan."""
    zero, one, two = op.Constant(value_ints=[0]), op.Constant(value_ints=[1]), op.Constant(value_ints=[2])
    minus_one, minus_two = op.Constant(value_ints=[-1]), op.Constant(value_ints=[-2])
    neg_inf = op.Constant(value_float=NEG_INF)
    C = op.Constant(value_int=chunk_size)
    T = op.Shape(k, start=1, end=2)
    N = (T + C - 1) / C
    pad = op.Concat(zero, N * C - T, axis=0)                                                # T up to N * C
    blocks = op.Concat(op.Constant(value_ints=[0, 0, -1]), op.Unsqueeze(C, zero), axis=0)   # (B, H, NC) -> (B, H, N, C)
    s = op.ReduceSum(k * q, minus_one, keepdims=0) * op.Constant(value_float=scale)         # (B, T, H)
    # Padded tokens score -inf: they weigh nothing and never raise a running max.
    s = op.Reshape(op.Pad(op.Transpose(s, perm=[0, 2, 1]), pad, neg_inf, two), blocks)      # (B, H, N, C)
    vb = op.Pad(op.Transpose(v, perm=[0, 2, 1, 3]), pad, op.Constant(value_float=0.0), two)
    vb = op.Reshape(vb, op.Concat(blocks, op.Shape(v, start=3), axis=0))                     # (B, H, N, C, Dv)

    # Row i of the block's C x C score matrix holds tokens j <= i. Its max is row i's running max (ONNX has
    # no cummax); it is finite because token 0 of every block is a real token.
    i = op.Range(op.Constant(value_int=0), C, op.Constant(value_int=1))
    causal = op.Unsqueeze(i, one) >= op.Unsqueeze(i, zero)
    block = op.Where(causal, op.Unsqueeze(s, minus_two), neg_inf)                          # (B, H, N, C, C)
    m = op.ReduceMax(block, minus_one)                                                     # (B, H, N, C, 1)
    p = op.Exp(block - m)
    m = op.Squeeze(m, minus_one)
    u = op.ReduceSum(p, minus_one, keepdims=0)
    w = op.MatMul(p, vb)

    @graph()
    def merge(m0, u0, w0, m_blk, u_blk, w_blk):
        """Carry `(B, H)`, `(B, H)`, `(B, H, Dv)` merged with one block's per-token summaries `(B, H, C[, Dv])`:
        every token's output and, from the last token, the carry after the block."""
        m0, u0, w0 = op.Unsqueeze(m0, minus_one), op.Unsqueeze(u0, minus_one), op.Unsqueeze(w0, minus_two)
        top = op.Max(m0, m_blk)
        c0 = op.Where(m0 == top, op.Constant(value_float=1.0), op.Exp(m0 - top))
        c_blk = op.Where(m_blk == top, op.Constant(value_float=1.0), op.Exp(m_blk - top))
        u_all = u0 * c0 + u_blk * c_blk
        w_all = w0 * op.Unsqueeze(c0, minus_one) + w_blk * op.Unsqueeze(c_blk, minus_one)
        o_blk = w_all / op.Unsqueeze(u_all, minus_one)
        last = op.Constant(value_int=-1)
        return op.Gather(top, last, axis=2), op.Gather(u_all, last, axis=2), op.Gather(w_all, last, axis=2), o_blk

    # Scan over axis 0, the only axis onnx's reference evaluator scans: blocks first, then back.
    m, u, w = op.Transpose(m, perm=[2, 0, 1, 3]), op.Transpose(u, perm=[2, 0, 1, 3]), op.Transpose(w, perm=[2, 0, 1, 3, 4])
    m_end, u_end, w_end, o = op.Scan(running_max, denominator, numerator, m, u, w, body=merge, num_scan_inputs=3)
    o = op.Transpose(o, perm=[1, 2, 0, 3, 4])                                                   # (B, H, N, C, Dv)
    o = op.Reshape(o, op.Concat(op.Constant(value_ints=[0, 0, -1]), op.Shape(v, start=3), axis=0))
    return op.Transpose(op.Slice(o, zero, T, two), perm=[0, 2, 1, 3]), m_end, u_end, w_end


@lowering("onnx", "aaren", "step")
@script()
def step(q: FLOAT, k: FLOAT, v: FLOAT, running_max: FLOAT, denominator: FLOAT, numerator: FLOAT,
         scale: float, mode: str, chunk_size: int):
    """q `(H, Dk)`, k `(B, 1, H, Dk)`, v `(B, 1, H, Dv)`, state `(B, H)`, `(B, H)`, `(B, H, Dv)` -> o `(B, 1, H, Dv)`
    and the state with the token folded in."""
    one, minus_one = op.Constant(value_ints=[1]), op.Constant(value_ints=[-1])
    s = op.ReduceSum(op.Squeeze(k, one) * q, minus_one, keepdims=0) * op.Constant(value_float=scale)  # (B, H)
    top = op.Max(running_max, s)
    c0 = op.Where(running_max == top, op.Constant(value_float=1.0), op.Exp(running_max - top))
    c_new = op.Where(s == top, op.Constant(value_float=1.0), op.Exp(s - top))
    u = denominator * c0 + c_new
    w = numerator * op.Unsqueeze(c0, minus_one) + op.Squeeze(v, one) * op.Unsqueeze(c_new, minus_one)
    return op.Unsqueeze(w / op.Unsqueeze(u, minus_one), one), top, u, w
