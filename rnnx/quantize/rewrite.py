"""The quantized weights in a graph, in standard ONNX: a MatMul's B becomes `DequantizeLinear` of an int8 (axis 1:
a scale per output column) or int4 (axis 0, `block_size`: a scale per block along K) initializer; a weight with
columns kept fp32 is cut into runs, `MatMul(x, DQ(W_q[:, a:b]))` and `MatMul(x, W[:, b:c])`, joined by
`Concat(axis=-1)` in column order under the MatMul's output name. An embedding table is int8 rows, gathered
first and then scaled (`Gather`, `Cast`, `Mul` by the gathered row scales: a step dequantizes the rows it reads,
not the table); a head tied to it reads the same rows through `DequantizeLinear` (axis 0) and its Transpose.
With quantized activations, a quantized MatMul's A is `ai.rnnx.QuantizeInt8PerToken(x)` (`activations.py`), one
node per tensor x however many MatMuls read it (the fp32 runs of a cut weight read x itself)."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import RnnxError
from . import activations
from .choose import FP32, Plan
from .scales import int4_blocks, int4_initializer, int8_channels

INT4_OPSET = 21  # blocked DequantizeLinear and INT4 tensors
# the standard ops whose version 21 only admits more types (int4, uint4, float8) than their version before it
SAME_MEANING_AT_21 = {"Cast", "CastLike", "Constant", "ConstantOfShape", "DequantizeLinear", "Flatten", "Identity",
                      "If", "Loop", "Pad", "QLinearMatMul", "QuantizeLinear", "Reshape", "Scan", "Shape", "Size",
                      "Squeeze", "Transpose", "Unsqueeze"}


class _Edit:
    """Nodes to insert before, or instead of, the graph's nodes (by index), and the initializers added/dropped."""

    def __init__(self, graph: onnx.GraphProto, inputs: bool):
        self.inputs = inputs
        self.quantized: dict[str, str] = {}  # activation -> its quantized-dequantized copy
        self.nodes = []
        for n in graph.node:  # copies: the graph's own are replaced at the end
            self.nodes.append(onnx.NodeProto())
            self.nodes[-1].CopyFrom(n)
        self.before, self.instead = {}, {}
        self.added, self.dropped = [], set()

    def users(self, name: str) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if name in n.input]

    def node(self, like: onnx.NodeProto, op: str, inputs: list[str], outputs: list[str], name: str, **attrs):
        """A new node carrying the metadata (the module it computes) of the node it stands for."""
        node = helper.make_node(op, inputs, outputs, name=name, **attrs)
        node.metadata_props.extend(like.metadata_props)
        return node

    def activation(self, x: str) -> str:
        """What a quantized MatMul reads for its input `x`: x, or with quantized activations x through
        QuantizeInt8PerToken, inserted before x's first reader."""
        if not self.inputs:
            return x
        if x not in self.quantized:
            first = self.users(x)[0]
            node = self.node(self.nodes[first], activations.FUNCTION, [x], [f"{x}/int8"], f"{x}/{activations.FUNCTION}")
            node.domain = activations.DOMAIN
            self.before.setdefault(first, []).append(node)
            self.quantized[x] = f"{x}/int8"
        return self.quantized[x]

    def apply(self, graph: onnx.GraphProto) -> None:
        nodes = [m for i, n in enumerate(self.nodes) for m in [*self.before.get(i, []), *self.instead.get(i, [n])]]
        kept = [t for t in graph.initializer if t.name not in self.dropped]
        del graph.node[:], graph.initializer[:]
        graph.node.extend(nodes)
        graph.initializer.extend(kept + self.added)


def rewrite(proto: onnx.ModelProto, kind: str, plans: list[Plan], group: int, inputs: bool = False) -> None:
    """Quantize, in the `kind` graph (prefill or step) `proto`, every weight whose plan says so, and with
    `inputs` the inputs of the MatMuls of quantized columns (int8 activations)."""
    edit = _Edit(proto.graph, inputs)
    initializers = {t.name: t for t in proto.graph.initializer}
    for plan in plans:
        names = plan.initializers(kind) if plan.bits != FP32 else []
        for i, name in enumerate(names):
            w = numpy_helper.to_array(initializers[name])
            base = f"{plan.weight.module}.weight" + (f".{i}" if len(names) > 1 else "")
            (_rows if plan.rows else _columns)(edit, plan, name, w, base, group)
            edit.dropped.add(name)
    edit.apply(proto.graph)
    if edit.quantized:
        activations.declare(proto)


