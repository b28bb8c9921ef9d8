"""TIR kernels of aaren (Attention as an RNN): fold each token `(s_t, 1, v_t)`, `s_t = scale · q_hᵀ k_t`,
into the running summary `(m, u, w)` (max, denominator, numerator) and emit `o_t = w / u`.

Parameters `(q, k, v, running_max, denominator, numerator, o)`: `q` `(H, Dk)` is the learned query of each
head; the three state buffers `(B, H)`, `(B, H)`, `(B, H, Dv)` are updated in place.

The merge is `combine` of `ops/aaren/scan.py`: `m' = max(m, s)`, each side rescaled by
`where(m_part == m', 1, exp(m_part - m'))`, which keeps an empty summary (`m = -inf`) from giving
`exp(-inf - -inf) = nan`. Both kernels run the tokens in order (the state is O(Dv)), heads innermost;
the score is a dot product over Dk in vector lanes, the numerator update is vectorised over Dv, and
`o = w · (1 / u)` (one scalar division: a vector division per 16 lanes cost more than the rest).
"""
from __future__ import annotations

from . import add, macros, register, tile

F32 = "float32"


def _recurrent(shapes, attrs, name):
    from tvm.script import tirx as T

    lane_reduce = macros().lane_reduce
    (H, Dk), (B, L, _, _), Dv = shapes[0], shapes[1], shapes[2][3]
    scale = float(attrs["scale"])
    lanes = tile(Dk)                       # the dot product q·k in `lanes` partial sums
    vb = tile(Dv, (64, 32, 16, 8, 4, 2))

    @T.prim_func
    def kernel(q: T.Buffer((H, Dk), F32), k: T.Buffer((B, L, H, Dk), F32), v: T.Buffer((B, L, H, Dv), F32),
               running_max: T.Buffer((B, H), F32), denominator: T.Buffer((B, H), F32),
               numerator: T.Buffer((B, H, Dv), F32), o: T.Buffer((B, L, H, Dv), F32)):
        T.func_attr({"global_symbol": name, "tir.noalias": True})
        part = T.alloc_buffer((lanes,), F32)
        sc = T.alloc_buffer((5,), F32)  # the token's score, the new max, the two rescale factors, 1 / u
        # heads innermost: consecutive iterations are independent, so the max -> exp -> sum chains of
        # different heads overlap
        for b, t, h in T.grid(B, L, H):
            for li in T.vectorized(lanes):
                part[li] = T.float32(0)
            for d0 in range(Dk // lanes):
                for li in T.vectorized(lanes):
                    part[li] = part[li] + k[b, t, h, d0 * lanes + li] * q[h, d0 * lanes + li]
            lane_reduce(part, lanes, add)
            sc[0] = T.float32(scale) * part[0]
            sc[1] = T.max(running_max[b, h], sc[0])
            sc[2] = T.Select(running_max[b, h] == sc[1], T.float32(1), T.exp(running_max[b, h] - sc[1]))
            sc[3] = T.Select(sc[0] == sc[1], T.float32(1), T.exp(sc[0] - sc[1]))
            denominator[b, h] = denominator[b, h] * sc[2] + sc[3]
            running_max[b, h] = sc[1]
            sc[4] = T.float32(1) / denominator[b, h]  # one division, not a vector one per lane group
            for j0 in range(Dv // vb):
                for j in T.vectorized(vb):
                    numerator[b, h, j0 * vb + j] = (numerator[b, h, j0 * vb + j] * sc[2]
                                                    + v[b, t, h, j0 * vb + j] * sc[3])
                    o[b, t, h, j0 * vb + j] = numerator[b, h, j0 * vb + j] * sc[4]

    return kernel


register("aaren", "step", _recurrent)
register("aaren", "sequence", _recurrent)
