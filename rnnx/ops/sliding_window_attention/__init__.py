"""Sliding-window softmax attention: local attention, the softmax baseline with a constant-size cache."""
import torch

from ..registry import OpDef, StateTensor, register
from .chunk import chunk_sliding_window_attention
from .parallel import parallel_sliding_window_attention
from .recurrent import recurrent_sliding_window_attention
from .reference import reference_sliding_window_attention
from .samples import sample_inputs, sample_pos

OP = register(OpDef(
    name="sliding_window_attention",
    inputs=("q", "k", "v"),
    state=(StateTensor("keys", ("B", "H", "window", "Dk")),
           StateTensor("values", ("B", "H", "window", "Dv")),
           StateTensor("pos", ("B",), dtype=torch.int64, sampler=sample_pos)),
    attributes={"window": int, "scale": float, "mode": str, "chunk_size": int},
    forms={"parallel": parallel_sliding_window_attention, "chunk": chunk_sliding_window_attention,
           "recurrent": recurrent_sliding_window_attention},
    reference=reference_sliding_window_attention,
    sample_inputs=sample_inputs,
    summary="o_t = softmax_{t-W<s≤t}(scale · q_tᵀ k_s) v_s with a ring buffer of the last W keys and values",
))


def sliding_window_attention(q, k, v, *, window, scale=None, state=None, mode="chunk", chunk_size=64):
    """Causal softmax attention over the last `window` tokens (each token sees itself and W - 1 before it).

    Args:
        q, k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`; fp32, fp16 or bf16.
        window: W, the number of tokens each query attends to.
        scale: defaults to `Dk ** -0.5`.
        state: `SlidingWindowAttentionState(keys (B, H, W, Dk), values (B, H, W, Dv), pos (B,) int64)`: ring
            buffers (token p in slot p % W) and the count of tokens seen; empty when None.
        mode: "parallel" (quadratic), "chunk" (band of W + C keys per block) or "recurrent".
        chunk_size: block length of the chunk form.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; state after the last token.
    """
    if window < 1:
        raise ValueError(f"sliding_window_attention: window must be >= 1, got {window}")
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return OP(q, k, v, state=state, mode=mode, window=window, scale=float(scale), chunk_size=chunk_size)


SlidingWindowAttentionState = OP.state_type
__all__ = ["sliding_window_attention", "SlidingWindowAttentionState"]
