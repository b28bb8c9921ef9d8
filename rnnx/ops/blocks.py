"""Tensor plumbing shared by the chunked forms: splitting a sequence into blocks and segment sums."""
import torch
import torch.nn.functional as F


def per_token(decay: torch.Tensor, B: int, T: int, H: int) -> torch.Tensor:
    """A log-space decay given per head `(H,)` or per token `(B, T, H)` as fp32 `(B, T, H)`."""
    if decay.shape not in ((H,), (B, T, H)):
        raise ValueError(f"decay must be per head ({H},) or per token ({B}, {T}, {H}), got {tuple(decay.shape)}")
    return decay.float().expand(B, T, H)


def per_key(decay: torch.Tensor, B: int, T: int, H: int, Dk: int) -> torch.Tensor:
    """A log-space decay given per head `(H,)`, per token `(B, T, H)` or per key dimension `(B, T, H, Dk)`
    as fp32 `(B, T, H, Dg)`: one factor per row of the `(Dk, Dv)` state (Dg = Dk) or one for all (Dg = 1)."""
    if decay.shape == (B, T, H, Dk):
        return decay.float()
    if decay.shape not in ((H,), (B, T, H)):
        raise ValueError(f"decay must be per head ({H},), per token ({B}, {T}, {H}) or per key "
                         f"({B}, {T}, {H}, {Dk}), got {tuple(decay.shape)}")
    return per_token(decay, B, T, H)[..., None]


def to_blocks(x: torch.Tensor, C: int) -> torch.Tensor:
    """`(B, T, H, *D)` -> `(B, H, N, C, *D)` in fp32, zero-padding T up to `N * C`."""
    B, T, H, *D = x.shape
    N = -(-T // C)
    x = F.pad(x.float(), (0, 0) * len(D) + (0, 0, 0, N * C - T))
    return x.reshape(B, N, C, H, *D).movedim(3, 1)


def from_blocks(x: torch.Tensor, T: int) -> torch.Tensor:
    """`(B, H, N, C, *D)` -> `(B, T, H, *D)`, dropping the padding."""
    B, H, N, C, *D = x.shape
    return x.movedim(1, 3).reshape(B, N * C, H, *D)[:, :T]


def linear_blocks(q, k, v, g, chunk_size: int) -> tuple[torch.Tensor, ...]:
    """A linear-attention op's inputs in blocks of `chunk_size` tokens: q, k, v `(B, T, H, D)` as fp32
    `(B, H, N, C, D)`; the log decay `g`, per head `(H,)` or per token `(B, T, H)`, as `(B, H, N, C)`, and
    its sums from each block's start through each token (inclusive)."""
    B, T, H, _ = q.shape
    g = to_blocks(per_token(g, B, T, H), chunk_size)
    return (*(to_blocks(x, chunk_size) for x in (q, k, v)), g, g.cumsum(-1))


def segsum(g: torch.Tensor) -> torch.Tensor:
    """`(..., C)` -> `(..., C, C)` with `[t, s] = g[s+1] + ... + g[t]` for `s <= t` and `-inf` above the
    diagonal. Summing each segment directly (not as a difference of prefix sums) keeps the exponent exact
    when the decays are very negative."""
    C = g.shape[-1]
    below = torch.ones(C, C, dtype=torch.bool, device=g.device).tril(-1)
    sums = g[..., :, None].expand(*g.shape, C).masked_fill(~below, 0).cumsum(-2)
    return sums.masked_fill(~torch.ones_like(below).tril(), float("-inf"))


def suffix_sum(g: torch.Tensor) -> torch.Tensor:
    """`(..., C)` -> `[t] = g[t+1] + ... + g[C-1]`: the decay from position t to the end of its block."""
    return F.pad(g.flip(-1).cumsum(-1).flip(-1)[..., 1:], (0, 1))
