"""Gated delta rule: Titans' linear memory, Gated DeltaNet, DeltaNet (g = 0)."""
from ..registry import OpDef, StateTensor, register
from .chunk import chunk_gated_delta_rule
from .parallel import parallel_gated_delta_rule
from .recurrent import recurrent_gated_delta_rule
from .reference import reference_gated_delta_rule
from .samples import sample_inputs

OP = register(OpDef(
    name="gated_delta_rule",
    inputs=("q", "k", "v", "g", "beta"),
    state=(StateTensor("state", ("B", "H", "Dk", "Dv")),),
    attributes={"scale": float, "mode": str, "chunk_size": int},
    forms={"parallel": parallel_gated_delta_rule, "chunk": chunk_gated_delta_rule,
           "recurrent": recurrent_gated_delta_rule},
    linear_attention_rule="gated_delta",
    reference=reference_gated_delta_rule,
    sample_inputs=sample_inputs,
    summary="S_t = e^{g_t} S_{t-1} + β_t k_t (v_t - e^{g_t} S_{t-1}ᵀ k_t)ᵀ (Titans memory, Gated DeltaNet)",
))


def gated_delta_rule(q, k, v, g, beta, *, scale=None, state=None, mode="chunk", chunk_size=64):
    """The gated delta rule, with the semantics of ONNX `LinearAttention(update_rule="gated_delta")`.

    `S_t = exp(g_t) S_{t-1} + β_t k_t (v_t - exp(g_t) S_{t-1}ᵀ k_t)ᵀ`, `o_t = scale · q_tᵀ S_t`: the
    memory takes one step of gradient descent on `‖Sᵀ k_t - v_t‖²` with learning rate β_t after a decay
    (Titans' linear memory with forgetting; DeltaNet when g = 0).

    Args:
        q, k: `(B, T, H, Dk)`; k should be L2-normalised. v: `(B, T, H, Dv)`. fp32, fp16 or bf16.
        g: log-space decay (<= 0), `(B, T, H)` per token or `(H,)` per head.
        beta: update rate in (0, 1), `(B, T, H)`.
        scale: defaults to `Dk ** -0.5`.
        state: `(B, H, Dk, Dv)` fp32 state before the first token; zeros when None.
        mode: "parallel" (quadratic), "chunk" (WY / UT representation) or "recurrent".
        chunk_size: block length of the chunk form.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; state: `(B, H, Dk, Dv)` fp32 after the last token.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return OP(q, k, v, g, beta, state=state, mode=mode, scale=float(scale), chunk_size=chunk_size)


__all__ = ["gated_delta_rule"]
