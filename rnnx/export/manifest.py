"""`manifest.json` of an export directory (`rnnx.manifest.ExportManifest`): what it holds, enough to run
and check it without reading the graphs."""
from pathlib import Path

import onnx

from ..manifest import ExportManifest, Value, read

_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


def describe_values(values) -> list[Value]:
    """Graph inputs or outputs, symbolic dimensions by name."""
    return [Value(v.name, _DTYPES.get(v.type.tensor_type.elem_type, "other"),
                  [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]) for v in values]


def read_manifest(directory: Path) -> ExportManifest:
    """The manifest of an export directory, validated, after checking that every file it lists is intact."""
    return read(directory, ExportManifest)
