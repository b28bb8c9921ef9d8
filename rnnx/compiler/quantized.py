"""Quantized weights through TVM: an rnnx quantized export's `DequantizeLinear -> MatMul` (int8 per output
channel, or int4 blocked along K: `rnnx quantize`) becomes one call of `rnnx/kernels/quantized_matmul.py`'s
kernel, the weights kept int8 / int4 in the library. A MatMul reading quantized activations
(`ai.rnnx.QuantizeInt8PerToken`) multiplies integers where the target can (`integer_matmul`: VNNI), and
elsewhere quantizes them as the graph does then runs the same kernel.

TVM's ONNX frontend would fold the DequantizeLinear of a constant back into an fp32 constant (four or eight
times the bytes a step reads) and cannot import int4 tensors or blocked DequantizeLinear at all, so
`fuse_dequantize_matmul` rewrites each such pair into one `QuantizedMatMul` node, with the int4 weights widened
to int8 numpy for the importer, before TVM sees the graph; `QuantizedMatMul`'s converter packs them in the
kernel's tiles and emits the call.
"""
import numpy as np
import onnx
from onnx import numpy_helper
from tvm import relax, tirx
from tvm.relax.frontend.onnx import onnx_frontend

from ..export.onnx_ops import DOMAIN
from ..kernels.quantized_activations import TILE
from ..lowerings import choose, lowerings
from ..quantize.activations import FUNCTION as QUANTIZED_ACTIVATIONS
from .schedules import PARALLEL_MIN_MACS, vector_lanes

NODE = "QuantizedMatMul"  # the fused node's op type (the importer prefixes it as it does rnnx's ops)
_FORMATS = {onnx.TensorProto.INT8: 8, onnx.TensorProto.INT4: 4}


def fuse_dequantize_matmul(graph: onnx.GraphProto, op_type: str) -> None:
    """Rewrite in place every `MatMul(a, DequantizeLinear(W, scale))` whose W and scale are initializers, W
    int8 per column (axis 1) or int4 in blocks along K (axis 0, `block_size`), into `op_type(a, W, scale)`
    with attributes `bits`, `group`, `activations` (8 where a is `QuantizeInt8PerToken(x)`: then the node reads
    x); an int4 W becomes an int8 initializer of the same values."""
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    producers = {node.output[0]: node for node in graph.node if node.op_type == "DequantizeLinear"}
    quantizers = {node.output[0]: node for node in graph.node
                  if node.domain == DOMAIN and node.op_type == QUANTIZED_ACTIVATIONS}
    fused = set()
    for node in graph.node:
        dq = producers.get(node.input[1]) if node.op_type == "MatMul" else None
        if dq is None or consumers[dq.output[0]] != 1 or len(dq.input) > 2 and dq.input[2]:
            continue
        weight, scale = (inits.get(name) for name in dq.input[:2])
        if weight is None or scale is None or weight.data_type not in _FORMATS or len(weight.dims) != 2:
            continue
        bits = _FORMATS[weight.data_type]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in dq.attribute}
        if bits == 4:
            weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight).astype(np.int8), weight.name))
        quantizer = quantizers.get(node.input[0])
        node.op_type, node.domain = op_type, ""
        node.input[:] = [quantizer.input[0] if quantizer else node.input[0], *dq.input[:2]]
        node.attribute.extend([onnx.helper.make_attribute("bits", bits),
                               onnx.helper.make_attribute("group", int(attrs.get("block_size", 0))),
                               onnx.helper.make_attribute("activations", 8 if quantizer else 32)])
        fused.add(id(dq))
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    fused |= {id(q) for q in quantizers.values() if q.output[0] not in read}
    kept = [n for n in graph.node if id(n) not in fused]
    del graph.node[:]
    graph.node.extend(kept)


