"""`manifest.json`: what an export directory holds, enough to run and check it without reading the graphs."""
import json
from pathlib import Path

import onnx

from ..fileio import read_checked_manifest, sha256

MANIFEST, FORMAT = "manifest.json", "rnnx-export/1"
_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


def describe_values(values) -> list[dict]:
    """Graph inputs or outputs as `{name, dtype, shape}`, symbolic dimensions by name."""
    return [{"name": v.name, "dtype": _DTYPES.get(v.type.tensor_type.elem_type, "other"),
             "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]


def write_manifest(directory: Path, content: dict) -> dict:
    """Add the sha256 of every file in `directory` to `content` and write it as the manifest."""
    files = sorted(p.name for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    content = {"format": FORMAT, **content, "files": {name: sha256(directory / name) for name in files}}
    (directory / MANIFEST).write_text(json.dumps(content, indent=2) + "\n")
    return content


def read_manifest(directory: Path) -> dict:
    """The manifest of an export directory, after checking that every file it lists is intact."""
    return read_checked_manifest(directory, MANIFEST, FORMAT, "export")
