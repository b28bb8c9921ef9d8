"""The two manifests rnnx writes, each one typed definition with a format version: `ExportManifest`
(`manifest.json` of an export) and `ArtifactManifest` (`artifact.json` of a compiled artifact).

Reading one (`read(directory, cls)`) checks, before anything is loaded: its format, every field's presence
and type (a problem names the field, e.g. `state[2].shape`), that every file it lists lies inside the
directory and matches its sha256, and that its parts agree (state sizes against the graphs' inputs, every
library listed with its hash). Only json, hashlib and numpy: the runtime on a board reads them too.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np

from .errors import RnnxError
from .fileio import sha256
from .weights import Quantization, Weight


@dataclass(frozen=True)
class StateSpec:
    """One tensor of the model's recurrent state: graph input `past`, output `present`; `owner` is the rnnx op
    whose node carries it, or "model" for state the model's own code keeps (a conv buffer, a position)."""
    name: str
    past: str
    present: str
    shape: list[int]
    dtype: str
    bytes: int
    owner: str


@dataclass(frozen=True)
class Value:
    name: str
    dtype: str
    shape: list[int | str]  # a symbolic dimension by name


@dataclass(frozen=True)
class Signature:
    """What the model is fed per step and what it gives back. `input`: "tokens" (int64 ids in
    `[0, input_size)`) or "features" (float32 vectors of `input_size` channels, a sensor sample). `output`:
    "logits" (the next token's), "scores" (one per class of `labels`, after every step) or "forecast" (the
    next values, `output_size` of them). The graphs' first input and output are named after them."""
    input: str
    input_size: int
    output: str
    output_size: int
    labels: list[str] | None = None

    INPUTS: ClassVar[dict[str, str]] = {"tokens": "int64", "features": "float32"}
    OUTPUTS: ClassVar[tuple[str, ...]] = ("logits", "scores", "forecast")

    @property
    def dtype(self) -> str:
        return self.INPUTS[self.input]

    def input_shape(self, batch: int, length) -> list:
        """The graphs' input: `(B, T)` tokens or `(B, T, C)` features."""
        return [batch, length] + ([self.input_size] if self.input == "features" else [])

    def problems(self) -> list[str]:
        found = [f"signature.input is {self.input!r}, not one of {', '.join(self.INPUTS)}"] \
            if self.input not in self.INPUTS else []
        found += [f"signature.output is {self.output!r}, not one of {', '.join(self.OUTPUTS)}"] \
            if self.output not in self.OUTPUTS else []
        found += [f"signature.{f} is {getattr(self, f)}, not a positive size" for f in ("input_size", "output_size")
                  if getattr(self, f) < 1]
        if self.labels is not None and len(self.labels) != self.output_size:
            found.append(f"signature.labels names {len(self.labels)} classes, but output_size is {self.output_size}")
        return found


@dataclass(frozen=True)
class Graph:
    file: str
    inputs: list[Value]
    outputs: list[Value]


@dataclass(frozen=True)
class Source:
    source: str                 # a built-in config name or path/to/file.py:factory
    seed: int
    config: dict | None = None  # a built-in model's config


@dataclass(frozen=True)
class OpUse:
    name: str
    domain: str
    version: int
    spelling: str


class _Manifest:
    """What `read` needs of a manifest class: its file name, its format tag, and what the directory is."""
    FILE: ClassVar[str]
    FORMAT: ClassVar[str]
    WHAT: ClassVar[str]

    def __init_subclass__(cls, file: str, format: str, what: str):
        cls.FILE, cls.FORMAT, cls.WHAT = file, format, what


