"""onnxruntime int8: `quantize_dynamic` of the `ort` export, weights per output channel (int8 activations
quantized per step: DynamicQuantizeLinear -> MatMulInteger)."""
import tempfile
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from .ort import THREADS, Runner, prepare_quantized  # noqa: F401

LABEL = "onnxruntime int8 (quantize_dynamic, per channel)"


def _quantize(model: onnx.ModelProto) -> onnx.ModelProto:
    with tempfile.TemporaryDirectory() as tmp:  # quantize_dynamic works on files
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(model, src)
        quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        return onnx.load(dst)


def prepare(ctx) -> dict:
    return prepare_quantized(ctx, "ort-int8", _quantize)
