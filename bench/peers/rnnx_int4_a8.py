"""rnnx with int4 weights and int8 activations: `rnnx quantize --weights int4 --activations int8` of the portable
export, compiled for this machine (integer dot products where it has AVX-512 VNNI)."""
from .rnnx_compiled import THREADS, Runner, prepare_quantized  # noqa: F401

LABEL = "rnnx int4, int8 activations"


def prepare(ctx) -> dict:
    return prepare_quantized(ctx, "int4", activations="int8")
