"""The recurrent state is a ring buffer: the token at absolute position p lives in slot `p % W`, and
`pos` counts the tokens seen. Slot order is irrelevant to softmax, so a step reads the ring as is;
the blocked forms read it in time order."""
import torch


def time_order(pos: torch.Tensor, window: int) -> torch.Tensor:
    """`(B,)` -> `(B, W)` slots holding absolute positions `pos - W, ..., pos - 1` (those < 0 are unused)."""
    return (pos[:, None] + torch.arange(window, device=pos.device)) % window


def unroll(ring: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Ring `(B, H, W, D)` -> the same tokens in time order, oldest first."""
    B, H, W, D = ring.shape
    return ring.gather(2, time_order(pos, W)[:, None, :, None].expand(B, H, W, D))


def roll_up(timeline: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Inverse of `unroll`: the last W tokens `(B, H, W, D)` in time order, ending before `pos`, as a ring."""
    B, H, W, D = timeline.shape
    return torch.empty_like(timeline).scatter_(2, time_order(pos, W)[:, None, :, None].expand(B, H, W, D), timeline)
