"""PyTorch -> ONNX: rnnx ops as `ai.rnnx` custom operators with model-local functions, prefill and step graphs."""
from .exporter import export_model
from .flavors import FLAVORS
from .manifest import read_manifest

__all__ = ["export_model", "read_manifest", "FLAVORS"]
