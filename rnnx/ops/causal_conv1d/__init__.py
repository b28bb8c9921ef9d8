"""Short causal depthwise convolution: the ShortConvolution of Mamba-2, Gated DeltaNet and fla."""
from ..registry import OpDef, StateTensor, register
from .activation import ACTIVATIONS
from .parallel import parallel_causal_conv1d
from .recurrent import recurrent_causal_conv1d
from .reference import reference_causal_conv1d
from .samples import WIDTH, sample_inputs


def input_dims(inputs) -> dict[str, int]:
    """B, the channels D and W1 = W - 1, the state's length, from x `(B, T, D)`, weight `(D, W)`, bias `(D,)`."""
    x, weight, bias = inputs["x"], inputs["weight"], inputs["bias"]
    if x.dim() != 3 or weight.dim() != 2 or weight.shape[0] != x.shape[2] or tuple(bias.shape) != (x.shape[2],):
        raise ValueError(f"causal_conv1d: x must be (B, T, D), weight (D, W) and bias (D,); got x {tuple(x.shape)}, "
                         f"weight {tuple(weight.shape)}, bias {tuple(bias.shape)}")
    if weight.shape[1] < 2:
        raise ValueError(f"causal_conv1d: the width W must be at least 2 (W = 1 keeps no state: it scales x), "
                         f"got weight {tuple(weight.shape)}")
    return dict(B=x.shape[0], D=x.shape[2], W1=weight.shape[1] - 1)


OP = register(OpDef(
    name="causal_conv1d",
    inputs=("x", "weight", "bias"),
    state=(StateTensor("state", ("B", "D", "W1")),),
    attributes={"activation": str, "mode": str},
    # A token sees only the W - 1 inputs before it: the parallel form is linear in T already, and blocks would
    # carry nothing between them, so the chunked form is the parallel one.
    forms={"parallel": parallel_causal_conv1d, "chunk": parallel_causal_conv1d,
           "recurrent": recurrent_causal_conv1d},
    reference=reference_causal_conv1d,
    sample_inputs=sample_inputs,
    summary="y_t = act(b + Σ_j w_j ⊙ x_{t-W+1+j}), the last W - 1 inputs as state (ShortConvolution of Mamba-2, GDN)",
    standard_op="CausalConvWithState",
    output_like="x",
    input_dims=input_dims,
    typical_dims={"W1": WIDTH - 1},
))


def causal_conv1d(x, weight, bias, *, activation="silu", state=None, mode="chunk"):
    """Causal depthwise convolution of width W over time, with the semantics of ONNX `CausalConvWithState`.

    `y_t[d] = act(bias[d] + Σ_{j=0..W-1} weight[d, j] · x_{t-W+1+j}[d])`: `weight[d, W - 1]` multiplies the
    current input, inputs before the first token come from the state (zeros: zero padding).

    Args:
        x: `(B, T, D)`; fp32, fp16 or bf16.
        weight: `(D, W)`, W >= 2 (fla's / PyTorch's depthwise `Conv1d` weight `(D, 1, W)` without its middle axis).
        bias: `(D,)`; zeros for a conv without bias.
        activation: "silu" or "none", applied after the bias.
        state: `(B, D, W - 1)` fp32, the last W - 1 inputs `x` (before the activation, oldest first): the layout
            of ONNX `CausalConvWithState`'s carry state. fla's `ShortConvolution` cache `(B, D, W)` holds the
            last W inputs, the current one included; this state is its last W - 1 columns, `cache[..., 1:]`.
            Zeros when None.
        mode: "parallel", "chunk" (the same: the conv is local) or "recurrent" (one token at a time).
    Returns:
        y: `(B, T, D)` in `x`'s dtype; state: `(B, D, W - 1)` fp32 after the last token.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"causal_conv1d: activation must be one of {ACTIVATIONS}, got {activation!r}")
    return OP(x, weight, bias, state=state, mode=mode, activation=activation)


__all__ = ["causal_conv1d"]
