"""ONNX -> TVM: import with rnnx's converters (`import_onnx`) and the CPU pipeline with rnnx's schedules
(`pipeline`). Packaging what they build into an artifact is `rnnx.packaging`'s."""
from .importer import import_onnx
from .pipeline import pipeline

__all__ = ["import_onnx", "pipeline"]
