"""Recurrent form: one state update per token, `S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ`,
`o_t = scale · q_tᵀ S_t`."""
import torch

from ..blocks import per_key


def recurrent_decay_linear_attention(q, k, v, decay, state, *, scale: float):
    """Shapes as `chunk_decay_linear_attention`; memory is the `(B, H, Dk, Dv)` state whatever T is."""
    B, T, H, Dk = q.shape
    g = per_key(decay, B, T, H, Dk).exp()[..., None]  # (B, T, H, Dg, 1): per state row, or one for all
    dtype, (q, k, v) = q.dtype, (x.float() for x in (q, k, v))
    o = []
    for t in range(T):
        state = g[:, t] * state + k[:, t, :, :, None] * v[:, t, :, None, :]
        o.append(torch.einsum("bhk,bhkv->bhv", q[:, t], state))
    return (scale * torch.stack(o, 1)).to(dtype), state
