"""Sample inputs for tests: standard normal q, k, v and a window of `WINDOW` tokens."""
import torch

from ..samples import qkv

WINDOW = 24  # not a power of two, so not a multiple of the chunk sizes tests use: blocks straddle windows


def sample_inputs(B, T, H, Dk, Dv, dtype, generator, regime):
    return tuple(x.to(dtype) for x in qkv(generator, B, T, H, Dk, Dv)), {"scale": Dk ** -0.5, "window": WINDOW}


def sample_pos(shape, dims, generator) -> torch.Tensor:
    """Tokens seen: anywhere in the first three windows, so a ring may be filling, full or wrapped."""
    return torch.randint(1, 3 * dims["window"], shape, generator=generator)
