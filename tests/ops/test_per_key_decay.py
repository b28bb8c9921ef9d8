"""decay_linear_attention with a log decay per key dimension `(B, T, H, Dk)` (GLA, HGRN2): every form against
the fp64 reference, in the extreme regimes too, and the state carried across calls."""
import pytest
import torch

from rnnx import ops
from rnnx.ops import MODES, OPS
from rnnx.ops.footprint import Footprint
from rnnx.ops.samples import log_decay

from .cases import CHUNK, make_case
from .test_forms import assert_matches

OP = "decay_linear_attention"
LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 37, 200]


def per_key_case(T: int, *, regime: str = "typical", seed: int = 0, B: int = 2, H: int = 2, D: int = 8, **kw):
    """`make_case`'s inputs with the per-token decay replaced by one drawn per key dimension `(B, T, H, D)`."""
    inputs, state, attrs = make_case(OP, T, B=B, H=H, D=D, seed=seed, regime=regime, **kw)
    g = log_decay(torch.Generator().manual_seed(seed + 1000), regime, B, T, H, D).to(inputs[0].dtype)
    return inputs[:3] + (g,), state, attrs


def mixed_case(T: int, **kw):
    """Per-key decays no scalar decay has: in each head half the keys nearly keep their rows (near_zero) while
    the others forget theirs every token (very_negative), and every key switches regime halfway through T,
    inside a block: there the log decays summed from the block start are large while a segment's are small.
    In blocks of the default 64 tokens, exponents taken as differences of those sums miss the tolerance."""
    inputs, state, attrs = per_key_case(T, **kw)
    gen = torch.Generator().manual_seed(7)
    near, far = (log_decay(gen, regime, *inputs[3].shape) for regime in ("near_zero", "very_negative"))
    keys = torch.arange(inputs[3].shape[-1]) % 2 == 0
    later = (torch.arange(T) >= T // 2 + 3)[:, None, None]
    return inputs[:3] + (torch.where(keys ^ later, near, far),), state, attrs | {"chunk_size": 64}


def run(mode, inputs, state, attrs):
    o, s = OPS[OP](*inputs, state=state, mode=mode, **attrs)
    return o, (s,)


def reference(inputs, state, attrs):
    o, s = OPS[OP].call(OPS[OP].reference, *inputs, *state, **attrs)
    return o, (s,)


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
def test_per_key_form_matches_fp64_reference(mode, T):
    case = per_key_case(T)
    assert_matches(run(mode, *case), reference(*case))


# (mode, regime, T): the mixed case at 200 tokens; the parallel form, whose per-key mask is T x T x Dk per head, too
EXTREME = [(mode, regime, T) for mode in MODES for regime in ("near_zero", "very_negative", "mixed")
           for T in (200, 1000) if T == 200 or mode != "parallel" and regime != "mixed"]


@pytest.mark.parametrize(("mode", "regime", "T"), EXTREME)
def test_per_key_form_with_extreme_decays_matches_fp64_reference(mode, regime, T):
    case = mixed_case(T) if regime == "mixed" else per_key_case(T, regime=regime)
    assert_matches(run(mode, *case), reference(*case))


@pytest.mark.parametrize("mode", MODES)
def test_per_key_form_from_empty_state_and_unequal_widths_matches_fp64_reference(mode):
    inputs, _, attrs = per_key_case(CHUNK + 3, with_state=False)
    inputs = inputs[:2] + (inputs[2][..., :5].contiguous(),) + inputs[3:]  # Dv = 5 != Dk = 8
    assert_matches(run(mode, inputs, None, attrs), reference(inputs, (torch.zeros(2, 2, 8, 5),), attrs))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", MODES)
def test_per_key_low_precision_inputs_match_fp64_reference(mode, dtype):
    o, s = run(mode, *per_key_case(2 * CHUNK + 3, dtype=dtype))
    assert o.dtype == dtype and s[0].dtype == torch.float32
    assert_matches((o, s), reference(*per_key_case(2 * CHUNK + 3, dtype=dtype)), dtype)


@pytest.mark.parametrize("prefill_mode", ["parallel", "chunk"])
def test_per_key_state_carried_across_calls_equals_one_call(prefill_mode):
    """A prefill, a second prefill from its state, then token-by-token steps: the outputs and final state of
    one chunked call over the whole sequence (and the fp64 reference)."""
    T, cuts = 3 * CHUNK + 5, (CHUNK + 3, 2 * CHUNK + 1)
    inputs, state, attrs = per_key_case(T)
    pieces = [(0, cuts[0], prefill_mode), (cuts[0], cuts[1], "chunk")]
    pieces += [(t, t + 1, "recurrent") for t in range(cuts[1], T)]
    outputs, carried = [], state
    for start, stop, mode in pieces:
        o, (carried,) = run(mode, tuple(x[:, start:stop] for x in inputs), carried, attrs)
        outputs.append(o)
    pieced = torch.cat(outputs, 1), (carried,)
    assert_matches(pieced, run("chunk", inputs, state, attrs))
    assert_matches(pieced, reference(inputs, state, attrs))


@pytest.mark.parametrize("mode", MODES)
def test_per_key_form_builds_every_tensor_on_its_inputs_device(mode):
    inputs, state, attrs = per_key_case(2 * CHUNK + 3)
    inputs, state = tuple(x.to("meta") for x in inputs), tuple(x.to("meta") for x in state)
    o, s = OPS[OP].call(OPS[OP].forms[mode], *inputs, *state, **attrs)  # the form itself, not the fake kernel
    assert (o.device.type, o.shape, s.device.type, s.shape) == ("meta", inputs[2].shape, "meta", state[0].shape)


def test_per_key_chunk_form_builds_no_T_by_T_tensor():
    """Its masks are `(Dk, C, C)` per block: linear in T, as the scalar decays' chunk form."""
    def footprint(T):
        with Footprint() as fp:
            run("chunk", *per_key_case(T, B=1, H=1))
        return fp

    assert footprint(1024).square(1024) == []
    assert footprint(2048).largest <= 2.1 * footprint(1024).largest


@pytest.mark.parametrize("mode", MODES)
def test_per_key_decay_equal_over_the_keys_matches_the_per_token_decay(mode):
    inputs, state, attrs = make_case(OP, 2 * CHUNK + 3)
    per_key = inputs[:3] + (inputs[3][..., None].expand(*inputs[3].shape, inputs[0].shape[-1]),)
    assert_matches(run(mode, per_key, state, attrs), run(mode, inputs, state, attrs))


def test_the_public_function_takes_a_per_key_decay_and_names_a_bad_one():
    q = torch.randn(1, 3, 2, 4)
    o, state = ops.decay_linear_attention(q, q, q, -torch.rand(1, 3, 2, 4), mode="recurrent")
    assert o.shape == (1, 3, 2, 4) and state.shape == (1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"decay must be per head \(2,\), per token \(1, 3, 2\) or per key "
                                         r"\(1, 3, 2, 4\), got \(1, 3, 2, 5\)"):
        ops.decay_linear_attention(q, q, q, torch.zeros(1, 3, 2, 5))
