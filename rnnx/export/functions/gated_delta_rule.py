"""ONNX function bodies (standard opset 20): `step` is the recurrent form for one token, `sequence` the
chunked WY / UT form (`ops/gated_delta_rule/chunk.py`) for any T. Shapes: q, k `(B, T, H, Dk)`;
v `(B, T, H, Dv)`; g `(H,)` per head or `(B, T, H)` per token; beta `(B, T, H)`; state `(B, H, Dk, Dv)`;
o `(B, T, H, Dv)`."""
from onnxscript import FLOAT, graph, script
from onnxscript import opset20 as op

from ...lowerings import lowering


@lowering("onnx", "gated_delta_rule", "step")
@script()
def step(q: FLOAT, k: FLOAT, v: FLOAT, g: FLOAT, beta: FLOAT, state: FLOAT,
         scale: float, mode: str, chunk_size: int):
    """T = 1: `S' = exp(g) S`, `S = S' + β k (v - S'ᵀ k)ᵀ`, `o = scale · qᵀ S`."""
    alpha = op.Transpose(op.Exp(op.Expand(g, op.Shape(q, start=0, end=3))), perm=[0, 2, 1])  # (B, H, 1)
    decayed = op.Unsqueeze(alpha, [-1]) * state
    k_row = op.Transpose(k, perm=[0, 2, 1, 3])                                    # (B, H, 1, Dk)
    u = op.Unsqueeze(op.Transpose(beta, perm=[0, 2, 1]), [-1]) * (
        op.Transpose(v, perm=[0, 2, 1, 3]) - op.MatMul(k_row, decayed))          # (B, H, 1, Dv)
    new_state = decayed + op.Transpose(k_row, perm=[0, 1, 3, 2]) * u
    o = op.MatMul(op.Transpose(q, perm=[0, 2, 1, 3]), new_state)                  # (B, H, 1, Dv)
    return op.Transpose(o, perm=[0, 2, 1, 3]) * scale, new_state


@lowering("onnx", "gated_delta_rule", "sequence")
@script()
def sequence(q: FLOAT, k: FLOAT, v: FLOAT, g: FLOAT, beta: FLOAT, state: FLOAT,
             scale: float, mode: str, chunk_size: int):
    """Blocks of C = chunk_size tokens: one unit lower-triangular solve per block gives the pseudo-values
    `U = u - w S` for any state S before the block; a Scan carries S between blocks."""
    T = op.Shape(q, start=1, end=2)
    trips = op.Constant(value_int=chunk_size)                                     # C as a scalar
    C = op.Reshape(trips, [1])
    N = (T + C - 1) / C
    g = op.Unsqueeze(op.Expand(g, op.Shape(q, start=0, end=3)), [-1])            # (B, T, H, 1)
    # One tensor is padded to N * C tokens and cut into blocks (B, H, N, C, ·) for all five inputs;
    # padded tokens have g = k = v = beta = 0, so they leave the state unchanged.
    x = op.Pad(op.Concat(q, k, v, g, op.Unsqueeze(beta, [-1]), axis=-1), op.Concat([0], N * C - T, axis=0),
               None, [1])
    x = op.Transpose(op.Reshape(x, op.Concat([0, -1], C, op.Shape(x, start=2), axis=0)), perm=[0, 3, 1, 2, 4])
    Dk, Dv = op.Shape(k, start=3), op.Shape(v, start=3)
    qb, kb, vb, gb, bb = op.Split(x, op.Concat(Dk, Dk, Dv, [1, 1], axis=0), axis=-1)
    g = op.Squeeze(gb, [-1])                                                      # (B, H, N, C); bb (…, C, 1)
    into = op.CumSum(g, -1)                                                       # block start -> t, inclusive
    e_into = op.Unsqueeze(op.Exp(into), [-1])                                     # (B, H, N, C, 1)
    # Γ[t, s] = exp(g[s+1] + ... + g[t]) for s <= t, 0 above the diagonal: each segment is summed directly
    # (a cumsum of g[r] masked to r > s down the rows), not as a difference of prefix sums, so the
    # exponent stays exact when the decays are very negative (blocks.segsum).
    rows = op.Expand(op.Unsqueeze(g, [-1]), op.Concat(op.Shape(g), C, axis=0))   # [r, s] = g[r]
    gamma = op.Trilu(op.Exp(op.CumSum(op.Trilu(rows, -1, upper=0), -2)), upper=0)
    k_t = op.Transpose(kb, perm=[0, 1, 2, 4, 3])                                  # (B, H, N, Dk, C)
    # ONNX has no triangular solve: solve (I + L) [u | w] = [β V | β e^b K] (L strictly lower) by forward
    # substitution, a Loop over the C rows, vectorised over every block and both right-hand sides.
    # Row i = rhs_i - L[i, :] X: L[i, j] = 0 for j >= i, so only the rows already solved count and X can
    # start as rhs.
    L = op.Trilu(bb * op.MatMul(kb, k_t) * gamma, -1, upper=0)                   # (B, H, N, C, C)
    rhs = op.Concat(bb * vb, bb * e_into * kb, axis=-1)                           # (B, H, N, C, Dv + Dk)
    row_ids = op.Unsqueeze(op.Range(0, trips, 1), [-1])                           # (C, 1)
    X = op.Identity(rhs)
    for i in range(trips):
        at = op.Reshape(i, [1])
        solved = op.Gather(rhs, at, axis=-2) - op.MatMul(op.Gather(L, at, axis=-2), X)  # (B, H, N, 1, ·)
        X = op.Where(row_ids == i, solved, X)
    # Shape inference drops the shape of a loop-carried value (it may change between iterations), and
    # onnxruntime's Scan needs its body outputs' ranks: restate X's shape, which the Loop keeps.
    u, w = op.Split(op.Reshape(X, op.Shape(rhs)), op.Concat(Dv, Dk, axis=0), axis=-1)
    k_out = op.Transpose(kb * op.Unsqueeze(op.Exp(op.CumSum(g, -1, exclusive=1, reverse=1)), [-1]),
                         perm=[0, 1, 2, 4, 3])                                    # k · decay to block end, ᵀ
    block_decay = op.Unsqueeze(op.Exp(op.Gather(into, -1, axis=-1)), [-1, -2])  # (B, H, N, 1, 1)

    @graph()
    def carry(s, decay_n, u_n, w_n, k_out_n):
        """State before block n and its pseudo-values (scanned out), and the state after it."""
        before = op.Identity(s)
        pseudo = u_n - op.MatMul(w_n, s)
        return decay_n * s + op.MatMul(k_out_n, pseudo), before, pseudo

    new_state, before, pseudo = op.Scan(state, block_decay, u, w, k_out, body=carry, num_scan_inputs=4,
                                        scan_input_axes=[2, 2, 2, 2], scan_output_axes=[2, 2])
    intra = op.MatMul(qb, k_t) * gamma                                            # (B, H, N, C, C)
    o = op.MatMul(intra, pseudo) + op.MatMul(qb * e_into, before)
    o = op.Transpose(o, perm=[0, 2, 3, 1, 4])                                     # (B, N, C, H, Dv)
    o = op.Slice(op.Reshape(o, op.Concat([0, -1], op.Shape(o, start=3), axis=0)), [0], T, [1])
    return o * scale, new_state
