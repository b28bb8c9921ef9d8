"""Every form of every op against the fp64 reference, and the forms against each other."""
import functools
import itertools

import pytest
import torch

from rnnx.numerics import compare
from rnnx.ops import MODES, OPS

from .cases import CHUNK, make_case

LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 37, 1000]
OP_NAMES = sorted(OPS)
LINEAR_OPS = ["decay_linear_attention", "gated_delta_rule"]


def run(op_name, mode, inputs, state, attrs):
    o, s = OPS[op_name](*inputs, state=state, mode=mode, **attrs)
    return o, (s,) if isinstance(s, torch.Tensor) else tuple(s)


@functools.cache
def reference(op_name, T, **case):
    inputs, state, attrs = make_case(op_name, T, **case)
    o, *s = OPS[op_name].call(OPS[op_name].reference, *inputs, *state, **attrs)
    return o, tuple(s)


def assert_matches(actual, expected, dtype=torch.float32):
    """Output within the tolerance for `dtype` inputs; state (always fp32) within the fp32 tolerance."""
    (o, s), (o_ref, s_ref) = actual, expected
    result = compare(o, o_ref, dtype)
    assert result.passed, f"output: {result}"
    for i, (a, e) in enumerate(zip(s, s_ref, strict=True)):
        result = compare(a, e)
        assert result.passed, f"state tensor {i}: {result}"


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_form_matches_fp64_reference(op_name, mode, T):
    case = make_case(op_name, T)
    assert_matches(run(op_name, mode, *case), reference(op_name, T))


@pytest.mark.parametrize("op_name", OP_NAMES)
def test_form_from_empty_state_matches_fp64_reference(op_name):
    for mode in MODES:
        inputs, _, attrs = make_case(op_name, CHUNK + 3, with_state=False)
        assert_matches(run(op_name, mode, inputs, None, attrs), reference(op_name, CHUNK + 3, with_state=False))


@pytest.mark.parametrize("T", [CHUNK + 1, 100])
@pytest.mark.parametrize("pair", list(itertools.combinations(MODES, 2)), ids="-vs-".join)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_modes_agree_pairwise(op_name, pair, T):
    case = make_case(op_name, T, seed=1)
    assert_matches(run(op_name, pair[0], *case), run(op_name, pair[1], *case))


@pytest.mark.parametrize("prefill_mode", ["parallel", "chunk"])
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_prefill_state_handed_to_recurrent_steps_matches_reference(op_name, prefill_mode):
    T, split = 3 * CHUNK + 5, 2 * CHUNK + 1
    inputs, state, attrs = make_case(op_name, T)
    per_token = [i for i, x in enumerate(inputs) if x.dim() >= 3]  # aaren's query is not per token
    head = tuple(x[:, :split] if i in per_token else x for i, x in enumerate(inputs))
    outputs = []
    o, state = run(op_name, prefill_mode, head, state, attrs)
    outputs.append(o)
    for t in range(split, T):
        token = tuple(x[:, t:t + 1] if i in per_token else x for i, x in enumerate(inputs))
        o, state = run(op_name, "recurrent", token, state, attrs)
        outputs.append(o)
    assert_matches((torch.cat(outputs, 1), state), reference(op_name, T))


@pytest.mark.parametrize("T", [200, 1000])
@pytest.mark.parametrize("regime", ["near_zero", "very_negative"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op_name", LINEAR_OPS)
def test_extreme_decays_match_fp64_reference(op_name, mode, regime, T):
    case = make_case(op_name, T, regime=regime)
    assert_matches(run(op_name, mode, *case), reference(op_name, T, regime=regime))


@pytest.mark.parametrize("mode", MODES)
def test_aaren_huge_scores_stay_finite_and_match_reference(mode):
    inputs, state, attrs = make_case("aaren", 200, regime="huge_scores")
    scores = torch.einsum("bthd,hd->bth", inputs[1], inputs[0]) * attrs["scale"]
    assert scores.abs().max() > 1e4  # exp() of these overflows fp32 without the running max
    o, s = run("aaren", mode, inputs, state, attrs)
    assert torch.isfinite(o).all() and all(torch.isfinite(x).all() for x in s[1:])
    assert_matches((o, s), reference("aaren", 200, regime="huge_scores"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_low_precision_inputs_match_fp64_reference(op_name, mode, dtype):
    T = 2 * CHUNK + 3
    o, s = run(op_name, mode, *make_case(op_name, T, dtype=dtype))
    assert o.dtype == dtype
    assert [x.dtype for x in s] == [spec.dtype for spec in OPS[op_name].state]  # accumulated in fp32
    assert_matches((o, s), reference(op_name, T, dtype=dtype), dtype)
