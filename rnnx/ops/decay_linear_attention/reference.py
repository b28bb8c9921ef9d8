"""fp64 reference: the recurrence exactly as written in the papers, one (sequence, head, token) at a time."""
import torch


def reference_decay_linear_attention(q, k, v, decay, state, *, scale: float):
    """Shapes as `chunk_decay_linear_attention`; computes and returns fp64."""
    B, T, H, _ = q.shape
    q, k, v, state = (x.double() for x in (q, k, v, state))
    g = decay.double().expand(B, T, H)
    o = torch.zeros(v.shape, dtype=torch.float64)
    S = state.clone()
    for b in range(B):
        for h in range(H):
            for t in range(T):
                S[b, h] = torch.exp(g[b, t, h]) * S[b, h] + torch.outer(k[b, t, h], v[b, t, h])
                o[b, t, h] = scale * q[b, t, h] @ S[b, h]
    return o, S
