"""ONNX -> TVM: import with rnnx's converters, CPU schedules, build, and package an artifact."""
from .build import compile_export

__all__ = ["compile_export"]
