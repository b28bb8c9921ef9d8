"""Chunked form (Lightning Attention-2 tiling; GLA's for a decay per key dimension): quadratic attention
inside each block of C tokens, the state carried between blocks. Memory and time are linear in T; no
T x T tensor is built.

Every decay factor is `exp` of a sum of log decays over a segment `(s, t]` inside one block, summed
directly (`blocks.segsum`, `blocks.suffix_sum`, a cumsum from the block start): every exponent is <= 0,
so nothing overflows, and a factor underflows only where the term it weights is below fp32's range anyway.
The factorisation `(q ⊙ e^{G_t}) (k ⊙ e^{-G_s})ᵀ` (G the cumsum from the block start), which would turn the
per-key intra-block scores into one matrix product, needs `e^{-G_s}`: it overflows fp32 once a key's decays
over a block sum below -88 (64 tokens at g = -1.4), and `G_t - G_s` as a difference of prefix sums loses the
exponent's low bits when they are large.
"""
import torch

from ..blocks import from_blocks, per_key, segsum, suffix_sum, to_blocks


def chunk_decay_linear_attention(q, k, v, decay, state, *, scale: float, chunk_size: int):
    """
    Args:
        q, k: `(B, T, H, Dk)`; v: `(B, T, H, Dv)`.
        decay: log-space decay, `(H,)` per head, `(B, T, H)` per token or `(B, T, H, Dk)` per key dimension
            (row i of the state decays by `exp(g_t[i])`).
        state: `(B, H, Dk, Dv)` fp32, the state before the first token.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; state: `(B, H, Dk, Dv)` fp32 after the last token.
    """
    B, T, H, Dk = q.shape
    dtype = q.dtype
    g = to_blocks(per_key(decay, B, T, H, Dk), chunk_size).transpose(-1, -2)  # (B, H, N, Dg, C), Dg = Dk or 1
    q, k, v = (to_blocks(x, chunk_size) for x in (q, k, v))                  # (B, H, N, C, D)
    into = g.cumsum(-1)                                                      # block start -> t, inclusive
    intra = masked_scores(q, k, segsum(g).exp())                             # (B, H, N, C, C)
    kv = (k.transpose(-1, -2) * suffix_sum(g).exp()) @ v                     # block's own state increment
    block_decay = into[..., -1:].exp()                                       # (B, H, N, Dg, 1)
    before = []
    for n in range(q.shape[2]):                                              # inter-block scan over states
        before.append(state)
        state = block_decay[:, :, n] * state + kv[:, :, n]
    o = intra @ v + (q * into.exp().transpose(-1, -2)) @ torch.stack(before, 2)
    return from_blocks(scale * o, T).to(dtype), state


def masked_scores(q: torch.Tensor, k: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
    """A block's scores `[t, s] = Σ_i q_t[i] k_s[i] Γ_i[t, s]`, Γ_i[t, s] the decay of state row i from
    token s to t (0 above the diagonal). q, k: `(..., C, Dk)`; decay: `(..., Dg, C, C)`; returns `(..., C, C)`."""
    if decay.shape[-3] == 1:  # one decay for every row: it factors out of the sum over i
        return (q @ k.transpose(-1, -2)) * decay[..., 0, :, :]
    return torch.einsum("...ti,...si,...its->...ts", q, k, decay)
