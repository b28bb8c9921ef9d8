"""Linear attention with decay: TransNormerLLM, Lightning Attention 1 & 2, RetNet, Mamba-2 (per head or per
token), GLA and HGRN2 (per key dimension)."""
from ..registry import OpDef, StateTensor, register
from .chunk import chunk_decay_linear_attention
from .decays import retnet_decay, transnormer_decay
from .parallel import parallel_decay_linear_attention
from .recurrent import recurrent_decay_linear_attention
from .reference import reference_decay_linear_attention
from .samples import sample_inputs

OP = register(OpDef(
    name="decay_linear_attention",
    inputs=("q", "k", "v", "decay"),
    state=(StateTensor("state", ("B", "H", "Dk", "Dv")),),
    attributes={"scale": float, "mode": str, "chunk_size": int},
    forms={"parallel": parallel_decay_linear_attention, "chunk": chunk_decay_linear_attention,
           "recurrent": recurrent_decay_linear_attention},
    linear_attention_rule="gated",
    reference=reference_decay_linear_attention,
    sample_inputs=sample_inputs,
    summary="S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ; o_t = scale · q_tᵀ S_t (TransNormerLLM, Lightning, "
            "RetNet; GLA, HGRN2 per key)",
))


def decay_linear_attention(q, k, v, decay, *, scale=None, state=None, mode="chunk", chunk_size=64):
    """Linear attention with a decay per head, per token or per key dimension.

    `S_t = diag(exp(g_t)) S_{t-1} + k_t v_tᵀ`, `o_t = scale · q_tᵀ S_t`: row i of the `(Dk, Dv)` state
    decays by `exp(g_t[i])` (by one `exp(g_t)` for a scalar decay).

    Args:
        q, k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`; fp32, fp16 or bf16.
        decay: log-space decay `g` (<= 0): `(H,)` per head (TransNormerLLM, Lightning Attention, RetNet;
            see `transnormer_decay`, `retnet_decay`), `(B, T, H)` per token (Mamba-2) or `(B, T, H, Dk)`
            per key dimension (GLA, HGRN2: e.g. `logsigmoid(x W) / 16`).
        scale: defaults to `Dk ** -0.5`.
        state: `(B, H, Dk, Dv)` fp32 state before the first token; zeros when None.
        mode: "parallel" (quadratic), "chunk" (Lightning Attention-2 tiling; GLA's intra-block scores per
            key dimension) or "recurrent".
        chunk_size: block length of the chunk form.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; state: `(B, H, Dk, Dv)` fp32 after the last token.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return OP(q, k, v, decay, state=state, mode=mode, scale=float(scale), chunk_size=chunk_size)


__all__ = ["decay_linear_attention", "transnormer_decay", "retnet_decay"]
