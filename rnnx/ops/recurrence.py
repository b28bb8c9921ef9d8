"""The fp64 reference of the linear-attention ops: the recurrence exactly as the papers write it, one
(sequence, head, token) at a time; each op gives only its state update."""
import itertools

import torch


def reference_recurrence(q, v, state, update, *, scale: float):
    """`o_t = scale · q_tᵀ S_t` with `S_t = update(S_{t-1}, b, t, h)`, in fp64.

    Args:
        q: `(B, T, H, Dk)`; v: `(B, T, H, Dv)` (its shape is the output's); state: `(B, H, Dk, Dv)`.
        update: `(S (Dk, Dv) fp64, b, t, h) -> S`, the op's rule for token t of sequence b in head h.
    Returns:
        o: `(B, T, H, Dv)` and the state after the last token, fp64.
    """
    B, T, H, _ = q.shape
    q, S = q.double(), state.double().clone()
    o = torch.zeros(v.shape, dtype=torch.float64)
    for b, h, t in itertools.product(range(B), range(H), range(T)):
        S[b, h] = update(S[b, h], b, t, h)
        o[b, t, h] = scale * q[b, t, h] @ S[b, h]
    return o, S
