"""Draws shared by the ops' `sample_inputs` (each op's `samples.py`): seeded, so a test case is its seed."""
import torch

# log-space decay ranges: typical, nearly no decay (state grows with T), and a state forgotten every token
DECAY_RANGES = {"typical": (-1.0, -0.01), "near_zero": (-1e-4, 0.0), "very_negative": (-30.0, -10.0)}


def normal(generator: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=generator)


def qkv(generator: torch.Generator, B: int, T: int, H: int, Dk: int, Dv: int) -> tuple[torch.Tensor, ...]:
    """Standard normal q, k `(B, T, H, Dk)` and v `(B, T, H, Dv)`."""
    return normal(generator, B, T, H, Dk), normal(generator, B, T, H, Dk), normal(generator, B, T, H, Dv)


def log_decay(generator: torch.Generator, regime: str, *shape: int) -> torch.Tensor:
    """Uniform in `regime`'s decay range (the typical one for a regime about something else), iid over
    `shape`: `(H,)` per head, `(B, T, H)` per token or `(B, T, H, Dk)` per key dimension."""
    lo, hi = DECAY_RANGES.get(regime, DECAY_RANGES["typical"])
    return lo + (hi - lo) * torch.rand(*shape, generator=generator)