def _columns(edit: _Edit, plan: Plan, name: str, w: np.ndarray, base: str, group: int) -> None:
    users = edit.users(name)
    assert users and all(edit.nodes[i].op_type == "MatMul" and edit.nodes[i].input[1] == name for i in users), name
    first = edit.nodes[users[0]]
    sources, dequantize = [], []
    for run in plan.runs:
        part = np.ascontiguousarray(w[:, run.start:run.stop])
        run_name = base if len(plan.runs) == 1 else f"{base}[{run.start}:{run.stop}]"
        if run.reason is not None:
            edit.added.append(numpy_helper.from_array(part, run_name))
            sources.append(run_name)
            continue
        if plan.bits == 8:
            q, scale = int8_channels(part, axis=1)
            values, attrs = numpy_helper.from_array(q, f"{run_name}.int8"), {"axis": 1}
        else:
            q, scale = int4_blocks(part, group)
            values, attrs = int4_initializer(q, f"{run_name}.int4"), {"axis": 0, "block_size": group}
        edit.added += [values, numpy_helper.from_array(scale, f"{run_name}.scale")]
        dequantize.append(edit.node(first, "DequantizeLinear", [values.name, f"{run_name}.scale"],
                                    [f"{run_name}.dequantized"], f"{run_name}/DequantizeLinear", **attrs))
        sources.append(f"{run_name}.dequantized")
    edit.before.setdefault(users[0], []).extend(dequantize)
    for i in users:
        node = edit.nodes[i]
        x = node.input[0]
        if len(sources) == 1:
            node.input[:] = [edit.activation(x), sources[0]]
            continue
        out = node.output[0]
        pieces = [edit.node(node, "MatMul", [x if run.reason else edit.activation(x), s], [f"{out}/{s}"],
                            f"{node.name}/{s}") for run, s in zip(plan.runs, sources)]
        edit.instead[i] = pieces + [edit.node(node, "Concat", [p.output[0] for p in pieces], [out],
                                              f"{node.name}/Concat", axis=-1)]


def _rows(edit: _Edit, plan: Plan, name: str, w: np.ndarray, base: str, group: int) -> None:
    """int8 rows of a table `(V, D)`, for the Gathers reading it and a head reading it through a Transpose."""
    q, scale = int8_channels(w, axis=0)
    values, scales, axes = f"{base}.int8", f"{base}.scale", f"{base}.scale_axes"
    edit.added += [numpy_helper.from_array(q, values), numpy_helper.from_array(scale, scales),
                   numpy_helper.from_array(np.array([-1], np.int64), axes)]
    users = edit.users(name)
    transposes = [i for i in users if edit.nodes[i].op_type == "Transpose"]
    if transposes:
        edit.before.setdefault(transposes[0], []).append(edit.node(
            edit.nodes[transposes[0]], "DequantizeLinear", [values, scales], [f"{base}.dequantized"],
            f"{base}/DequantizeLinear", axis=0))
    for i in users:
        node = edit.nodes[i]
        if node.op_type == "Transpose":
            node.input[0] = f"{base}.dequantized"
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        assert node.op_type == "Gather" and node.input[0] == name and axis == 0, (name, node.op_type)
        ids, out, at = node.input[1], node.output[0], node.name
        edit.instead[i] = [
            edit.node(node, "Gather", [values, ids], [f"{out}/int8"], f"{at}/Gather", axis=0),
            edit.node(node, "Cast", [f"{out}/int8"], [f"{out}/rows"], f"{at}/Cast", to=TensorProto.FLOAT),
            edit.node(node, "Gather", [scales, ids], [f"{out}/scale"], f"{at}/GatherScale", axis=0),
            edit.node(node, "Unsqueeze", [f"{out}/scale", axes], [f"{out}/scale1"], f"{at}/Unsqueeze"),
            edit.node(node, "Mul", [f"{out}/rows", f"{out}/scale1"], [out], f"{at}/Mul")]


def use_int4_opset(proto: onnx.ModelProto) -> None:
    """Raise the default domain to opset 21, in the graph and in every model-local function (whose bodies must
    use the model's opset), after checking that no op used means something else there."""
    if next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= INT4_OPSET:
        return  # the standard flavor's opset 27: nothing to raise
    ops = {n.op_type for n in proto.graph.node if n.domain in ("", "ai.onnx")}
    ops |= {n.op_type for f in proto.functions for n in f.node if n.domain in ("", "ai.onnx")}
    for op in sorted(ops - SAME_MEANING_AT_21):
        if onnx.defs.get_schema(op, INT4_OPSET).since_version == INT4_OPSET:
            raise RnnxError(f"the graphs use {op}, whose meaning changed at opset {INT4_OPSET}: int4 weights need "
                            f"that opset; quantize to int8 instead")
    for imports in [proto.opset_import, *(f.opset_import for f in proto.functions)]:
        for o in imports:
            if o.domain in ("", "ai.onnx"):
                o.version = INT4_OPSET
