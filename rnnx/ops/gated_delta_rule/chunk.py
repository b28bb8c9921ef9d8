"""Chunked form with the WY / UT representation (DeltaNet, Gated DeltaNet).

Inside a block, with `b_t` the decay summed from the block start through t and `S` the state before the
block, the state is `S_t = exp(b_t) S + Σ_{s≤t} exp(b_t - b_s) k_s u_sᵀ`, where the pseudo-values solve
the unit lower-triangular system `(I + tril(diag(β) (K Kᵀ ⊙ Γ), -1)) U = diag(β) V - diag(β e^b) K S`
(`Γ[t, s] = exp(b_t - b_s)`). One triangular solve per block gives `U = u - w S` for every S, so the
sequential part across blocks is a few small matrix products.
"""
import torch

from ..blocks import from_blocks, linear_blocks, segsum, suffix_sum, to_blocks


def chunk_gated_delta_rule(q, k, v, g, beta, state, *, scale: float, chunk_size: int):
    """
    Args:
        q, k: `(B, T, H, Dk)` (k L2-normalised for a stable recurrence); v: `(B, T, H, Dv)`.
        g: log-space decay, `(B, T, H)` per token or `(H,)` per head.
        beta: update rate in (0, 1), `(B, T, H)`.
        state: `(B, H, Dk, Dv)` fp32, the state before the first token.
    Returns:
        o: `(B, T, H, Dv)` in `q`'s dtype; state: `(B, H, Dk, Dv)` fp32 after the last token.
    """
    T, dtype = q.shape[1], q.dtype
    q, k, v, g, into = linear_blocks(q, k, v, g, chunk_size)               # q, k, v (B, H, N, C, D); g (B, H, N, C)
    beta = to_blocks(beta, chunk_size)[..., None]                          # (B, H, N, C, 1)
    decay = segsum(g).exp()                                                # Γ, zero above the diagonal
    eye = torch.eye(q.shape[-2], dtype=q.dtype, device=q.device)
    A = eye + (beta * (k @ k.transpose(-1, -2)) * decay).tril(-1)
    u = torch.linalg.solve_triangular(A, beta * v, upper=False, unitriangular=True)
    w = torch.linalg.solve_triangular(A, beta * into.exp()[..., None] * k, upper=False, unitriangular=True)
    k_out = (k * suffix_sum(g).exp()[..., None]).transpose(-1, -2)         # (B, H, N, Dk, C)
    block_decay = into[..., -1].exp()[..., None, None]
    before, pseudo = [], []
    for n in range(q.shape[2]):
        U = u[:, :, n] - w[:, :, n] @ state
        before.append(state)
        pseudo.append(U)
        state = block_decay[:, :, n] * state + k_out[:, :, n] @ U
    intra = (q @ k.transpose(-1, -2)) * decay
    o = intra @ torch.stack(pseudo, 2) + (q * into.exp()[..., None]) @ torch.stack(before, 2)
    return from_blocks(scale * o, T).to(dtype), state
