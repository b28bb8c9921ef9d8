"""The ONNX function bodies of the linear-attention ops, run by stock onnxruntime, against the fp64 reference."""
import functools

import onnx
import onnxruntime
import pytest
import torch

from rnnx.export.onnx_ops import OPSET, register_schemas
from rnnx.export.single_op import single_op_model
from rnnx.ops import OPS

from ..ops.cases import CHUNK, make_case
from ..ops.test_forms import assert_matches

OP_NAMES = ["decay_linear_attention", "gated_delta_rule"]
DECAY_INPUT = {"decay_linear_attention": "decay", "gated_delta_rule": "g"}
LENGTHS = [1, CHUNK - 1, CHUNK, CHUNK + 1, 37, 200]
KINDS = ["sequence", "step"]
DECAYS = ["per_token", "per_head"]


def case(op_name: str, T: int, decay: str, **kw):
    """`make_case`, with the log-decay given per head `(H,)` (the first token's) when `decay` says so."""
    inputs, state, attrs = make_case(op_name, T, **kw)
    if decay == "per_head":
        i = OPS[op_name].inputs.index(DECAY_INPUT[op_name])
        inputs = inputs[:i] + (inputs[i][0, 0],) + inputs[i + 1:]
    return inputs, state, attrs


def arrays(inputs, state):
    return [x.numpy() for x in (*inputs, *state)]


@functools.cache
def model(op_name: str, kind: str, decay: str) -> onnx.ModelProto:
    """The single-op model for the decay's rank; all its dims are symbolic."""
    register_schemas()
    inputs, state, attrs = case(op_name, 1, decay)
    return single_op_model(OPS[op_name], kind, arrays(inputs, state), attrs | {"mode": "chunk"})


@functools.cache
def session(op_name: str, kind: str, decay: str) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model(op_name, kind, decay).SerializeToString(),
                                       providers=["CPUExecutionProvider"])


def run(op_name: str, kind: str, decay: str, inputs, state) -> tuple:
    sess = session(op_name, kind, decay)
    o, *s = sess.run(None, dict(zip((i.name for i in sess.get_inputs()), arrays(inputs, state))))
    return torch.from_numpy(o), tuple(torch.from_numpy(x) for x in s)


def reference(op_name: str, inputs, state, attrs) -> tuple:
    o, *s = OPS[op_name].call(OPS[op_name].reference, *inputs, *state, **attrs)
    return o, tuple(s)


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_function_model_passes_full_check_in_standard_opset(op_name, kind, decay):
    m = model(op_name, kind, decay)
    onnx.checker.check_model(m, full_check=True)
    assert [(o.domain, o.version) for o in m.functions[0].opset_import] == [("", OPSET)]


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("T", LENGTHS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_sequence_function_matches_fp64_reference(op_name, T, decay):
    inputs, state, attrs = case(op_name, T, decay)
    assert_matches(run(op_name, "sequence", decay, inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("regime", ["near_zero", "very_negative"])
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_sequence_function_with_extreme_decays_matches_fp64_reference(op_name, regime):
    inputs, state, attrs = case(op_name, 200, "per_token", regime=regime)
    assert_matches(run(op_name, "sequence", "per_token", inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_step_function_matches_fp64_reference(op_name, decay):
    inputs, state, attrs = case(op_name, 1, decay)
    assert_matches(run(op_name, "step", decay, inputs, state), reference(op_name, inputs, state, attrs))


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("op_name", OP_NAMES)
def test_step_function_stream_matches_fp64_reference(op_name, decay):
    """100 tokens, one step each with the state fed back, against the reference run on all 100."""
    T = 100
    inputs, state0, attrs = case(op_name, T, decay)
    state, outputs = state0, []
    for t in range(T):
        token = [x[:, t:t + 1] if x.dim() >= 3 else x for x in inputs]  # a per-head decay is not per token
        o, state = run(op_name, "step", decay, token, state)
        outputs.append(o)
    assert_matches((torch.cat(outputs, 1), state), reference(op_name, inputs, state0, attrs))