def pack_integer(weight: np.ndarray, bits: int) -> np.ndarray:
    """`weight (K, N)` int8 (int4 values for bits 4) -> `integer_matmul`'s tiles of TILE columns and 4 k, offset
    to unsigned: int8 `(N / TILE, K / 4, 4 TILE)` of `w + 128`, int4 `(N / TILE, K / 4, 2 TILE)` of nibbles
    `w + 8`, column j < TILE / 2 of a tile in the low one and j + TILE / 2 in the high one."""
    K, N = weight.shape
    tiles = weight.astype(np.int16).reshape(K // 4, 4, N // TILE, 2, TILE // 2).transpose(2, 0, 3, 4, 1)
    if bits == 8:
        return np.ascontiguousarray((tiles + 128).astype(np.uint8).reshape(N // TILE, K // 4, 4 * TILE))
    unsigned = (tiles + 8).astype(np.uint8)  # (t, k4, v, j, i)
    return np.ascontiguousarray((unsigned[:, :, 0] | (unsigned[:, :, 1] << 4)).reshape(N // TILE, K // 4, 2 * TILE))


def pack(weight: np.ndarray, scale: np.ndarray, bits: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """`weight (K, N)` int8 (int4 values for bits 4) -> the kernel's tiles: `(N / tile, K, tile)` int8, or for
    int4 `(N / tile, K, tile / 2)`, `w + 8` (0..15) of column j of a tile in a byte's low nibble and of column
    j + tile / 2 in its high one."""
    K, N = weight.shape
    tiles = weight.reshape(K, N // tile, tile).transpose(1, 0, 2)
    if bits == 8:
        return np.ascontiguousarray(tiles), scale.astype(np.float32)
    unsigned = (tiles.astype(np.int16) + 8).astype(np.uint8)
    low, high = unsigned[..., : tile // 2], unsigned[..., tile // 2:] << 4
    return np.ascontiguousarray((low | high).view(np.int8)), scale.astype(np.float32)


class QuantizedMatMul(onnx_frontend.OnnxOpConverter):
    """`QuantizedMatMul(a (..., K), W (K, N), scale)` -> `call_tir` of the quantized kernel on `a` as rows."""

    target = None  # what the kernels are tuned for: the importer converts with a subclass setting it

    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        a = inputs[0]
        weight, scale = (onnx_frontend.get_constant(x, params).value.numpy() for x in inputs[1:])
        bits, group, activations = int(attr["bits"]), int(attr["group"]), int(attr.get("activations", 32))
        K, N = weight.shape
        shape = list(a.ty.shape)
        rows = shape[0]
        for d in shape[1:-1]:
            rows = rows * d
        step = isinstance(rows, tirx.IntImm)
        kind = "step" if step else "sequence"
        M = int(rows) if step else tirx.Var("M", "int64")  # the prefill's kernels bind their own M from x
        cores = int(cls.target.attrs.get("num-cores", 1)) if cls.target is not None else 1
        attrs = {"bits": bits, "group": group, "N": N, "parallel": cores > 1 and K * N >= PARALLEL_MIN_MACS}
        x = bb.emit(relax.op.reshape(a, (rows, K)))
        out = relax.TensorType((rows, N), "float32")

        def call(op, fn_kind, shapes, args, out_ty, what):
            kernel = choose("tir", op, fn_kind, cls.target, shapes)(shapes, attrs)
            name = f"{op}_{what}_{fn_kind}"  # one per shape: as the layers share
            return bb.emit(relax.call_tir(bb.add_func(kernel.with_attr("global_symbol", name), name), args, out_ty))

        what = f"int{bits}_{K}x{N}"
        if activations == 8 and step and N % TILE == 0 and K % 4 == 0:
            shapes = [(M, K), (N // TILE, K // 4, (4 if bits == 8 else 2) * TILE), scale.shape]  # pack_integer's
            if any(lw.applies(cls.target, shapes) for lw in lowerings("tir", "integer_matmul", "step")):
                packed = [bb.emit(relax.const(pack_integer(weight, bits))),
                          bb.emit(relax.const(scale.astype(np.float32)))]
                y = call("integer_matmul", "step", shapes, [x, *packed], out, what)
                return bb.emit(relax.op.reshape(y, [*shape[:-1], N]))
        if activations == 8:  # quantized as the graph says, then multiplied in fp32
            x = call("quantize_activations", kind, [(M, K)], [x], relax.TensorType((rows, K), "float32"), f"{K}")
        lanes = vector_lanes(cls.target) if cls.target is not None else 4
        # the step's matrix-vector product: 4 vectors of columns, 4 independent accumulator chains; the
        # prefill's 4-row blocks: 2 vectors, so that 4 x 2 accumulators and the widened weights fit the registers
        tile = next(t for t in ((4 * lanes, 2 * lanes, lanes, 2) if step else (2 * lanes, lanes, 2)) if N % t == 0)
        wp, s = pack(weight, scale, bits, tile)
        y = call("quantized_matmul", kind, [(M, K), wp.shape, s.shape],
                 [x, bb.emit(relax.const(wp)), bb.emit(relax.const(s))], out, what)
        return bb.emit(relax.op.reshape(y, [*shape[:-1], N]))
