"""fp64 reference: the convolution as its definition writes it, one token at a time, the inputs before the
first token read from the state."""
import torch


def reference_causal_conv1d(x, weight, bias, state, *, activation: str):
    """Shapes as `parallel_causal_conv1d`; computes and returns fp64.

    `y_t = act(bias + Σ_{j<W} weight[:, j] ⊙ x_{t-W+1+j})`, where an input `x_s` with `s < 0` (before this
    call) is the state's column `W - 1 + s`.
    """
    T, W = x.shape[1], weight.shape[1]
    x, weight, bias, state = (t.double() for t in (x, weight, bias, state))

    def input_at(s: int) -> torch.Tensor:  # x_s, (B, D)
        return x[:, s] if s >= 0 else state[:, :, W - 1 + s]

    y = torch.zeros(x.shape, dtype=torch.float64)
    for t in range(T):
        y[:, t] = bias + sum(weight[:, j] * input_at(t - W + 1 + j) for j in range(W))
    if activation == "silu":
        y = y / (1 + torch.exp(-y))
    return y, torch.stack([input_at(T - W + 1 + i) for i in range(W - 1)], 2)
