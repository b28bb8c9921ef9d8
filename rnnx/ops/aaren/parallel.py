"""Parallel form: the paper's associative prefix scan over all tokens, log2(T) vectorised rounds."""
import torch

from .scan import prefix_scan, scores


def parallel_aaren(q, k, v, m0, u0, w0, *, scale: float):
    """
    Args:
        q: `(H, Dk)` learned query per head; k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`.
        m0, u0: `(B, H)`; w0: `(B, H, Dv)`: running max, denominator and numerator (fp32) summarising
            the tokens before the first.
    Returns:
        o: `(B, T, H, Dv)` in `v`'s dtype; running max, denominator, numerator after the last token.
    """
    s = scores(q, k, scale)
    m, u, w = prefix_scan(torch.cat([m0[:, None], s], 1), torch.cat([u0[:, None], torch.ones_like(s)], 1),
                          torch.cat([w0[:, None], v.float()], 1))
    return (w[:, 1:] / u[:, 1:, :, None]).to(v.dtype), m[:, -1], u[:, -1], w[:, -1]
