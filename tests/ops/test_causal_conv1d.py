"""causal_conv1d beyond the cases every op runs: no activation, other widths, a stream cut into calls of
any length (shorter than the state too), and the convolution Mamba-2 and fla's ShortConvolution compute."""
import pytest
import torch
import torch.nn.functional as F

from rnnx import ops
from rnnx.ops import MODES, OPS

from .cases import make_case
from .test_forms import assert_matches

OP = OPS["causal_conv1d"]


def case(T: int, W: int = 4, D: int = 12, activation: str = "silu", seed: int = 0):
    """x `(2, T, D)`, weight `(D, W)`, bias `(D,)` and a random state `(2, D, W - 1)`."""
    gen = torch.Generator().manual_seed(seed)
    x, weight, bias, state = (torch.randn(*s, generator=gen) for s in [(2, T, D), (D, W), (D,), (2, D, W - 1)])
    return (x, weight, bias), state, {"activation": activation}


@pytest.mark.parametrize("W", [2, 3, 7])
@pytest.mark.parametrize("activation", ["silu", "none"])
@pytest.mark.parametrize("mode", MODES)
def test_form_at_each_width_and_activation_matches_fp64_reference(mode, activation, W):
    inputs, state, attrs = case(37, W, activation=activation)
    o, s = ops.causal_conv1d(*inputs, state=state, mode=mode, **attrs)
    o_ref, s_ref = OP.call(OP.reference, *inputs, state, **attrs)
    assert_matches((o, (s,)), (o_ref, (s_ref,)))


@pytest.mark.parametrize("mode", MODES)
def test_state_carried_across_calls_of_any_length_equals_one_call(mode):
    """Calls of 1, 2, 5 and 29 tokens (the first two shorter than the W - 1 = 3 inputs the state keeps)."""
    (x, weight, bias), state, attrs = case(37)
    whole, whole_state = ops.causal_conv1d(x, weight, bias, state=state, mode=mode, **attrs)
    pieces, start = [], 0
    for length in (1, 2, 5, 29):
        y, state = ops.causal_conv1d(x[:, start:start + length], weight, bias, state=state, mode=mode, **attrs)
        pieces.append(y)
        start += length
    torch.testing.assert_close(torch.cat(pieces, 1), whole, rtol=0, atol=1e-6)
    assert torch.equal(state, whole_state)  # the state is the last inputs, copied


@pytest.mark.parametrize("mode", MODES)
def test_from_zeros_it_is_the_left_padded_depthwise_conv1d_of_mamba2_and_fla(mode):
    """Mamba-2 and fla's ShortConvolution: `silu(Conv1d(D, D, W, groups=D, padding=W - 1)(x)[..., :T])`;
    their cache `(B, D, W)` holds the last W inputs, and the state is its last W - 1 columns."""
    inputs, _, _ = make_case("causal_conv1d", 37)
    x, weight, bias = inputs
    W = weight.shape[1]
    y, state = ops.causal_conv1d(x, weight, bias, mode=mode)
    expected = F.silu(F.conv1d(x.transpose(1, 2), weight[:, None], bias, padding=W - 1, groups=x.shape[2]))
    torch.testing.assert_close(y, expected[..., :x.shape[1]].transpose(1, 2), rtol=1e-5, atol=1e-6)
    fla_cache = x[:, -W:].transpose(1, 2)
    assert torch.equal(state, fla_cache[..., 1:])
