"""Parallel form: all T queries against the W cached keys and all T keys with a band mask. Quadratic in T."""
from .chunk import chunk_sliding_window_attention


def parallel_sliding_window_attention(q, k, v, keys, values, pos, *, window: int, scale: float):
    """Shapes as `chunk_sliding_window_attention`; the whole sequence is a single block."""
    return chunk_sliding_window_attention(q, k, v, keys, values, pos, window=window, scale=scale,
                                          chunk_size=max(q.shape[1], 1))
