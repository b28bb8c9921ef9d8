"""Recurrent form: `S' = exp(g_t) S`, `S_t = S' + β_t k_t (v_t - S'ᵀ k_t)ᵀ`, `o_t = scale · q_tᵀ S_t`."""
import torch

from ..blocks import per_token


def recurrent_gated_delta_rule(q, k, v, g, beta, state, *, scale: float):
    """Shapes as `chunk_gated_delta_rule`; memory is the `(B, H, Dk, Dv)` state whatever T is."""
    B, T, H, _ = q.shape
    alpha = per_token(g, B, T, H).exp()[..., None, None]
    dtype, (q, k, v, beta) = q.dtype, (x.float() for x in (q, k, v, beta))
    o = []
    for t in range(T):
        state = alpha[:, t] * state
        u = beta[:, t, :, None] * (v[:, t] - torch.einsum("bhkv,bhk->bhv", state, k[:, t]))
        state = state + k[:, t, :, :, None] * u[:, :, None, :]
        o.append(torch.einsum("bhk,bhkv->bhv", q[:, t], state))
    return (scale * torch.stack(o, 1)).to(dtype), state
