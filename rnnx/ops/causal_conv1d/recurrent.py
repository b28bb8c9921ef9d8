"""Recurrent form: per token, the window of the state's W - 1 inputs and the token, weighted and summed."""
import torch

from .activation import activate


def recurrent_causal_conv1d(x, weight, bias, state, *, activation: str):
    """Shapes as `parallel_causal_conv1d`; memory is the `(B, D, W - 1)` state whatever T is."""
    weight, bias, y = weight.float(), bias.float(), []
    for t in range(x.shape[1]):
        window = torch.cat([state, x[:, t, :, None].float()], 2)                     # (B, D, W)
        y.append(activate(bias + (window * weight).sum(-1), activation))
        state = window[:, :, 1:]
    return torch.stack(y, 1).to(x.dtype), state.contiguous()
