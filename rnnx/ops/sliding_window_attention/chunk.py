"""Chunked form: each block of C queries attends to a band of W + C keys (the W tokens before the block
and the block itself), taken as strided windows of one key sequence. Linear in T."""
import torch

from ..blocks import from_blocks, to_blocks
from .ring import roll_up, unroll


def chunk_sliding_window_attention(q, k, v, keys, values, pos, *, window: int, scale: float, chunk_size: int):
    """
    Args:
        q, k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`.
        keys: `(B, H, W, Dk)`, values: `(B, H, W, Dv)` fp32 ring buffers; pos: `(B,)` int64 tokens seen.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; keys, values, pos after the last token.
    """
    B, T, H, _ = q.shape
    W, C = window, chunk_size
    N = -(-T // C)
    seq_k, seq_v = (torch.cat([unroll(r, pos), x.float().transpose(1, 2)], 2) for r, x in ((keys, k), (values, v)))
    pad = (0, 0, 0, N * C - T)
    win_k, win_v = (torch.nn.functional.pad(x, pad).unfold(2, W + C, C).transpose(-1, -2) for x in (seq_k, seq_v))
    s = scale * to_blocks(q, C) @ win_k.transpose(-1, -2)                  # (B, H, N, C, W + C)
    i, j = torch.arange(C, device=q.device)[:, None], torch.arange(W + C, device=q.device)
    band = (j > i) & (j <= i + W)                                          # query i sits at key W + i
    seen = (pos[:, None, None] - W + torch.arange(N, device=q.device)[:, None] * C + j) >= 0  # (B, N, W + C)
    s = s.masked_fill(~(band & seen[:, None, :, None, :]), float("-inf"))
    o = from_blocks(s.softmax(-1) @ win_v, T).to(q.dtype)
    pos = pos + T
    return o, roll_up(seq_k[:, :, T:], pos), roll_up(seq_v[:, :, T:], pos), pos
