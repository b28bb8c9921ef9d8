"""fp64 reference: ONNX LinearAttention's `gated_delta` rule, one (sequence, head, token) at a time."""
import torch

from ..recurrence import reference_recurrence


def reference_gated_delta_rule(q, k, v, g, beta, state, *, scale: float):
    """Shapes as `chunk_gated_delta_rule`; computes and returns fp64."""
    k, v, beta = k.double(), v.double(), beta.double()
    g = g.double().expand(q.shape[:3])

    def update(S, b, t, h):
        kt, decayed = k[b, t, h], torch.exp(g[b, t, h]) * S
        return decayed + beta[b, t, h] * torch.outer(kt, v[b, t, h] - decayed.T @ kt)

    return reference_recurrence(q, v, state, update, scale=scale)
