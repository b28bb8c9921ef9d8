"""Aaren: Attention as an RNN (Feng et al., 2024)."""
from ..registry import OpDef, StateTensor, register
from .chunk import chunk_aaren
from .parallel import parallel_aaren
from .recurrent import recurrent_aaren
from .reference import reference_aaren
from .samples import sample_denominator, sample_inputs

OP = register(OpDef(
    name="aaren",
    inputs=("q", "k", "v"),
    state=(StateTensor("running_max", ("B", "H"), fill=float("-inf")),
           StateTensor("denominator", ("B", "H"), sampler=sample_denominator),
           StateTensor("numerator", ("B", "H", "Dv"))),
    attributes={"scale": float, "mode": str, "chunk_size": int},
    forms={"parallel": parallel_aaren, "chunk": chunk_aaren, "recurrent": recurrent_aaren},
    reference=reference_aaren,
    sample_inputs=sample_inputs,
    summary="o_t = softmax_{i≤t}(scale · qᵀ k_i) v_i for a learned query per head (Attention as an RNN)",
))


def aaren(q, k, v, *, scale=None, state=None, mode="chunk", chunk_size=64):
    """Attention as an RNN: many-to-many softmax attention of a learned, input-independent query.

    `o_t = Σ_{i≤t} exp(s_i) v_i / Σ_{i≤t} exp(s_i)` with `s_i = scale · q_hᵀ k_i`, carried as the running
    max `m`, denominator `u = Σ exp(s_i - m)` and numerator `w = Σ exp(s_i - m) v_i`.

    Args:
        q: `(H, Dk)`, the learned query of each head; k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`.
        scale: defaults to `Dk ** -0.5`.
        state: `AarenState(running_max (B, H), denominator (B, H), numerator (B, H, Dv))`, fp32;
            the empty summary (-inf, 0, 0) when None.
        mode: "parallel" (log-depth associative scan), "chunk" or "recurrent".
        chunk_size: block length of the chunk form.
    Returns:
        o: `(B, T, H, Dv)` in `v`'s dtype; state: `AarenState` after the last token.
    """
    if q.dim() != 2 or q.shape != (k.shape[2], k.shape[3]):
        raise ValueError(f"aaren: q must be one learned query per head, (H, Dk) = {tuple(k.shape[2:])}, "
                         f"got {tuple(q.shape)}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return OP(q, k, v, state=state, mode=mode, scale=float(scale), chunk_size=chunk_size)


AarenState = OP.state_type
__all__ = ["aaren", "AarenState"]
