"""Sample inputs for tests: the H · Dk channels of H heads (what a conv before an attention op sees), standard
normal inputs, taps scaled so that the output is of order 1, and a bias."""
from ..samples import normal

WIDTH = 4  # the kernel size of fla's ShortConvolution and Mamba-2's d_conv


def sample_inputs(B, T, H, Dk, Dv, dtype, generator, regime):
    D = H * Dk
    x, weight = normal(generator, B, T, D), WIDTH ** -0.5 * normal(generator, D, WIDTH)
    bias = 0.5 * normal(generator, D)
    return tuple(t.to(dtype) for t in (x, weight, bias)), {"activation": "silu"}