@dataclass(frozen=True)
class ExportManifest(_Manifest, file="manifest.json", format="rnnx-export/3", what="export"):
    """An export directory: the prefill and step graphs, the whole state, the ops and how they are spelled."""
    rnnx_version: str
    model: Source
    signature: Signature
    flavor: str
    batch_size: int
    opset_import: dict[str, int]
    ops: list[OpUse]
    graphs: dict[str, Graph]
    state: list[StateSpec]
    state_bytes: int
    files: dict[str, str]
    tokenizer: str | None = None  # the model's tokenizer.json (Hugging Face tokenizers), if it has one
    weights: list[Weight] | None = None  # what `rnnx quantize` reads (None: exported before rnnx recorded it)
    quantization: Quantization | None = None  # how the weights were quantized (None: as exported, fp32)

    def problems(self) -> list[str]:
        found = self.signature.problems()
        for i, w in enumerate(self.weights or []):
            found += w.problems(f"weights[{i}]")
            found += [f"weights[{i}].initializers names graph {kind!r}, which graphs lacks"
                      for kind in w.initializers if kind not in self.graphs]
        found += self.quantization.problems() if self.quantization is not None else []
        found += [f"graphs has no {kind!r} graph" for kind in ("prefill", "step") if kind not in self.graphs]
        found += [f"graphs.{kind}.file {g.file} is not listed in files" for kind, g in self.graphs.items()
                  if g.file not in self.files]
        if self.tokenizer is not None and self.tokenizer not in self.files:
            found.append(f"tokenizer {self.tokenizer} is not listed in files")
        if found:
            return found
        sig = self.signature
        for kind, graph in self.graphs.items():
            first, out = graph.inputs[0] if graph.inputs else None, graph.outputs[0] if graph.outputs else None
            shape = sig.input_shape(self.batch_size, 1 if kind == "step" else "T")
            if first is None or (first.name, first.dtype, first.shape) != (sig.input, sig.dtype, shape):
                found.append(f"graphs.{kind}'s first input is {_described(first)}, but the signature says "
                             f"{sig.input}: {sig.dtype}{shape}")
            if out is None or (out.name, out.shape[-1]) != (sig.output, sig.output_size):
                found.append(f"graphs.{kind}'s first output is {_described(out)}, but the signature says "
                             f"{sig.output} of {sig.output_size}")
        if found:
            return found
        step = self.graphs["step"]
        inputs, outputs = ({v.name: v for v in values} for values in (step.inputs, step.outputs))
        for i, s in enumerate(self.state):
            size = math.prod(s.shape) * np.dtype(s.dtype).itemsize
            if s.bytes != size:
                found.append(f"state[{i}].bytes is {s.bytes}, but {s.dtype}{s.shape} takes {size}")
            for io, name, values in (("input", s.past, inputs), ("output", s.present, outputs)):
                v = values.get(name)
                if v is None or (v.dtype, v.shape) != (s.dtype, s.shape):
                    got = "none" if v is None else f"{v.dtype}{v.shape}"
                    found.append(f"state[{i}] ({s.name}) is {s.dtype}{s.shape}, but the step graph's {io} {name} "
                                 f"is {got}")
        if self.state_bytes != sum(s.bytes for s in self.state):
            found.append(f"state_bytes is {self.state_bytes}, but the state tensors take "
                         f"{sum(s.bytes for s in self.state)}")
        return found


def _described(value: Value | None) -> str:
    return "none" if value is None else f"{value.name}: {value.dtype}{value.shape}"


@dataclass(frozen=True)
class TargetInfo:
    name: str
    tvm: dict       # the TVM target as compiled for (host: this machine's CPU then)
    arch: str
    cpu_flags: list[str]


@dataclass(frozen=True)
class StaticInfo:
    """The sizes a static step fixes at compile time, in bytes, and where its parts are."""
    arena_bytes: int
    weight_bytes: int
    const_bytes: int
    state_bytes: int
    scratch_pool_bytes: int
    kernel_code_bytes: int
    kernels: int
    bundle: str
    runner: str | None  # a Linux target's bin/rnnx-run; None on bare metal


