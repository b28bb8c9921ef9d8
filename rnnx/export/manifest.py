"""`manifest.json`: what an export directory holds, enough to run and check it without reading the graphs."""
import json
from pathlib import Path

import onnx

from ..errors import RnnxError
from ..fileio import sha256

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
    directory = Path(directory)
    if directory.is_file():
        raise RnnxError(f"{directory} is a file; give the directory `rnnx export` wrote")
    if not (directory / MANIFEST).is_file():
        raise RnnxError(f"{directory} is not an rnnx export: it has no {MANIFEST}")
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except json.JSONDecodeError as e:
        raise RnnxError(f"{directory / MANIFEST} is not valid JSON: {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RnnxError(f"{directory / MANIFEST} is not an rnnx export manifest (format {FORMAT})")
    for name, digest in manifest["files"].items():
        if not (directory / name).is_file():
            raise RnnxError(f"{directory / name} is listed in the manifest but missing")
        if sha256(directory / name) != digest:
            raise RnnxError(f"{directory / name} does not match its sha256 in the manifest: the file was changed or corrupted")
    return manifest
