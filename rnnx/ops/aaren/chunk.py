"""Chunked form: softmax inside each block of C tokens (a C x C masked weight matrix against the block's
running max), block summaries merged by the prefix scan, then each token's local summary merged with
the summary of everything before its block. Linear in T."""
import torch

from ..blocks import from_blocks, to_blocks
from .scan import combine, prefix_scan, scores


def chunk_aaren(q, k, v, m0, u0, w0, *, scale: float, chunk_size: int):
    """Shapes as `parallel_aaren`."""
    T, C = k.shape[1], chunk_size
    s = to_blocks(scores(q, k, scale)[..., None], C)[..., 0]               # (B, H, N, C)
    padding = torch.arange(s.shape[2] * C, device=s.device).reshape(-1, C) >= T
    s = s.masked_fill(padding, float("-inf"))
    m = s.cummax(-1).values
    causal = torch.ones(C, C, dtype=torch.bool, device=s.device).tril()
    p = torch.exp(s[..., None, :] - m[..., None]).masked_fill(~causal, 0)  # (B, H, N, C, C)
    local = (m, p.sum(-1), p @ to_blocks(v, C))
    ends = [torch.cat([x0[:, :, None], x[:, :, :, -1]], 2) for x0, x in zip((m0, u0, w0), local)]
    carry = prefix_scan(*ends, dim=2)                                      # (B, H, N + 1, ...)
    _, u, w = combine(tuple(x[:, :, :-1, None] for x in carry), local)
    o = from_blocks(w / u[..., None], T).to(v.dtype)
    return (o, *(x[:, :, -1] for x in carry))