@dataclass(frozen=True)
class ArtifactManifest(_Manifest, file="artifact.json", format="rnnx-artifact/3", what="artifact"):
    """A compiled artifact: the target it was compiled for and how it is packaged (`rnnx.packaging`), what
    the packager built, and the export it came from."""
    rnnx_version: str
    tvm_version: str
    target: TargetInfo
    packaging: str
    compiled_on: str
    export: ExportManifest      # the manifest of the export it was compiled from (copied to export/)
    libraries: dict[str, str]   # graph kind -> its compiled library (VM packagings)
    files: dict[str, str]
    link: dict[str, str] = field(default_factory=dict)  # graph kind -> the command that still links it
    static: StaticInfo | None = None
    tokenizer: str | None = None  # the export's tokenizer file, in the artifact's copy of the export

    @property
    def state(self) -> list[StateSpec]:
        return self.export.state

    @property
    def batch_size(self) -> int:
        return self.export.batch_size

    @property
    def signature(self) -> Signature:
        return self.export.signature

    def problems(self) -> list[str]:
        listed = [(f"libraries.{kind}", f) for kind, f in self.libraries.items()]
        if self.static is not None:
            listed += [("static.runner", self.static.runner)] if self.static.runner else []
        listed += [("tokenizer", self.tokenizer)] if self.tokenizer is not None else []
        return [f"export.{p}" for p in self.export.problems()] + \
            [f"{what} {f} is not listed with its sha256 in files" for what, f in listed if f not in self.files]


Manifest = ExportManifest | ArtifactManifest


def to_json(manifest: Manifest) -> str:
    return json.dumps({"format": manifest.FORMAT, **dataclasses.asdict(manifest)}, indent=2) + "\n"


def write(directory: Path, manifest: Manifest) -> Manifest:
    (Path(directory) / manifest.FILE).write_text(to_json(manifest))
    return manifest


def hashes(directory: Path, names) -> dict[str, str]:
    """The `files` entry of a manifest: each file of `directory` named in `names` -> its sha256."""
    return {name: sha256(Path(directory) / name) for name in sorted(names)}


def read(directory: Path, cls: type[Manifest], *, check_files: bool = True) -> Manifest:
    """The manifest `cls.FILE` of the rnnx output `directory`, validated as the module docstring says."""
    directory = Path(directory)
    path = directory / cls.FILE
    if directory.is_file():
        raise RnnxError(f"{directory} is a file; give the directory rnnx wrote")
    if not path.is_file():
        raise RnnxError(f"{directory} is not an rnnx {cls.WHAT}: it has no {cls.FILE}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RnnxError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or data.get("format") != cls.FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise RnnxError(f"{path} is not an rnnx {cls.WHAT} manifest of format {cls.FORMAT}"
                        + (f" (it is {found}: rebuild it with this rnnx)" if isinstance(found, str) else ""))
    manifest = decode(cls, data, path)
    problems = manifest.problems()
    if problems:
        raise RnnxError(f"{path}: {problems[0]}")
    for name, digest in manifest.files.items():
        file = directory / name
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise RnnxError(f"{path}: files lists {name}, which is outside the {cls.WHAT}")
        if not file.is_file():
            raise RnnxError(f"{file} is listed in {cls.FILE} but missing")
        if check_files and sha256(file) != digest:
            raise RnnxError(f"{file} does not match its sha256 in {cls.FILE}: the file was changed or corrupted")
    return manifest


def decode(tp, value: Any, path: Path, where: str = ""):
    """`value` (parsed JSON) as type `tp` (a dataclass above, or a list, dict, union or scalar of them)."""
    def wrong(expected: str):
        return RnnxError(f"{path}: field {where or '<root>'} must be {expected}, got {json.dumps(value)[:60]}")

    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise wrong("an object")
        hints = typing.get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            at = f"{where}.{f.name}" if where else f.name
            if f.name in value:
                kwargs[f.name] = decode(hints[f.name], value[f.name], path, at)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RnnxError(f"{path}: field {at} is missing")
        return tp(**kwargs)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: X's own message says what is wrong inside it
            return decode(options[0], value, path, where)
        for option in options:
            try:
                return decode(option, value, path, where)
            except RnnxError:
                continue
        raise wrong(" or ".join(_name(a) for a in args))
    if origin is list:
        if not isinstance(value, list):
            raise wrong(f"a list of {_name(args[0])}")
        return [decode(args[0], v, path, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise wrong("an object")
        return value if not args else {k: decode(args[1], v, path, f"{where}.{k}") for k, v in value.items()}
    if tp is type(None):
        if value is not None:
            raise wrong("null")
        return None
    if tp is Any:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise wrong(_name(tp))
    return value


def _name(tp) -> str:
    return {int: "an integer", str: "a string", float: "a number", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))
