"""fp64 reference: each output is a plain softmax of the query over every token so far (and the prior
summary), computed directly, one (sequence, head, token) at a time."""
import torch


def reference_aaren(q, k, v, m0, u0, w0, *, scale: float):
    """Shapes as `parallel_aaren`; computes and returns fp64."""
    B, T, H, _ = k.shape
    q, k, v, m0, u0, w0 = (x.double() for x in (q, k, v, m0, u0, w0))
    s = scale * torch.einsum("bthd,hd->bth", k, q)
    o = torch.zeros(v.shape, dtype=torch.float64)
    m, u, w = m0.clone(), u0.clone(), w0.clone()
    for b in range(B):
        for h in range(H):
            for t in range(T):
                top = torch.maximum(m0[b, h], s[b, : t + 1, h].max())
                weights = torch.exp(s[b, : t + 1, h] - top)
                prior = torch.exp(m0[b, h] - top)  # 0 for an empty prior (m0 = -inf)
                u[b, h] = u0[b, h] * prior + weights.sum()
                w[b, h] = w0[b, h] * prior + weights @ v[b, : t + 1, h]
                m[b, h] = top
                o[b, t, h] = w[b, h] / u[b, h]
    return o, m, u, w
