"""The ONNX function body of every op (`sequence`, `step`), run by stock onnxruntime (and decay_linear_attention's
by onnx's reference evaluator too), against the fp64 reference; the flavors' spelling of a per-key decay."""
import copy

import onnx
import pytest
import torch

from rnnx.export.flavors import apply_flavor
from rnnx.export.onnx_ops import OPSET
from rnnx.ops import OPS

from ..ops.cases import CHUNK, make_case
from ..ops.test_forms import LINEAR_OPS, assert_matches
from ..ops.test_per_key_decay import mixed_case, per_key_case
from .function_runner import function_model, reference, run, run_model

LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 37, 200]
# Cases: a random initial state, the empty state, one decay per head `(H,)` instead of per token (linear ops)
# and one per key dimension `(B, T, H, Dk)` (decay_linear_attention).
DECAY_CASES = {"decay_linear_attention": ("per_head", "per_key"), "gated_delta_rule": ("per_head",)}
CASES = [(op, case) for op in sorted(OPS) for case in ("state", "empty", *DECAY_CASES.get(op, ()))]
DECAYS = ["per_token", "per_head", "per_key"]


def make(op_name: str, T: int, case: str, **kw):
    if case == "per_key":
        return per_key_case(T, **kw)
    inputs, state, attrs = make_case(op_name, T, with_state=case != "empty", **kw)
    if case == "per_head":  # the first token's decays, as `(H,)`
        inputs = inputs[:3] + (inputs[3][0, 0],) + inputs[4:]
    return inputs, state, attrs


def tokens(inputs, t: int):
    """Token t of every per-token input (aaren's learned query and a per-head decay are not per token)."""
    return [x[:, t:t + 1] if x.dim() >= 3 else x for x in inputs]


@pytest.mark.parametrize("kind", ["sequence", "step"])
@pytest.mark.parametrize(("op_name", "case"), CASES)
def test_function_model_passes_full_check_in_the_standard_opset(op_name, case, kind):
    model = function_model(op_name, kind, *make(op_name, 1, case))
    onnx.checker.check_model(model, full_check=True)
    assert [(o.domain, o.version) for o in model.functions[0].opset_import] == [("", OPSET)]


@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize(("op_name", "case"), CASES)
def test_sequence_function_matches_fp64_reference(op_name, case, T):
    inputs, state, attrs = make(op_name, T, case)
    assert_matches(run(op_name, "sequence", inputs, state, attrs), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("regime", ["near_zero", "very_negative"])
@pytest.mark.parametrize("op_name", LINEAR_OPS)
def test_sequence_function_with_extreme_decays_matches_fp64_reference(op_name, regime):
    inputs, state, attrs = make(op_name, 200, "state", regime=regime)
    assert_matches(run(op_name, "sequence", inputs, state, attrs), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("regime", ["near_zero", "very_negative", "mixed"])
def test_per_key_sequence_function_with_extreme_decays_matches_fp64_reference(regime):
    inputs, state, attrs = mixed_case(200) if regime == "mixed" else per_key_case(200, regime=regime)
    assert_matches(run("decay_linear_attention", "sequence", inputs, state, attrs),
                   reference("decay_linear_attention", inputs, state, attrs))


def decay_case(decay: str, T: int):
    return make("decay_linear_attention", T, "state" if decay == "per_token" else decay)


@pytest.mark.parametrize(("kind", "T"), [("sequence", 2 * CHUNK + 5), ("step", 1)])
@pytest.mark.parametrize("decay", DECAYS)
def test_decay_linear_attention_functions_in_the_onnx_reference_evaluator_match_fp64_reference(decay, kind, T):
    inputs, state, attrs = decay_case(decay, T)
    model = function_model("decay_linear_attention", kind, inputs, state, attrs)
    assert_matches(run_model(model, inputs, state, "reference"),
                   reference("decay_linear_attention", inputs, state, attrs))


@pytest.mark.parametrize("flavor", ["standard", "ort"])
@pytest.mark.parametrize("decay", DECAYS)
def test_flavors_keep_a_per_key_decay_as_ai_rnnx_and_spell_the_others_as_linear_attention(decay, flavor):
    """Told apart by the decay input's rank; the node kept runs its function body, at the flavor's opset, in the
    runtime the flavor is for (standard: opset 27, which onnx's reference evaluator runs; ort: onnxruntime)."""
    inputs, state, attrs = decay_case(decay, 2 * CHUNK + 5)
    model = copy.deepcopy(function_model("decay_linear_attention", "sequence", inputs, state, attrs))
    for x, value in zip(inputs, model.graph.input):  # static heads, which LinearAttention's packing needs
        value.type.tensor_type.shape.dim[2 if x.dim() >= 3 else 0].dim_value = x.shape[2 if x.dim() >= 3 else 0]
    apply_flavor(model, flavor)
    spelled = [(n.domain, n.op_type) for n in model.graph.node if n.op_type in ("decay_linear_attention",
                                                                              "LinearAttention")]
    if decay == "per_key":
        assert spelled == [("ai.rnnx", "decay_linear_attention")]
        assert [f.name for f in model.functions] == ["decay_linear_attention"]
    else:
        assert spelled == [("" if flavor == "standard" else "com.microsoft", "LinearAttention")]
        assert list(model.functions) == []
    engine = "reference" if flavor == "standard" else "onnxruntime"
    assert_matches(run_model(model, inputs, state, engine), reference("decay_linear_attention", inputs, state, attrs))


@pytest.mark.parametrize("case", ["state", "empty"])
@pytest.mark.parametrize(("kind", "T"), [("sequence", CHUNK + 1), ("sequence", 200), ("step", 1)])
def test_aaren_function_with_huge_scores_stays_finite_and_matches_fp64_reference(kind, T, case):
    inputs, state, attrs = make("aaren", T, case, regime="huge_scores")
    o, s = run("aaren", kind, inputs, state, attrs)
    assert torch.isfinite(o).all() and all(torch.isfinite(x).all() for x in s)
    assert_matches((o, s), reference("aaren", inputs, state, attrs))


@pytest.mark.parametrize(("op_name", "case"), CASES)
def test_step_function_stream_matches_fp64_reference(op_name, case):
    """100 tokens, one step each with the state fed back (for the sliding window, past its wrap-around)."""
    inputs, state0, attrs = make(op_name, 100, case)
    state, outputs = state0, []
    for t in range(100):
        o, state = run(op_name, "step", tokens(inputs, t), state, attrs)
        outputs.append(o)
    assert_matches((torch.cat(outputs, 1), state), reference(op_name, inputs, state0, attrs))
