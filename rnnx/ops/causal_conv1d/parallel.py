"""Parallel form: one depthwise convolution over the state's W - 1 inputs followed by the sequence's T.
A token sees only the W - 1 inputs before it, so this is linear in T: it is the chunked form too."""
import torch
import torch.nn.functional as F

from .activation import activate


def parallel_causal_conv1d(x, weight, bias, state, *, activation: str):
    """
    Args:
        x: `(B, T, D)`; weight: `(D, W)`; bias: `(D,)`.
        state: `(B, D, W - 1)` fp32, the last W - 1 inputs before `x`, oldest first.
    Returns:
        y: `(B, T, D)` in `x`'s dtype; state: `(B, D, W - 1)` fp32, the last W - 1 inputs after `x`.
    """
    T = x.shape[1]
    inputs = torch.cat([state, x.float().transpose(1, 2)], 2)                        # (B, D, W - 1 + T)
    y = F.conv1d(inputs, weight.float()[:, None], bias.float(), groups=weight.shape[0])  # (B, D, T)
    return activate(y, activation).transpose(1, 2).to(x.dtype), inputs[:, :, T:].contiguous()
