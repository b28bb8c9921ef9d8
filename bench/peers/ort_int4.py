"""onnxruntime int4: MatMulNBits (block 32, symmetric) of the `ort` export at accuracy_level 4 (activations
quantized to int8 inside the kernel); `ort_int4_exact` is accuracy_level 0 (fp32 activations)."""
import functools

import onnx
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

from .ort import THREADS, Runner, prepare_quantized  # noqa: F401

LABEL = "onnxruntime int4 (MatMulNBits, block 32, accuracy_level 4)"


def quantize(model: onnx.ModelProto, accuracy_level: int) -> onnx.ModelProto:
    quantizer = MatMulNBitsQuantizer(model, bits=4, block_size=32, is_symmetric=True, accuracy_level=accuracy_level)
    quantizer.process()
    return quantizer.model.model


def prepare(ctx) -> dict:
    return prepare_quantized(ctx, "ort-int4", functools.partial(quantize, accuracy_level=4))
