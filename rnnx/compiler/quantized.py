"""Quantized weights through TVM: an rnnx quantized export's `DequantizeLinear -> MatMul` (int8 per output
channel, or int4 blocked along K: `rnnx quantize`) becomes one call of `rnnx/kernels/quantized_matmul.py`'s
kernel, the weights kept int8 / int4 in the library.

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

from ..lowerings import choose
from .schedules import PARALLEL_MIN_MACS, vector_lanes

NODE = "QuantizedMatMul"  # the fused node's op type (the importer prefixes it as it does rnnx's ops)
_FORMATS = {onnx.TensorProto.INT8: 8, onnx.TensorProto.INT4: 4}


def fuse_dequantize_matmul(graph: onnx.GraphProto, op_type: str) -> None:
    """Rewrite in place every `MatMul(a, DequantizeLinear(W, scale))` whose W and scale are initializers, W
    int8 per column (axis 1) or int4 in blocks along K (axis 0, `block_size`), into `op_type(a, W, scale)`
    with attributes `bits`, `group`; an int4 W becomes an int8 initializer of the same values."""
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    producers = {node.output[0]: node for node in graph.node if node.op_type == "DequantizeLinear"}
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
        node.op_type, node.domain = op_type, ""
        del node.input[1:]
        node.input.extend(dq.input[:2])
        node.attribute.extend([onnx.helper.make_attribute("bits", bits),
                               onnx.helper.make_attribute("group", int(attrs.get("block_size", 0)))])
        fused.add(id(dq))
    kept = [n for n in graph.node if id(n) not in fused]
    del graph.node[:]
    graph.node.extend(kept)


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
        bits, group = int(attr["bits"]), int(attr["group"])
        K, N = weight.shape
        shape = list(a.ty.shape)
        rows = shape[0]
        for d in shape[1:-1]:
            rows = rows * d
        step = isinstance(rows, tirx.IntImm)
        lanes = vector_lanes(cls.target) if cls.target is not None else 4
        # the step's matrix-vector product: 4 vectors of columns, 4 independent accumulator chains; the
        # prefill's 4-row blocks: 2 vectors, so that 4 x 2 accumulators and the widened weights fit the registers
        tile = next(t for t in ((4 * lanes, 2 * lanes, lanes, 2) if step else (2 * lanes, lanes, 2)) if N % t == 0)
        wp, s = pack(weight, scale, bits, tile)
        cores = int(cls.target.attrs.get("num-cores", 1)) if cls.target is not None else 1
        M = int(rows) if step else tirx.Var("M", "int64")  # the prefill's kernel binds its own M from x
        kernel = choose("tir", "quantized_matmul", "step" if step else "sequence", cls.target,
                        [(M, K), wp.shape, s.shape])(
            [(M, K), wp.shape, s.shape], {"bits": bits, "group": group, "N": N,
                                          "parallel": cores > 1 and K * N >= PARALLEL_MIN_MACS})
        name = f"quantized_matmul_int{bits}_{K}x{N}_{'step' if step else 'sequence'}"  # one per shape: as the layers share
        gv = bb.add_func(kernel.with_attr("global_symbol", name), name)
        x = bb.emit(relax.op.reshape(a, (rows, K)))
        packed = [bb.emit(relax.const(wp)), bb.emit(relax.const(s))]
        y = bb.emit(relax.call_tir(gv, [x, *packed], relax.TensorType((rows, N), "float32")))
        return bb.emit(relax.op.reshape(y, [*shape[:-1], N]))
