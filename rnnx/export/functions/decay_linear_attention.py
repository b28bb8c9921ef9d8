"""ONNX function bodies (standard opset 20): `step` is the recurrent form for one token, `sequence` the
chunked form (`ops/decay_linear_attention/chunk.py`) for any T. Shapes: q, k `(B, T, H, Dk)`;
v `(B, T, H, Dv)`; decay `(H,)` per head, `(B, T, H)` per token or `(B, T, H, Dk)` per key dimension;
state `(B, H, Dk, Dv)`; o `(B, T, H, Dv)`.

One body serves every decay: it is viewed as `(B, T, H, Dg)`, one log decay per row of the state (Dg = Dk)
or one for every row (Dg = 1), and broadcast over the rows; `Reshape(decay, (*shape[:3], -1))` appends
the size-1 axis to a rank-1 or rank-3 decay and keeps a rank-4 one."""
from onnxscript import FLOAT, graph, script
from onnxscript import opset20 as op

from ...lowerings import lowering


@lowering("onnx", "decay_linear_attention", "step")
@script()
def step(q: FLOAT, k: FLOAT, v: FLOAT, decay: FLOAT, state: FLOAT, scale: float, mode: str, chunk_size: int):
    """T = 1: `S = diag(exp(g)) S + k vᵀ`, `o = scale · qᵀ S`."""
    g = op.Expand(op.Reshape(decay, op.Concat(op.Shape(decay, start=0, end=3), [-1], axis=0)),
                  op.Concat(op.Shape(q, start=0, end=3), [1], axis=0))            # (B, 1, H, Dg)
    new_state = op.Exp(op.Transpose(g, perm=[0, 2, 3, 1])) * state + (
        op.Transpose(k, perm=[0, 2, 3, 1]) * op.Transpose(v, perm=[0, 2, 1, 3]))  # k (B,H,Dk,1) · v (B,H,1,Dv)
    o = op.MatMul(op.Transpose(q, perm=[0, 2, 1, 3]), new_state)                  # (B, H, 1, Dv)
    return op.Transpose(o, perm=[0, 2, 1, 3]) * scale, new_state


@lowering("onnx", "decay_linear_attention", "sequence")
@script()
def sequence(q: FLOAT, k: FLOAT, v: FLOAT, decay: FLOAT, state: FLOAT, scale: float, mode: str, chunk_size: int):
    """Blocks of C = chunk_size tokens: quadratic attention inside a block, a Scan carries the state
    between blocks. Every decay factor is `exp` of a segment's log decays summed directly, an exponent
    <= 0 (why: `ops/decay_linear_attention/chunk.py`)."""
    T = op.Shape(q, start=1, end=2)
    C = op.Reshape(op.Constant(value_int=chunk_size), [1])
    N = (T + C - 1) / C
    g = op.Expand(op.Reshape(decay, op.Concat(op.Shape(decay, start=0, end=3), [-1], axis=0)),
                  op.Concat(op.Shape(q, start=0, end=3), [1], axis=0))            # (B, T, H, Dg)
    # One tensor is padded to N * C tokens and cut into blocks (N, B, H, C, ·) for all four inputs, the
    # blocks first so that the Scan runs along axis 0 (the only one onnx's reference evaluator scans);
    # padded tokens have g = k = v = 0, so they leave the state unchanged.
    x = op.Pad(op.Concat(q, k, v, g, axis=-1), op.Concat([0], N * C - T, axis=0), None, [1])
    x = op.Transpose(op.Reshape(x, op.Concat([0, -1], C, op.Shape(x, start=2), axis=0)), perm=[1, 0, 3, 2, 4])
    Dk, Dv = op.Shape(k, start=3), op.Shape(v, start=3)
    qb, kb, vb, gb = op.Split(x, op.Concat(Dk, Dk, Dv, op.Shape(g, start=3), axis=0), axis=-1)
    g = op.Transpose(gb, perm=[0, 1, 2, 4, 3])                                   # (N, B, H, Dg, C)
    into = op.CumSum(g, -1)                                                       # block start -> t, inclusive
    # Γ_i[t, s] = exp(g_i[s+1] + ... + g_i[t]) for s <= t, 0 above the diagonal: each segment is summed
    # directly (a cumsum of g[r] masked to r > s down the rows), not as a difference of prefix sums, so the
    # exponent stays exact when the decays are very negative (blocks.segsum).
    rows = op.Expand(op.Unsqueeze(g, [-1]), op.Concat(op.Shape(g), C, axis=0))   # [r, s] = g[r]
    gamma = op.Trilu(op.Exp(op.CumSum(op.Trilu(rows, -1, upper=0), -2)), upper=0)  # (N, B, H, Dg, C, C)
    k_t = op.Transpose(kb, perm=[0, 1, 2, 4, 3])                                  # (N, B, H, Dk, C)
    if op.Size(op.Shape(decay)) == 4:
        # per key: Σ_i q_t[i] k_s[i] Γ_i[t, s], no matrix product (ops/decay_linear_attention/chunk.py)
        intra = op.ReduceSum(op.Unsqueeze(op.Transpose(qb, perm=[0, 1, 2, 4, 3]), [-1])
                             * op.Unsqueeze(k_t, [-2]) * gamma, [-3], keepdims=0)
    else:
        intra = op.MatMul(qb, k_t) * op.Squeeze(gamma, [-3])                     # one Γ for every row
    to_end = op.Exp(op.CumSum(g, -1, exclusive=1, reverse=1))                    # decay t -> block end
    kv = op.MatMul(k_t * to_end, vb)                                              # (N, B, H, Dk, Dv)
    block_decay = op.Exp(op.Gather(into, [-1], axis=-1))                         # (N, B, H, Dg, 1)

    @graph()
    def carry(s, decay_n, kv_n):
        """State before block n (scanned out) and after it."""
        before = op.Identity(s)
        return decay_n * s + kv_n, before

    new_state, before = op.Scan(state, block_decay, kv, body=carry, num_scan_inputs=2)  # before (N, B, H, Dk, Dv)
    o = op.MatMul(intra, vb) + op.MatMul(qb * op.Transpose(op.Exp(into), perm=[0, 1, 2, 4, 3]), before)
    o = op.Transpose(o, perm=[1, 0, 3, 2, 4])                                     # (B, N, C, H, Dv)
    o = op.Slice(op.Reshape(o, op.Concat([0, -1], op.Shape(o, start=3), axis=0)), [0], T, [1])
    return o * scale, new_state
