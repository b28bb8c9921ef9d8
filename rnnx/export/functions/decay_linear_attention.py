"""ONNX function bodies (standard opset 20): `step` is the recurrent form for one token, `sequence` the
chunked form (`ops/decay_linear_attention/chunk.py`) for any T. Shapes: q, k `(B, T, H, Dk)`;
v `(B, T, H, Dv)`; decay `(H,)` per head or `(B, T, H)` per token; state `(B, H, Dk, Dv)`; o `(B, T, H, Dv)`."""
from onnxscript import FLOAT, graph, script
from onnxscript import opset20 as op

from ...lowerings import lowering


@lowering("onnx", "decay_linear_attention", "step")
@script()
def step(q: FLOAT, k: FLOAT, v: FLOAT, decay: FLOAT, state: FLOAT, scale: float, mode: str, chunk_size: int):
    """T = 1: `S = exp(g) S + k vᵀ`, `o = scale · qᵀ S`."""
    g = op.Transpose(op.Expand(decay, op.Shape(q, start=0, end=3)), perm=[0, 2, 1])  # (B, H, 1)
    new_state = op.Unsqueeze(op.Exp(g), [-1]) * state + (
        op.Transpose(k, perm=[0, 2, 3, 1]) * op.Transpose(v, perm=[0, 2, 1, 3]))  # k (B,H,Dk,1) · v (B,H,1,Dv)
    o = op.MatMul(op.Transpose(q, perm=[0, 2, 1, 3]), new_state)                  # (B, H, 1, Dv)
    return op.Transpose(o, perm=[0, 2, 1, 3]) * scale, new_state


@lowering("onnx", "decay_linear_attention", "sequence")
@script()
def sequence(q: FLOAT, k: FLOAT, v: FLOAT, decay: FLOAT, state: FLOAT, scale: float, mode: str, chunk_size: int):
    """Blocks of C = chunk_size tokens: quadratic attention inside a block, a Scan carries the state
    between blocks."""
    T = op.Shape(q, start=1, end=2)
    C = op.Reshape(op.Constant(value_int=chunk_size), [1])
    N = (T + C - 1) / C
    g = op.Unsqueeze(op.Expand(decay, op.Shape(q, start=0, end=3)), [-1])        # (B, T, H, 1)
    # One tensor is padded to N * C tokens and cut into blocks (B, H, N, C, ·) for all four inputs;
    # padded tokens have g = k = v = 0, so they leave the state unchanged.
    x = op.Pad(op.Concat(q, k, v, g, axis=-1), op.Concat([0], N * C - T, axis=0), None, [1])
    x = op.Transpose(op.Reshape(x, op.Concat([0, -1], C, op.Shape(x, start=2), axis=0)), perm=[0, 3, 1, 2, 4])
    Dk, Dv = op.Shape(k, start=3), op.Shape(v, start=3)
    qb, kb, vb, gb = op.Split(x, op.Concat(Dk, Dk, Dv, [1], axis=0), axis=-1)
    g = op.Squeeze(gb, [-1])                                                      # (B, H, N, C)
    into = op.CumSum(g, -1)                                                       # block start -> t, inclusive
    # Γ[t, s] = exp(g[s+1] + ... + g[t]) for s <= t, 0 above the diagonal: each segment is summed directly
    # (a cumsum of g[r] masked to r > s down the rows), not as a difference of prefix sums, so the
    # exponent stays exact when the decays are very negative (blocks.segsum).
    rows = op.Expand(op.Unsqueeze(g, [-1]), op.Concat(op.Shape(g), C, axis=0))   # [r, s] = g[r]
    gamma = op.Trilu(op.Exp(op.CumSum(op.Trilu(rows, -1, upper=0), -2)), upper=0)
    intra = op.MatMul(qb, op.Transpose(kb, perm=[0, 1, 2, 4, 3])) * gamma        # (B, H, N, C, C)
    to_end = op.Exp(op.CumSum(g, -1, exclusive=1, reverse=1))                    # decay t -> block end
    kv = op.MatMul(op.Transpose(kb * op.Unsqueeze(to_end, [-1]), perm=[0, 1, 2, 4, 3]), vb)  # (B,H,N,Dk,Dv)
    block_decay = op.Unsqueeze(op.Exp(op.Gather(into, -1, axis=-1)), [-1, -2])  # (B, H, N, 1, 1)

    @graph()
    def carry(s, decay_n, kv_n):
        """State before block n (scanned out) and after it."""
        before = op.Identity(s)
        return decay_n * s + kv_n, before

    new_state, before = op.Scan(state, block_decay, kv, body=carry, num_scan_inputs=2,
                                scan_input_axes=[2, 2], scan_output_axes=[2])   # before (B, H, N, Dk, Dv)
    o = op.MatMul(intra, vb) + op.MatMul(qb * op.Unsqueeze(op.Exp(into), [-1]), before)
    o = op.Transpose(o, perm=[0, 2, 3, 1, 4])                                     # (B, N, C, H, Dv)
    o = op.Slice(op.Reshape(o, op.Concat([0, -1], op.Shape(o, start=3), axis=0)), [0], T, [1])
    return o * scale, new_state
