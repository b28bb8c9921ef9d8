"""One rnnx node with its ONNX function body, run by stock onnxruntime: how the bodies are tested."""
import functools

import numpy as np
import onnx
import onnxruntime
import torch
from onnx.reference import ReferenceEvaluator

from rnnx.export.onnx_ops import register_schemas
from rnnx.export.single_op import single_op_model
from rnnx.ops import OPS


def arrays(inputs, state) -> list[np.ndarray]:
    return [x.numpy() for x in (*inputs, *state)]


def _key(op_name, kind, inputs, state, attrs) -> tuple:
    """What the model depends on: the inputs' ranks and dtypes (all dims are symbolic) and the attributes."""
    return (op_name, kind, tuple((a.ndim, a.dtype.str) for a in arrays(inputs, state)),
            tuple(sorted((attrs | {"mode": "chunk"}).items())))


def function_model(op_name: str, kind: str, inputs, state, attrs) -> onnx.ModelProto:
    """The single-op model of `op_name` with its `kind` function body."""
    return _model(*_key(op_name, kind, inputs, state, attrs))


@functools.cache
def _model(op_name, kind, signature, attrs) -> onnx.ModelProto:
    register_schemas()
    samples = [np.zeros((1,) * ndim, dtype=dtype) for ndim, dtype in signature]
    return single_op_model(OPS[op_name], kind, samples, dict(attrs))


@functools.cache
def _session(*key) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(_model(*key).SerializeToString(), providers=["CPUExecutionProvider"])


def run(op_name: str, kind: str, inputs, state, attrs) -> tuple:
    """`(o, state)` of the function body `kind` ("sequence" or "step") in onnxruntime, as torch tensors."""
    session = _session(*_key(op_name, kind, inputs, state, attrs))
    o, *s = session.run(None, dict(zip((i.name for i in session.get_inputs()), arrays(inputs, state))))
    return torch.from_numpy(o), tuple(torch.from_numpy(x) for x in s)


def run_model(model: onnx.ModelProto, inputs, state, engine: str = "onnxruntime") -> tuple:
    """`(o, state)` of a model taking `(*inputs, *state)`, in onnxruntime or onnx's reference evaluator."""
    if engine == "onnxruntime":
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    else:
        session = ReferenceEvaluator(model)
    o, *s = session.run(None, dict(zip((i.name for i in model.graph.input), arrays(inputs, state))))
    return torch.from_numpy(o), tuple(torch.from_numpy(x) for x in s)


def reference(op_name: str, inputs, state, attrs) -> tuple:
    o, *s = OPS[op_name].call(OPS[op_name].reference, *inputs, *state, **attrs)
    return o, tuple(s)
