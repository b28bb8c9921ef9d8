"""Quantized activations in the graphs (`rnnx quantize --activations int8`): a quantized MatMul reads
`ai.rnnx.QuantizeInt8PerToken(x)`, a model-local function of standard ops, so that stock onnxruntime runs it and a
compiler can multiply integers (rnnx's: dot-product instructions). Per token (the last axis), symmetric:
`s = max(max |x| / 127, TINY)`, `q = clip(round(x / s), -127, 127)` (round half to even), value `q · s`. Per
token, so that a prefill quantizes each token as the step does."""
import numpy as np
import onnx
from onnx import TensorProto, helper

from ..export.onnx_ops import DOMAIN, VERSION

FUNCTION = "QuantizeInt8PerToken"
QMAX = 127
TINY = float(np.finfo(np.float32).tiny)  # the scale of an all-zero token: its values stay 0, not 0 / 0


def function(opset: int) -> onnx.FunctionProto:
    """The function's definition, its body at the graph's standard `opset`."""
    def constant(name, value, dtype=TensorProto.FLOAT):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, [len(value)]
                                                                                 if dtype == TensorProto.INT64 else [], value))
    nodes = [
        constant("last", [-1], TensorProto.INT64), constant("qmax", [float(QMAX)]), constant("qmin", [-float(QMAX)]),
        constant("tiny", [TINY]),
        helper.make_node("Abs", ["x"], ["magnitude"]),
        helper.make_node("ReduceMax", ["magnitude", "last"], ["peak"], keepdims=1),
        helper.make_node("Div", ["peak", "qmax"], ["ratio"]),
        helper.make_node("Max", ["ratio", "tiny"], ["scale"]),
        helper.make_node("Div", ["x", "scale"], ["scaled"]),
        helper.make_node("Round", ["scaled"], ["rounded"]),
        helper.make_node("Clip", ["rounded", "qmin", "qmax"], ["q"]),
        helper.make_node("Mul", ["q", "scale"], ["y"]),
    ]
    return helper.make_function(DOMAIN, FUNCTION, ["x"], ["y"], nodes, [helper.make_opsetid("", opset)],
                                doc_string=__doc__.split("\n\n")[0])


def declare(proto: onnx.ModelProto) -> None:
    """Add the function, and its domain's import, to `proto` unless it has them."""
    if any(f.domain == DOMAIN and f.name == FUNCTION for f in proto.functions):
        return
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    proto.functions.append(function(opset))
    if not any(o.domain == DOMAIN for o in proto.opset_import):
        proto.opset_import.append(helper.make_opsetid(DOMAIN, VERSION))
