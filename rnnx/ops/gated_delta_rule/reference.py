"""fp64 reference: ONNX LinearAttention's `gated_delta` rule, one (sequence, head, token) at a time."""
import torch


def reference_gated_delta_rule(q, k, v, g, beta, state, *, scale: float):
    """Shapes as `chunk_gated_delta_rule`; computes and returns fp64."""
    B, T, H, _ = q.shape
    q, k, v, beta, state = (x.double() for x in (q, k, v, beta, state))
    g = g.double().expand(B, T, H)
    o = torch.zeros(v.shape, dtype=torch.float64)
    S = state.clone()
    for b in range(B):
        for h in range(H):
            for t in range(T):
                kt, decayed = k[b, t, h], torch.exp(g[b, t, h]) * S[b, h]
                S[b, h] = decayed + beta[b, t, h] * torch.outer(kt, v[b, t, h] - decayed.T @ kt)
                o[b, t, h] = scale * q[b, t, h] @ S[b, h]
    return o, S
