"""fp64 reference: `S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ`, one (sequence, head, token) at a time."""
import torch

from ..recurrence import reference_recurrence


def reference_decay_linear_attention(q, k, v, decay, state, *, scale: float):
    """Shapes as `chunk_decay_linear_attention`; computes and returns fp64."""
    k, v = k.double(), v.double()
    # (B, T, H, Dg): a factor per row of the state (per key), or one for every row (per head, per token)
    g = decay.double() if decay.dim() == 4 else decay.double().expand(q.shape[:3])[..., None]
    return reference_recurrence(q, v, state, lambda S, b, t, h: torch.exp(g[b, t, h])[:, None] * S
                                + torch.outer(k[b, t, h], v[b, t, h]), scale=scale)
