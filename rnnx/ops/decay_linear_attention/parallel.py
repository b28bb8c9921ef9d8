"""Parallel form: `O = scale · ((Q Kᵀ) ⊙ D) V + scale · (Q ⊙ exp(G)) S₀`, one T x T block. Quadratic in T
(and T x T x Dk for a decay per key dimension, whose mask `D` is one T x T matrix per row of the state)."""
from .chunk import chunk_decay_linear_attention


def parallel_decay_linear_attention(q, k, v, decay, state, *, scale: float):
    """Shapes as `chunk_decay_linear_attention`; the whole sequence is a single block."""
    return chunk_decay_linear_attention(q, k, v, decay, state, scale=scale, chunk_size=max(q.shape[1], 1))
