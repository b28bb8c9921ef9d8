"""Sample inputs for tests: a learned query per head, standard normal k, v; `regime="huge_scores"` scales
the query by 1e4, so that exp() of the scores overflows fp32 unless every form rescales to the running max."""
import torch

from ..samples import normal


def sample_inputs(B, T, H, Dk, Dv, dtype, generator, regime):
    k, v = normal(generator, B, T, H, Dk), normal(generator, B, T, H, Dv)
    query = normal(generator, H, Dk) * (1e4 if regime == "huge_scores" else 1)
    return tuple(x.to(dtype) for x in (query, k, v)), {"scale": Dk ** -0.5}


def sample_denominator(shape, dims, generator) -> torch.Tensor:
    """Σ exp(s_i - m) over tokens seen, m their largest score: at least 1."""
    return 1 + torch.rand(shape, generator=generator)
