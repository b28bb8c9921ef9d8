"""rnnx with int4 weights: `rnnx quantize --weights int4` of the portable export, compiled for this machine."""
from .rnnx_compiled import THREADS, Runner, prepare_quantized  # noqa: F401

LABEL = "rnnx int4"


def prepare(ctx) -> dict:
    return prepare_quantized(ctx, "int4")
