"""The ONNX function bodies of the softmax ops, run by stock onnxruntime, against the fp64 reference."""
import functools

import onnx
import onnxruntime
import pytest
import torch

from rnnx.export.onnx_ops import register_schemas
from rnnx.export.single_op import single_op_model
from rnnx.ops import OPS

from ..ops.cases import CHUNK, make_case
from ..ops.test_forms import assert_matches

OP_NAMES = ["aaren", "sliding_window_attention"]
LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 37, 200]
KINDS = ["sequence", "step"]


def arrays(inputs, state):
    return [x.numpy() for x in (*inputs, *state)]


@functools.cache
def model(op_name: str, kind: str) -> onnx.ModelProto:
    """The single-op model; every case shares its attributes and all its dims are symbolic."""
    register_schemas()
    inputs, state, attrs = make_case(op_name, 1)
    m = single_op_model(OPS[op_name], kind, arrays(inputs, state), attrs | {"mode": "chunk"})
    # Strict inference runs through the function body and types the graph outputs, left undefined above.
    return onnx.shape_inference.infer_shapes(m, strict_mode=True)


@functools.cache
def session(op_name: str, kind: str) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model(op_name, kind).SerializeToString(), providers=["CPUExecutionProvider"])


def run(op_name: str, kind: str, inputs, state) -> tuple:
    sess = session(op_name, kind)
    o, *s = sess.run(None, dict(zip((i.name for i in sess.get_inputs()), arrays(inputs, state))))
    return torch.from_numpy(o), tuple(torch.from_numpy(x) for x in s)


def reference(op_name: str, inputs, state, attrs) -> tuple:
    o, *s = OPS[op_name].call(OPS[op_name].reference, *inputs, *state, **attrs)
    return o, tuple(s)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_function_model_passes_full_check(op_name, kind):
    onnx.checker.check_model(model(op_name, kind), full_check=True)


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "empty"])
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_sequence_function_matches_fp64_reference(op_name, T, with_state):
    inputs, state, attrs = make_case(op_name, T, with_state=with_state)
    assert_matches(run(op_name, "sequence", inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "empty"])
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_step_function_matches_fp64_reference(op_name, with_state):
    inputs, state, attrs = make_case(op_name, 1, with_state=with_state)
    assert_matches(run(op_name, "step", inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "empty"])
@pytest.mark.parametrize(("kind", "T"), [("sequence", CHUNK + 1), ("sequence", 200), ("step", 1)])
def test_aaren_function_with_huge_scores_stays_finite_and_matches_fp64_reference(kind, T, with_state):
    inputs, state, attrs = make_case("aaren", T, regime="huge_scores", with_state=with_state)
    o, s = run("aaren", kind, inputs, state)
    assert torch.isfinite(o).all() and all(torch.isfinite(x).all() for x in s)
    assert_matches((o, s), reference("aaren", inputs, state, attrs))


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "empty"])
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_step_function_stream_matches_fp64_reference(op_name, with_state):
    """100 tokens, one step each with the state fed back (for the sliding window, past its wrap-around)."""
    T = 100
    inputs, state0, attrs = make_case(op_name, T, with_state=with_state)
    per_token = [x.dim() == 4 for x in inputs]  # aaren's learned query is not per token
    state, outputs = state0, []
    for t in range(T):
        o, state = run(op_name, "step", [x[:, t:t + 1] if p else x for x, p in zip(inputs, per_token)], state)
        outputs.append(o)
    assert_matches((torch.cat(outputs, 1), state), reference(op_name, inputs, state0, attrs))
