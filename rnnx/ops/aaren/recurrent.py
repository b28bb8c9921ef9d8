"""Recurrent form: fold one token `(s_t, 1, v_t)` into the running summary per step."""
import torch

from .scan import combine, scores


def recurrent_aaren(q, k, v, m0, u0, w0, *, scale: float):
    """Shapes as `parallel_aaren`; memory is the `(B, H, Dv + 2)` summary whatever T is."""
    s, vf = scores(q, k, scale), v.float()
    state, o = (m0, u0, w0), []
    for t in range(k.shape[1]):
        state = combine(state, (s[:, t], torch.ones_like(s[:, t]), vf[:, t]))
        o.append(state[2] / state[1][..., None])
    return (torch.stack(o, 1).to(v.dtype), *state)
