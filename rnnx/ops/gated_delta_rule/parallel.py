"""Parallel form: the UT representation over the whole sequence as one T x T block. Quadratic in T."""
from .chunk import chunk_gated_delta_rule


def parallel_gated_delta_rule(q, k, v, g, beta, state, *, scale: float):
    """Shapes as `chunk_gated_delta_rule`; the whole sequence is a single block."""
    return chunk_gated_delta_rule(q, k, v, g, beta, state, scale=scale, chunk_size=max(q.shape[1], 1))
