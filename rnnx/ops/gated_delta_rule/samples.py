"""Sample inputs for tests: L2-normalised keys (as the recurrence wants), per-token log decays in the
regime's range, update rates in (0, 1)."""
import torch
import torch.nn.functional as F

from ..samples import log_decay, normal, qkv


def sample_inputs(B, T, H, Dk, Dv, dtype, generator, regime):
    q, k, v = qkv(generator, B, T, H, Dk, Dv)
    inputs = (q, F.normalize(k, dim=-1), v, log_decay(generator, regime, B, T, H),
              torch.sigmoid(normal(generator, B, T, H)))
    return tuple(x.to(dtype) for x in inputs), {"scale": Dk ** -0.5}
