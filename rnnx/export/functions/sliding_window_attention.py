"""ONNX function bodies (opset 20) of sliding-window attention: `sequence` mirrors
`ops/sliding_window_attention/chunk.py`, `step` one iteration of its `recurrent.py`. The state is its
`ring.py`'s ring buffer: token p in slot p % W, pos tokens seen."""
from onnxscript import FLOAT, INT64, opset20 as op, script

from ...lowerings import lowering

NEG_INF = float("-inf")


@lowering("onnx", "sliding_window_attention", "sequence")
@script()
def sequence(q: FLOAT, k: FLOAT, v: FLOAT, keys: FLOAT, values: FLOAT, pos: INT64,
             window: int, scale: float, mode: str, chunk_size: int):
    """q, k `(B, T, H, Dk)`, v `(B, T, H, Dv)`, rings keys `(B, H, W, Dk)`, values `(B, H, W, Dv)`, pos `(B,)`,
    any T >= 1 -> o `(B, T, H, Dv)` and the state after the last token. Each block of C = chunk_size queries
    attends to a band of W + C keys: the W tokens before the block and the block itself."""
    zero, one, two = op.Constant(value_ints=[0]), op.Constant(value_ints=[1]), op.Constant(value_ints=[2])
    int0, int1 = op.Constant(value_int=0), op.Constant(value_int=1)
    W, C = op.Constant(value_int=window), op.Constant(value_int=chunk_size)
    T = op.Shape(q, start=1, end=2)
    N = (T + C - 1) / C
    pad, fill = op.Concat(zero, N * C - T, axis=0), op.Constant(value_float=0.0)  # T up to N * C
    slots = op.Range(int0, W, int1)

    # The timeline: the ring's W tokens in time order (ring.unroll: slot (pos + i) % W holds token pos - W + i),
    # then the sequence.
    # The reordering is a one-hot permutation product: exact, and unlike GatherElements it runs in onnx's
    # reference evaluator for any W.
    on_off = op.Constant(value_floats=[0.0, 1.0])
    order = op.Unsqueeze(op.OneHot(op.Mod(op.Unsqueeze(pos, one) + slots, W), W, on_off), one)  # (B, 1, W, W)
    seq_k = op.Concat(op.MatMul(order, keys), op.Transpose(k, perm=[0, 2, 1, 3]), axis=2)        # (B, H, W + T, Dk)
    seq_v = op.Concat(op.MatMul(order, values), op.Transpose(v, perm=[0, 2, 1, 3]), axis=2)

    # Block n's band is timeline[nC : nC + W + C] (zero-padded past the end), its query i sitting at key W + i.
    j = op.Range(int0, W + C, int1)
    band_index = op.Unsqueeze(op.Range(int0, op.Squeeze(N), int1) * C, one) + j                  # (N, W + C)
    win_k = op.Gather(op.Pad(seq_k, pad, fill, two), band_index, axis=2)                         # (B, H, N, W + C, Dk)
    win_v = op.Gather(op.Pad(seq_v, pad, fill, two), band_index, axis=2)
    qb = op.Pad(op.Transpose(q, perm=[0, 2, 1, 3]), pad, fill, two)
    qb = op.Reshape(qb, op.Concat(op.Constant(value_ints=[0, 0, -1]), op.Unsqueeze(C, zero), op.Shape(q, start=3),
                                  axis=0))                                                       # (B, H, N, C, Dk)
    s = op.MatMul(qb, op.Transpose(win_k, perm=[0, 1, 2, 4, 3]))                                 # (B, H, N, C, W + C)
    i = op.Unsqueeze(op.Range(int0, C, int1), one)                                               # (C, 1)
    band = op.And(j > i, j <= i + W)                                                             # (C, W + C)
    # Keys at absolute positions < 0 are ring slots never written.
    seen = op.Unsqueeze(pos, op.Constant(value_ints=[1, 2])) - W + band_index >= 0               # (B, N, W + C)
    mask = op.And(band, op.Unsqueeze(seen, op.Constant(value_ints=[1, 3])))                      # (B, 1, N, C, W + C)
    s = op.Where(mask, s * op.Constant(value_float=scale), op.Constant(value_float=NEG_INF))
    o = op.MatMul(op.Softmax(s, axis=-1), win_v)                                                 # (B, H, N, C, Dv)
    o = op.Reshape(o, op.Concat(op.Constant(value_ints=[0, 0, -1]), op.Shape(v, start=3), axis=0))
    o = op.Transpose(op.Slice(o, zero, T, two), perm=[0, 2, 1, 3])

    # The new ring: the timeline's last W tokens, token p back in slot p % W (ring.roll_up).
    pos = pos + T
    order = op.Unsqueeze(op.OneHot(op.Mod(op.Unsqueeze(pos, one) + slots, W), W, on_off), one)
    end = op.Shape(seq_k, start=2, end=3)
    last_k, last_v = op.Slice(seq_k, T, end, two), op.Slice(seq_v, T, end, two)                  # (B, H, W, D)
    back = op.Transpose(order, perm=[0, 1, 3, 2])                                                # the inverse permutation
    keys, values = op.MatMul(back, last_k), op.MatMul(back, last_v)
    return o, keys, values, pos


@lowering("onnx", "sliding_window_attention", "step")
@script()
def step(q: FLOAT, k: FLOAT, v: FLOAT, keys: FLOAT, values: FLOAT, pos: INT64,
         window: int, scale: float, mode: str, chunk_size: int):
    """q, k `(B, 1, H, Dk)`, v `(B, 1, H, Dv)`, rings keys `(B, H, W, Dk)`, values `(B, H, W, Dv)`, pos `(B,)`
    -> o `(B, 1, H, Dv)` and the state with the token written into slot pos % W."""
    W, one = op.Constant(value_int=window), op.Constant(value_ints=[1])
    slots = op.Range(op.Constant(value_int=0), W, op.Constant(value_int=1))
    write = op.Unsqueeze(op.Mod(op.Unsqueeze(pos, one), W) == slots, op.Constant(value_ints=[1, 3]))  # (B, 1, W, 1)
    keys = op.Where(write, op.Transpose(k, perm=[0, 2, 1, 3]), keys)
    values = op.Where(write, op.Transpose(v, perm=[0, 2, 1, 3]), values)
    pos = pos + 1
    s = op.MatMul(op.Transpose(q, perm=[0, 2, 1, 3]), op.Transpose(keys, perm=[0, 1, 3, 2]))  # (B, H, 1, W)
    # Until the ring fills, slots pos .. W - 1 are empty.
    empty = op.Unsqueeze(slots >= op.Unsqueeze(pos, one), op.Constant(value_ints=[1, 2]))  # (B, 1, 1, W)
    s = op.Where(empty, op.Constant(value_float=NEG_INF), s * op.Constant(value_float=scale))
    o = op.MatMul(op.Softmax(s, axis=-1), values)                                        # (B, H, 1, Dv)
    return op.Transpose(o, perm=[0, 2, 1, 3]), keys, values, pos
