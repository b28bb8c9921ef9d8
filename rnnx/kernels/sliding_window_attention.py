"""TIR kernels of sliding_window_attention: softmax attention over the last W tokens, carried as ring
buffers of keys and values (token p in slot `p % W`) and `pos`, the count of tokens seen.

Parameters `(q, k, v, keys, values, pos, o)`: `keys` `(B, H, W, Dk)`, `values` `(B, H, W, Dv)` fp32 and
`pos` `(B,)` int64 are updated in place.

Per token (as `ops/sliding_window_attention/recurrent.py`): write k, v into slot `pos % W`, count the
token, then attend over the filled slots, slots `w < min(pos, W)` (masked to -inf in the torch form;
here their scores are never computed and their weights are 0). Both kernels run the tokens in order per
(b, h) (the state is O(W · D)): scores are dot products over Dk in vector lanes; the softmax runs in 16
lanes over the slots (max, `fast_exp`, sum), then the weighted sum of values is vectorised over Dv and
scaled by `1 / sum` (one scalar division). `pos` is advanced once per sequence, after all its heads.
"""
from __future__ import annotations

from . import add, fast_exp, macros, register, tile

F32 = "float32"


def _recurrent(shapes, attrs, name):
    from tvm.script import tirx as T

    from tvm import tirx

    lane_reduce = macros().lane_reduce
    (B, L, H, Dk), Dv, W = shapes[0], shapes[2][3], int(attrs["window"])
    if tuple(shapes[3]) != (B, H, W, Dk):
        raise ValueError(f"keys must be (B, H, window, Dk) = {(B, H, W, Dk)}, got {tuple(shapes[3])}")
    scale = float(attrs["scale"])
    lanes = tile(Dk)
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))
    wl = 16                           # the softmax over the slots runs in 16 lanes
    Wp = -(-W // wl) * wl             # slots padded to a multiple of the lanes

    @T.prim_func
    def kernel(q: T.Buffer((B, L, H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32),
               v: T.Buffer((B, L, H, Dv), F32), keys: T.Buffer((B, H, W, Dk), F32),
               values: T.Buffer((B, H, W, Dv), F32), pos: T.Buffer((B,), "int64"),
               o: T.Buffer((B, L, H, Dv), F32)):
        T.func_attr({"global_symbol": name, "tir.noalias": True})
        part = T.alloc_buffer((lanes,), F32)
        acc = T.alloc_buffer((vb,), F32)
        red = T.alloc_buffer((wl,), F32)     # lanes of the max, then of the sum, of the weights
        mx = T.alloc_buffer((1,), F32)       # the max score, then 1 / the sum of the weights
        e = T.alloc_buffer((Wp,), F32)       # scores, then softmax weights (unnormalised, 0 if unfilled)
        ix = T.alloc_buffer((2,), "int32")   # the token's ring slot, the number of filled slots
        for b, h in T.grid(B, H):
            for t in range(L):
                ix[0] = T.Cast("int32", T.floormod(pos[b] + T.Cast("int64", t), T.int64(W)))
                ix[1] = T.Cast("int32", T.min(pos[b] + T.Cast("int64", t) + T.int64(1), T.int64(W)))
                for d in T.vectorized(Dk):
                    keys[b, h, ix[0], d] = k[b, t, h, d]
                for d in T.vectorized(Dv):
                    values[b, h, ix[0], d] = v[b, t, h, d]
                for w in range(ix[1]):
                    for li in T.vectorized(lanes):
                        part[li] = T.float32(0)
                    for d0 in range(Dk // lanes):
                        for li in T.vectorized(lanes):
                            part[li] = part[li] + q[b, t, h, d0 * lanes + li] * keys[b, h, w, d0 * lanes + li]
                    lane_reduce(part, lanes, add)
                    e[w] = T.float32(scale) * part[0]
                for li in T.vectorized(wl):
                    red[li] = T.float32("-inf")
                for w0 in range(Wp // wl):
                    for li in T.vectorized(wl):
                        red[li] = T.max(red[li], T.Select(w0 * wl + li < ix[1], e[w0 * wl + li], T.float32("-inf")))
                lane_reduce(red, wl, tirx.max)
                mx[0] = red[0]
                for li in T.vectorized(wl):
                    red[li] = T.float32(0)
                for w0 in range(Wp // wl):
                    for li in T.vectorized(wl):
                        e[w0 * wl + li] = T.Select(w0 * wl + li < ix[1], fast_exp(e[w0 * wl + li] - mx[0]),
                                                   T.float32(0))
                        red[li] = red[li] + e[w0 * wl + li]
                lane_reduce(red, wl, add)
                mx[0] = T.float32(1) / red[0]  # one division, not a vector one per lane group
                for j0 in range(Dv // vb):
                    for j in T.vectorized(vb):
                        acc[j] = T.float32(0)
                    for w in range(ix[1]):
                        for j in T.vectorized(vb):
                            acc[j] = acc[j] + e[w] * values[b, h, w, j0 * vb + j]
                    for j in T.vectorized(vb):
                        o[b, t, h, j0 * vb + j] = acc[j] * mx[0]
        for b in range(B):
            pos[b] = pos[b] + T.Cast("int64", L)

    return kernel


register("sliding_window_attention", "step", _recurrent)
register("sliding_window_attention", "sequence", _recurrent)
