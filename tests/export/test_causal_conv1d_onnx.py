"""causal_conv1d in ONNX: its function bodies in onnx's reference evaluator and, with either activation, in
onnxruntime; and its standard spellings, ONNX's `CausalConvWithState` (opset 27, run by the reference
evaluator: onnxruntime 1.31 loads opset 26 at most) and onnxruntime's `com.microsoft` one, against the fp64
reference."""
import onnx
import onnxruntime
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from rnnx.export.flavors import apply_flavor

from ..ops.cases import make_case
from ..ops.test_forms import assert_matches
from .function_runner import arrays, function_model, reference, run

OP = "causal_conv1d"
LENGTHS = {"sequence": [1, 2, 3, 37], "step": [1]}  # sequences shorter than the state (W - 1 = 3) too
CASES = [(kind, T) for kind, lengths in LENGTHS.items() for T in lengths]


def make(T: int, activation: str, with_state: bool = True):
    inputs, state, attrs = make_case(OP, T, with_state=with_state)
    return inputs, state, attrs | {"activation": activation}


def evaluate(model: onnx.ModelProto, inputs, state, session=None) -> tuple:
    feeds = dict(zip((i.name for i in model.graph.input), arrays(inputs, state)))
    o, s = session.run(None, feeds) if session else ReferenceEvaluator(model).run(None, feeds)
    return torch.from_numpy(o), (torch.from_numpy(s),)


def spelled(kind: str, flavor: str, inputs, state, attrs) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.CopyFrom(function_model(OP, kind, inputs, state, attrs))  # cached: the flavor rewrites in place
    return apply_flavor(model, flavor)


@pytest.mark.parametrize("with_state", [True, False], ids=["random_state", "empty_state"])
@pytest.mark.parametrize("activation", ["silu", "none"])
@pytest.mark.parametrize(("kind", "T"), CASES)
def test_function_body_in_the_reference_evaluator_matches_fp64_reference(kind, T, activation, with_state):
    inputs, state, attrs = make(T, activation, with_state)
    model = function_model(OP, kind, inputs, state, attrs)
    assert_matches(evaluate(model, inputs, state), reference(OP, inputs, state, attrs))


@pytest.mark.parametrize(("kind", "T"), CASES)
def test_function_body_without_activation_in_onnxruntime_matches_fp64_reference(kind, T):
    inputs, state, attrs = make(T, "none")
    assert_matches(run(OP, kind, inputs, state, attrs), reference(OP, inputs, state, attrs))


@pytest.mark.parametrize("activation", ["silu", "none"])
@pytest.mark.parametrize(("kind", "T"), CASES)
def test_standard_causal_conv_with_state_in_the_reference_evaluator_matches_fp64_reference(kind, T, activation):
    inputs, state, attrs = make(T, activation)
    model = spelled(kind, "standard", inputs, state, attrs)
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node if n.domain == ""].count("CausalConvWithState") == 1
    assert not model.functions and next(o.version for o in model.opset_import if o.domain == "") == 27
    assert_matches(evaluate(model, inputs, state), reference(OP, inputs, state, attrs))


@pytest.mark.parametrize("activation", ["silu", "none"])
@pytest.mark.parametrize(("kind", "T"), CASES)
def test_onnxruntime_causal_conv_with_state_matches_fp64_reference(kind, T, activation):
    inputs, state, attrs = make(T, activation)
    model = spelled(kind, "ort", inputs, state, attrs)
    assert [(n.domain, n.op_type) for n in model.graph.node if n.domain] == [("com.microsoft", "CausalConvWithState")]
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    assert_matches(evaluate(model, inputs, state, session), reference(OP, inputs, state, attrs))


def test_step_stream_of_the_onnxruntime_spelling_with_the_state_fed_back_matches_fp64_reference():
    inputs, state0, attrs = make(100, "silu")
    step = spelled("step", "ort", *make(1, "silu"))
    session = onnxruntime.InferenceSession(step.SerializeToString(), providers=["CPUExecutionProvider"])
    state, outputs = state0, []
    for t in range(100):
        o, state = evaluate(step, (inputs[0][:, t:t + 1], *inputs[1:]), state, session)
        outputs.append(o)
    assert_matches((torch.cat(outputs, 1), state), reference(OP, inputs, state0, attrs))
