"""onnxruntime int4 at accuracy_level 0: MatMulNBits (block 32) with fp32 activations (see ort_int4)."""
import functools

from .ort import THREADS, Runner, prepare_quantized  # noqa: F401
from .ort_int4 import quantize

LABEL = "onnxruntime int4 (MatMulNBits, block 32, accuracy_level 0)"


def prepare(ctx) -> dict:
    return prepare_quantized(ctx, "ort-int4-exact", functools.partial(quantize, accuracy_level=0))
