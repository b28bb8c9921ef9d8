"""ONNX -> TVM Relax through TVM's ONNX frontend, extended with converters for rnnx's ops and for the standard
ONNX (and onnxruntime) ops the flavors spell them as (`LinearAttention`, `CausalConvWithState`), so every
export flavor compiles.

TVM's importer has no hook for custom ops and ignores a node's domain, so the extension renames the nodes
it handles to op types that cannot collide and adds their converters to the converter table only while
importing (the table is rebuilt by `_get_convert_map()` at every lookup; the patch is undone afterwards).
Each converter emits `relax.call_tir_inplace` to the op's hand-written TIR kernel: the state input is
updated in place, so a step allocates nothing for it.
"""
import warnings
from unittest import mock

import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .. import kernels  # noqa: F401  (registers the TIR kernels)
from ..errors import RnnxError
from ..export.onnx_ops import DOMAIN
from ..lowerings import choose
from ..ops import OPS, OpDef
from .quantized import NODE as QUANTIZED, QuantizedMatMul, fuse_dequantize_matmul
from .state import carry_state

_PREFIX = "RnnxTvm_"
_STANDARD_DOMAINS = ("", "ai.onnx", "com.microsoft")
_RULES = {op.linear_attention_rule: op for op in OPS.values() if op.linear_attention_rule}


def import_onnx(model: onnx.ModelProto, target=None) -> tvm.IRModule:
    """Import an rnnx graph (any flavor). Graph inputs keep no default: the runtime owns the state. Each op's
    kernel is the registered one chosen for `target` (a `tvm.target.Target`; None: the default ones)."""
    model = _renamed(model)
    unknown = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node
                      if n.domain not in ("", "ai.onnx") and not n.op_type.startswith(_PREFIX)})
    if unknown:
        raise RnnxError(f"cannot compile nodes of op {unknown[0]}: rnnx lowers its own ops, standard ONNX, "
                        f"{', '.join(_STANDARD)}")
    converters = {_PREFIX + op.name: _converter(op, target) for op in OPS.values()}
    converters |= {_PREFIX + name: type(name, (convert,), {"target": target}) for name, convert in _STANDARD.items()}
    converters[_PREFIX + QUANTIZED] = type(QUANTIZED, (QuantizedMatMul,), {"target": target})
    converters["Range"] = _Range
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
        elif node.op_type in _STANDARD and node.domain in _STANDARD_DOMAINS:
            node.op_type, node.domain = _PREFIX + node.op_type, ""
    fuse_dequantize_matmul(m.graph, _PREFIX + QUANTIZED)
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
    like = op.inputs.index(op.output_like)  # (B, T, ...), as the output
    T = shapes[like][1]
    kind = "step" if isinstance(T, tvm.tirx.IntImm) and int(T) == 1 else "sequence"
    dims = [tuple(int(d) if isinstance(d, tvm.tirx.IntImm) else d for d in s) for s in shapes]
    kernel = choose("tir", op.name, kind, target, dims)(dims, attrs)
    gv = bb.add_func(kernel.with_attr("global_symbol", f"{op.name}_{kind}"), f"{op.name}_{kind}")
    n_in = len(op.inputs)
    out = [relax.TensorType(inputs[like].ty.shape, "float32")] + [x.ty for x in inputs[n_in:]]
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


class _CausalConvWithState(onnx_frontend.OnnxOpConverter):
    """ONNX / onnxruntime CausalConvWithState, channels-first `(B, D, T)` with weight `(D, 1, W)` and carry
    state `(B, D, W - 1)`, -> the rnnx op it spells, whose state is that carry state as it is."""

    target = None  # as `_LinearAttention`'s

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        defaults = {"ndim": 1, "dilation": 1, "channels_last": 0, "state_window": 0}
        other = {k: v for k, v in attr.items() if k in defaults and v != defaults[k]}
        x, weight, bias, state = (list(inputs) + [None] * 4)[:4]
        if other or state is None:
            raise RnnxError(f"cannot compile CausalConvWithState with {other or 'no past_state'}: rnnx compiles the "
                            "1-D, undilated, channels-first conv with its carry state")
        D, _, W = weight.ty.shape
        bias = relax.const(np.zeros(int(D), "float32")) if bias is None else bias
        attrs = {"activation": "none" if attr.get("activation", b"none") == b"none" else "silu",  # or its alias swish
                 "mode": "chunk"}
        out = emit_op(bb, _spelled_as("CausalConvWithState"), [bb.emit(relax.op.permute_dims(x, [0, 2, 1])),
                      bb.emit(relax.op.reshape(weight, (D, W))), bias, state], attrs, cls.target)
        y = bb.emit(relax.op.permute_dims(bb.emit(relax.TupleGetItem(out, 0)), [0, 2, 1]))
        return bb.emit(relax.Tuple([y, bb.emit(relax.TupleGetItem(out, 1))]))


class _Range(onnx_frontend.OnnxOpConverter):
    """ONNX Range from 0 by 1 to a length TVM knows as a symbol (`arange(T)` of a prefill: rotary positions) as
    an arange of that length; TVM's converter gives it a length of its own, which nothing after it matches to
    T, so that every shape computed from it is unknown. Any other Range is TVM's."""

    @classmethod
    def _impl_v12(cls, bb, inputs, attr, params):
        start, limit, delta = (onnx_frontend.get_constant(x, params) for x in inputs)
        constant = lambda x: isinstance(x, tvm.ir.GenericConst) and x.value.numpy().size == 1  # noqa: E731
        if tvm.ir.is_prim_expr(limit) and constant(start) and constant(delta) \
                and start.value.numpy().item() == 0 and delta.value.numpy().item() == 1:
            return bb.normalize(relax.op.arange(0, limit, 1, dtype=str(start.ty.dtype)))
        return onnx_frontend.Range._impl_v12(bb, inputs, attr, params)


def _spelled_as(standard: str) -> OpDef:
    """The rnnx op the flavors spell as `standard` (LinearAttention spells one per update rule: `_RULES`)."""
    (op,) = [op for op in OPS.values() if op.standard_op == standard]
    return op


# standard op -> its converter
_STANDARD = {"LinearAttention": _LinearAttention, "CausalConvWithState": _CausalConvWithState}
