"""ONNX -> TVM Relax through TVM's ONNX frontend, extended with converters for rnnx's ops and for ONNX's
(and onnxruntime's) `LinearAttention`, so every export flavor compiles.

TVM's importer has no hook for custom ops and ignores a node's domain, so the extension renames the nodes
it handles to op types that cannot collide and adds their converters to the converter table only while
importing (the table is rebuilt by `_get_convert_map()` at every lookup; the patch is undone afterwards).
Each converter emits `relax.call_tir_inplace` to the op's hand-written TIR kernel: the state input is
updated in place, so a step allocates nothing for it.
"""
import warnings
from unittest import mock

import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .. import kernels  # noqa: F401  (registers the TIR kernels)
from ..errors import RnnxError
from ..export.onnx_ops import DOMAIN
from ..lowerings import choose
from ..ops import OPS, OpDef
from .state import carry_state

_PREFIX = "RnnxTvm_"
_LINEAR_ATTENTION = _PREFIX + "LinearAttention"
_RULES = {op.linear_attention_rule: op for op in OPS.values() if op.linear_attention_rule}


def import_onnx(model: onnx.ModelProto, target=None) -> tvm.IRModule:
    """Import an rnnx graph (any flavor). Graph inputs keep no default: the runtime owns the state. Each op's
    kernel is the registered one chosen for `target` (a `tvm.target.Target`; None: the default ones)."""
    model = _renamed(model)
    unknown = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node
                      if n.domain not in ("", "ai.onnx") and not n.op_type.startswith(_PREFIX)})
    if unknown:
        raise RnnxError(f"cannot compile nodes of op {unknown[0]}: rnnx lowers its own ops, standard ONNX and "
                        "LinearAttention")
    converters = {_PREFIX + op.name: _converter(op, target) for op in OPS.values()}
    converters[_LINEAR_ATTENTION] = type("LinearAttention", (_LinearAttention,), {"target": target})
    original = onnx_frontend._get_convert_map
    with mock.patch.object(onnx_frontend, "_get_convert_map", lambda: original() | converters), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnx's shape inference does not know the renamed nodes; TVM infers them
        # The graph is one rnnx wrote and checked above: TVM failing on it is a bug, and keeps its traceback.
        return carry_state(relax.frontend.onnx.from_onnx(model), model)  # state outputs in place


def _renamed(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for node in m.graph.node:
        if node.domain == DOMAIN and node.op_type in OPS:
            node.op_type, node.domain = _PREFIX + node.op_type, ""
        elif node.op_type == "LinearAttention" and node.domain in ("", "ai.onnx", "com.microsoft"):
            node.op_type, node.domain = _LINEAR_ATTENTION, ""
    inputs = {i.name for i in m.graph.input}
    kept = [t for t in m.graph.initializer if t.name not in inputs]  # state defaults would become constants
    del m.graph.initializer[:]
    m.graph.initializer.extend(kept)
    del m.functions[:]
    return m


def emit_op(bb: relax.BlockBuilder, op: OpDef, inputs: list, attrs: dict, target=None) -> relax.Var:
    """`call_tir_inplace` of `op`'s step (T = 1) or sequence kernel, the one registered for `target` and these
    shapes (`rnnx.lowerings.choose`); returns the `(o, *state)` tuple var."""
    shapes = [tuple(x.ty.shape) for x in inputs]
    T = shapes[op.inputs.index("k")][1]
    kind = "step" if isinstance(T, tvm.tirx.IntImm) and int(T) == 1 else "sequence"
    dims = [tuple(int(d) if isinstance(d, tvm.tirx.IntImm) else d for d in s) for s in shapes]
    kernel = choose("tir", op.name, kind, target, dims)(dims, attrs)
    gv = bb.add_func(kernel.with_attr("global_symbol", f"{op.name}_{kind}"), f"{op.name}_{kind}")
    n_in = len(op.inputs)
    v = inputs[op.inputs.index("v")]
    out = [relax.TensorType(v.ty.shape, "float32")] + [x.ty for x in inputs[n_in:]]
    return bb.emit(relax.call_tir_inplace(gv, inputs, inplace_indices=[-1, *range(n_in, len(inputs))], out_ty=out))


def _attributes(op: OpDef, attr: dict) -> dict:
    decoded = {k: v.decode() if isinstance(v, bytes) else v for k, v in attr.items()}
    return {n: t(decoded[n]) for n, t in op.attributes.items() if n in decoded}


def _converter(op: OpDef, target):
    class Convert(onnx_frontend.OnnxOpConverter):
        @classmethod
        def _impl_v1(cls, bb, inputs, attr, params):
            return emit_op(bb, op, list(inputs), _attributes(op, attr), target)

    return Convert


class _LinearAttention(onnx_frontend.OnnxOpConverter):
    """ONNX / onnxruntime LinearAttention on packed `(B, T, H*D)` tensors -> the rnnx op of its update rule."""

    target = None  # what the kernels are chosen for: `import_onnx` converts with a subclass setting it

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        rule = attr.get("update_rule", b"gated_delta").decode()
        if rule not in _RULES or attr.get("q_num_heads") != attr.get("kv_num_heads"):
            raise RnnxError(f"cannot compile LinearAttention with update_rule={rule!r} and "
                            f"{attr.get('q_num_heads')} query / {attr.get('kv_num_heads')} key-value heads")
        op, H = _RULES[rule], int(attr["q_num_heads"])
        query, key, value, state, decay, *beta = [x for x in inputs if x is not None]
        unpack = lambda x: bb.emit(relax.op.reshape(x, (x.ty.shape[0], x.ty.shape[1], H, -1)))  # noqa: E731
        attrs = {"scale": float(attr.get("scale", 0.0)) or int(state.ty.shape[2]) ** -0.5,
                 "mode": "chunk", "chunk_size": int(attr.get("chunk_size", 64))}
        out = emit_op(bb, op, [unpack(query), unpack(key), unpack(value), decay, *beta, state], attrs, cls.target)
        o = bb.emit(relax.TupleGetItem(out, 0))
        packed = bb.emit(relax.op.reshape(o, (o.ty.shape[0], o.ty.shape[1], -1)))
        return bb.emit(relax.Tuple([packed, bb.emit(relax.TupleGetItem(out, 1))]))
