"""The ONNX function body of every op (`sequence`, `step`), run by stock onnxruntime, against the fp64 reference."""
import onnx
import pytest
import torch

from rnnx.export.onnx_ops import OPSET
from rnnx.ops import OPS

from ..ops.cases import CHUNK, make_case
from ..ops.test_forms import LINEAR_OPS, assert_matches
from .function_runner import function_model, reference, run

LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 37, 200]
# Cases: a random initial state, the empty state, and (linear ops) one decay per head `(H,)` instead of per token.
CASES = [(op, case) for op in sorted(OPS) for case in ("state", "empty", "per_head")
         if case != "per_head" or op in LINEAR_OPS]


def make(op_name: str, T: int, case: str, **kw):
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
