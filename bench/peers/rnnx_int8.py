"""rnnx with int8 weights: `rnnx quantize --weights int8` of the portable export, compiled for this machine."""
from .rnnx_compiled import THREADS, Runner, prepare_quantized  # noqa: F401

LABEL = "rnnx int8"


def prepare(ctx) -> dict:
    return prepare_quantized(ctx, "int8")
