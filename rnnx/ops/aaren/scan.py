"""The associative operator of Attention as an RNN and its log-depth prefix scan.

A summary `(m, u, w)` of tokens with scores `s_i` holds `m = max s_i`, `u = Σ exp(s_i - m)` and
`w = Σ exp(s_i - m) v_i`; `combine` merges two summaries, rescaling both to the larger max, so no
exponent is ever positive (no overflow, whatever the scores' magnitude).
"""
import torch


def _rescale(m_part: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    # An empty summary has m = -inf; -inf - -inf is nan, but its u and w are 0 so any finite factor works.
    return torch.where(m_part == m, 1.0, torch.exp(m_part - m))


def combine(a: tuple, b: tuple) -> tuple:
    """Merge summaries `a = (m, u, w)` of earlier tokens and `b` of later ones; m, u: `(...)`, w: `(..., Dv)`."""
    (ma, ua, wa), (mb, ub, wb) = a, b
    m = torch.maximum(ma, mb)
    ca, cb = _rescale(ma, m), _rescale(mb, m)
    return m, ua * ca + ub * cb, wa * ca[..., None] + wb * cb[..., None]


def prefix_scan(m: torch.Tensor, u: torch.Tensor, w: torch.Tensor, dim: int = 1) -> tuple:
    """Inclusive prefix of `combine` along `dim` (Hillis-Steele: log2(T) rounds of vectorised combines).
    m, u: `(B, T, H)`; w: `(B, T, H, Dv)` for `dim=1`."""
    T, d = m.shape[dim], 1
    while d < T:
        head = tuple(x.narrow(dim, 0, d) for x in (m, u, w))
        tail = combine(tuple(x.narrow(dim, 0, T - d) for x in (m, u, w)),
                       tuple(x.narrow(dim, d, T - d) for x in (m, u, w)))
        m, u, w = (torch.cat([h, t], dim) for h, t in zip(head, tail))
        d *= 2
    return m, u, w


def scores(q: torch.Tensor, k: torch.Tensor, scale: float) -> torch.Tensor:
    """q `(H, Dk)`, k `(B, T, H, Dk)` -> `(B, T, H)` fp32."""
    return scale * torch.einsum("bthd,hd->bth", k.float(), q.float())
