"""A model of one rnnx node and its function: how the function bodies are tested in onnxruntime."""
import numpy as np
import onnx
from onnx import helper

from ..ops import OpDef
from .onnx_ops import DOMAIN, OPSET, VERSION, function

_ELEM = {np.dtype("float32"): onnx.TensorProto.FLOAT, np.dtype("int64"): onnx.TensorProto.INT64}


def single_op_model(op: OpDef, kind: str, arrays: list[np.ndarray], attrs: dict) -> onnx.ModelProto:
    """A graph with inputs `(*inputs, *past state)` named as the op's schema, one `ai.rnnx` node, and
    outputs `(o, *present state)`; `arrays` give the input dtypes and ranks (all dims left symbolic)."""
    names = list(op.inputs) + [f"past_{s.name}" for s in op.state]
    outputs = ["o"] + [f"present_{s.name}" for s in op.state]
    node = helper.make_node(op.name, names, outputs, domain=DOMAIN, **{n: attrs[n] for n in op.attributes})
    graph = helper.make_graph(
        [node], op.name,
        [helper.make_tensor_value_info(n, _ELEM[a.dtype], [None] * a.ndim) for n, a in zip(names, arrays)],
        [helper.make_tensor_value_info(n, _ELEM[a.dtype], [None] * a.ndim)
         for n, a in zip(outputs, [arrays[op.inputs.index(op.output_like)], *arrays[len(op.inputs):]])])
    return helper.make_model(graph, functions=[function(op, kind)], ir_version=10,
                             opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(DOMAIN, VERSION)])
