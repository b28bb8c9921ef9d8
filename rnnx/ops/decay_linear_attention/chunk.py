"""Chunked form (Lightning Attention-2 tiling): quadratic attention inside each block of C tokens, the
state carried between blocks. Memory and time are linear in T; no T x T tensor is built."""
import torch

from ..blocks import from_blocks, linear_blocks, segsum, suffix_sum


def chunk_decay_linear_attention(q, k, v, decay, state, *, scale: float, chunk_size: int):
    """
    Args:
        q, k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`.
        decay: log-space decay, `(H,)` per head or `(B, T, H)` per token.
        state: `(B, H, Dk, Dv)` fp32, the state before the first token.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; state: `(B, H, Dk, Dv)` fp32 after the last token.
    """
    T, dtype = q.shape[1], q.dtype
    q, k, v, g, into = linear_blocks(q, k, v, decay, chunk_size)          # q, k, v (B, H, N, C, D); g (B, H, N, C)
    intra = (q @ k.transpose(-1, -2)) * segsum(g).exp()                   # (B, H, N, C, C)
    kv = (k * suffix_sum(g).exp()[..., None]).transpose(-1, -2) @ v       # block's own state increment
    block_decay = into[..., -1].exp()[..., None, None]
    before = []
    for n in range(q.shape[2]):                                           # inter-block scan over states
        before.append(state)
        state = block_decay[:, :, n] * state + kv[:, :, n]
    o = intra @ v + (q * into.exp()[..., None]) @ torch.stack(before, 2)
    return from_blocks(scale * o, T).to(dtype), state
