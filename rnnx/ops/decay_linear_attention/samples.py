"""Sample inputs for tests: standard normal q, k, v and per-token log decays in the regime's range."""
from ..samples import log_decay, qkv


def sample_inputs(B, T, H, Dk, Dv, dtype, generator, regime):
    q, k, v = qkv(generator, B, T, H, Dk, Dv)
    inputs = (q, k, v, log_decay(generator, regime, B, T, H))
    return tuple(x.to(dtype) for x in inputs), {"scale": Dk ** -0.5}
