"""Export flavors: which spelling the ops take in the written graphs.

- portable: every op is an `ai.rnnx` node with a model-local function (any onnxruntime, rnnx's compiler).
- standard: an op that declares a standard spelling (`OpDef.standard_op`: `LinearAttention`,
  `CausalConvWithState`) becomes that node, opset 27 (runtimes that have it).
- ort: the same ops become onnxruntime's native `com.microsoft` kernel of that name.
Ops with no such spelling stay `ai.rnnx` in every flavor, and so does a linear-attention node whose decay
is per key dimension `(B, T, H, Dk)`.
"""
import onnx
from onnx import helper

from ..errors import RnnxError
from ..ops import OPS
from .onnx_ops import DOMAIN

FLAVORS = {"portable": None, "standard": ("", 27), "ort": ("com.microsoft", 1)}


def apply_flavor(model: onnx.ModelProto, flavor: str) -> onnx.ModelProto:
    """Rewrite `model`'s nodes of ops with a standard spelling into `flavor`'s, in place; returns it."""
    if flavor not in FLAVORS:
        raise RnnxError(f"unknown flavor {flavor!r}; flavors: {', '.join(FLAVORS)}")
    if FLAVORS[flavor] is None:
        return model
    domain, version = FLAVORS[flavor]
    shapes = _shapes(model)
    nodes = []
    for node in model.graph.node:
        op = OPS.get(node.op_type) if node.domain == DOMAIN else None
        spell = _SPELLINGS[op.standard_op] if op is not None and op.standard_op is not None else None
        nodes += [node] if spell is None else spell(node, op, domain, shapes)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    kept = {n.op_type for n in nodes if n.domain == DOMAIN}
    functions = [f for f in model.functions if f.name in kept]
    del model.functions[:]
    model.functions.extend(functions)
    if domain == "":  # the standard op needs opset 27; the remaining bodies use ops unchanged since OPSET
        for imports in [model.opset_import] + [f.opset_import for f in model.functions]:
            next(o for o in imports if o.domain == "").version = version
    else:
        model.opset_import.append(helper.make_opsetid(domain, version))
    return model


def _shapes(model: onnx.ModelProto) -> dict[str, onnx.TensorShapeProto]:
    """The shape of every value of `model`'s graph that shape inference knows, its inputs and initializers
    included (a constant per-head decay is an initializer)."""
    graph = onnx.shape_inference.infer_shapes(model).graph
    shapes = {v.name: v.type.tensor_type.shape for v in [*graph.input, *graph.value_info]}
    return shapes | {t.name: helper.make_tensor_type_proto(t.data_type, t.dims).tensor_type.shape
                     for t in graph.initializer}


def _linear_attention(node: onnx.NodeProto, op, domain: str, shapes) -> list[onnx.NodeProto]:
    """`ai.rnnx` node -> LinearAttention on packed `(B, T, H*D)` tensors, the decay expanded to `(B, T, H)`;
    a node whose decay is per key dimension `(B, T, H, Dk)` (its rank, from shape inference) stays itself."""
    named = dict(zip(op.inputs + ("state",), node.input))
    decay = named.get("decay", named.get("g"))
    decay_shape = shapes.get(decay)
    if decay_shape is not None and len(decay_shape.dim) == 4:
        return [node]
    q_shape = shapes.get(named["q"])
    heads = q_shape.dim[2].dim_value if q_shape is not None and len(q_shape.dim) == 4 else 0
    if not heads:
        raise RnnxError(f"node {node.name} ({op.name}): the number of heads of its q input is not static")
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    p = f"{node.name}/"
    nodes = [
        helper.make_node("Constant", [], [p + "packed"],  # a tensor, not value_ints: TVM's importer reads only that
                         value=helper.make_tensor(p + "packed", onnx.TensorProto.INT64, [3], [0, 0, -1])),
        *(helper.make_node("Reshape", [named[x], p + "packed"], [p + x]) for x in ("q", "k", "v")),
        helper.make_node("Shape", [named["q"]], [p + "bth"], end=3),
        helper.make_node("Expand", [decay, p + "bth"], [p + "decay"]),
        helper.make_node(
            "LinearAttention", [p + "q", p + "k", p + "v", named["state"], p + "decay", named.get("beta", "")],
            [p + "o", node.output[1]], domain=domain, q_num_heads=heads, kv_num_heads=heads,
            update_rule=op.linear_attention_rule, scale=attrs["scale"], chunk_size=attrs["chunk_size"]),
        helper.make_node("Shape", [named["v"]], [p + "v_shape"]),
        helper.make_node("Reshape", [p + "o", p + "v_shape"], [node.output[0]]),
    ]
    if not named.get("beta"):
        nodes[-3].input.pop()
    return nodes


def _causal_conv_with_state(node: onnx.NodeProto, op, domain: str, shapes) -> list[onnx.NodeProto]:
    """`ai.rnnx` causal_conv1d -> CausalConvWithState, whose activations are channels-first `(B, D, T)` and
    whose weight is `(D, 1, W)`; its carry state `(B, D, W - 1)` is the op's as it is."""
    x, weight, bias, state = node.input
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    p = f"{node.name}/"
    return [
        helper.make_node("Transpose", [x], [p + "x"], perm=[0, 2, 1]),
        helper.make_node("Constant", [], [p + "tap_axis"],
                         value=helper.make_tensor(p + "tap_axis", onnx.TensorProto.INT64, [1], [1])),
        helper.make_node("Unsqueeze", [weight, p + "tap_axis"], [p + "weight"]),
        helper.make_node("CausalConvWithState", [p + "x", p + "weight", bias, state], [p + "y", node.output[1]],
                         domain=domain, activation=attrs["activation"].decode()),
        helper.make_node("Transpose", [p + "y"], [node.output[0]], perm=[0, 2, 1]),
    ]


# standard op -> the rewrite of an rnnx node into it
_SPELLINGS = {"LinearAttention": _linear_attention, "CausalConvWithState": _causal_conv_with_state}
