"""A Hugging Face checkpoint directory: `config.json`, `*.safetensors` (one file, or shards listed by
`model.safetensors.index.json`) and optionally `tokenizer.json`. Read without running any of its code:
no `auto_map`, no pickle (`.bin` weights are refused), only the JSON and safetensors parsers. `save_checkpoint`
writes one from a model rnnx built (what the examples train)."""
import dataclasses
import json
import types
import typing
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

import torch
from torch import nn

from ..errors import RnnxError
from ..fileio import atomic_directory

CONFIG, INDEX, TOKENIZER = "config.json", "model.safetensors.index.json", "tokenizer.json"


@dataclass(frozen=True)
class Checkpoint:
    directory: Path
    config: dict          # config.json as parsed
    weights: list[Path]   # the safetensors files
    tokenizer: Path | None

    @property
    def model_type(self) -> str:
        return self.config["model_type"]


def is_checkpoint(path) -> bool:
    return Path(path).is_dir() and (Path(path) / CONFIG).is_file()


def read_checkpoint(directory) -> Checkpoint:
    directory = Path(directory)
    config = _read_json(directory / CONFIG)
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise RnnxError(f"{directory / CONFIG}: field 'model_type' must be a string naming the architecture")
    if (directory / INDEX).is_file():
        weight_map = _read_json(directory / INDEX).get("weight_map")
        if not isinstance(weight_map, dict):
            raise RnnxError(f"{directory / INDEX}: field 'weight_map' must map tensor names to files")
        weights = [directory / name for name in sorted(set(weight_map.values()))]
        missing = [w.name for w in weights if not w.is_file()]
        if missing:
            raise RnnxError(f"{directory / INDEX} lists {missing[0]}, which is not in {directory}")
    else:
        weights = sorted(directory.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in directory.glob("*.bin"))
        raise RnnxError(f"{directory} has no *.safetensors weights" + (
            f" ({pickled[0]} is a pickle, which rnnx never loads: convert it to safetensors)" if pickled else ""))
    tokenizer = directory / TOKENIZER
    return Checkpoint(directory, config, weights, tokenizer if tokenizer.is_file() else None)


def read_tensors(checkpoint: Checkpoint) -> dict[str, tuple[torch.Tensor, Path]]:
    """Every tensor of the checkpoint by name, with the file it came from."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    tensors = {}
    for path in checkpoint.weights:
        try:
            tensors.update((name, (t, path)) for name, t in load_file(path).items())
        except (SafetensorError, OSError) as e:
            raise RnnxError(f"{path}: not a readable safetensors file ({e})") from None
    return tensors


def load_weights(model: nn.Module, checkpoint: Checkpoint, prefix: str = "") -> None:
    """Copy the checkpoint's tensors into `model`, whose parameter names are the source's (after `prefix`).

    A module with `parts` (pairs of source sub-module name and size along dim 0) holds the source's modules
    of those names fused into one: its parameters are theirs concatenated (q, k, v projections as one
    matrix). A tensor missing, left over, or of another shape is one line naming it. A tied parameter (the
    LM head sharing the embedding) is read under any of its names: checkpoints store it once or twice."""
    tensors = read_tensors(checkpoint)
    names = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(param, []).append(name)
    used = set()
    for param, aliases in names.items():
        candidates = [_source_names(model, a, prefix) for a in aliases]
        sources = next((c for c in candidates if all(s in tensors for s in c)), None)
        if sources is None:
            missing = next(s for s in candidates[0] if s not in tensors)
            raise RnnxError(f"{checkpoint.directory}: tensor {missing!r} is missing (rnnx's "
                            f"{checkpoint.model_type} needs it)")
        module = model.get_submodule(aliases[0].rpartition(".")[0])
        sizes = [size for _, size in getattr(module, "parts", ())] or [param.shape[0]]
        for source, size in zip(sources, sizes, strict=True):
            t, path = tensors[source]
            if tuple(t.shape) != (size, *param.shape[1:]):
                raise RnnxError(f"{path.name}: tensor {source!r} has shape {tuple(t.shape)}; config.json's "
                                f"{checkpoint.model_type} needs {(size, *param.shape[1:])}")
        with torch.no_grad():
            param.copy_(torch.cat([tensors[s][0] for s in sources]).to(param.dtype))
        used.update(s for c in candidates for s in c)  # a tied copy stored twice is not left over
    left = sorted(set(tensors) - used)
    if left:
        raise RnnxError(f"{tensors[left[0]][1].name}: unexpected tensor {left[0]!r} (not part of config.json's "
                        f"{checkpoint.model_type}: a different architecture or configuration?)")


def save_checkpoint(model: nn.Module, config, directory) -> Path:
    """Write `model` (built by its family from `config`, the family's config dataclass) as a checkpoint directory,
    atomically: `config.json` (the dataclass's fields and `model_type`) and `model.safetensors` under the source's
    tensor names. The exact inverse of `load_weights`: a module with `parts` is split back into its source
    tensors by the part sizes, a tied parameter is written once (under its first name). Returns `directory`."""
    from safetensors.torch import save_file

    from . import families  # noqa: F401  (each family registers itself)
    from .family import FAMILIES

    model_type = next((f.model_type for f in FAMILIES.values() if f.config is type(config)), None)
    if model_type is None:
        raise RnnxError(f"{type(config).__name__} is not the config of a family rnnx imports "
                        f"({', '.join(sorted(FAMILIES))})")
    tensors = {}
    for name, param in model.named_parameters():  # a tied parameter comes once, under its first name
        module = model.get_submodule(name.rpartition(".")[0])
        sizes = [size for _, size in getattr(module, "parts", ())] or [param.shape[0]]
        for source, t in zip(_source_names(model, name, ""), param.detach().split(sizes), strict=True):
            tensors[source] = t.clone()  # safetensors refuses tensors that share storage, as split's views do
    with atomic_directory(Path(directory), CONFIG) as tmp:
        (tmp / CONFIG).write_text(json.dumps(dataclasses.asdict(config) | {"model_type": model_type}, indent=2) + "\n")
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
    return Path(directory)


def _source_names(model: nn.Module, name: str, prefix: str) -> list[str]:
    """The source tensors a parameter is made of: its own name, or its fused module's parts'."""
    module_name, _, leaf = name.rpartition(".")
    parts = getattr(model.get_submodule(module_name), "parts", None)
    if parts is None:
        return [prefix + name]
    parent = module_name.rpartition(".")[0]
    return [f"{prefix}{parent + '.' if parent else ''}{part}.{leaf}" for part, _ in parts]


def _special_float(obj: dict):
    """transformers (5.x) writes inf and NaN as `{"__float__": "Infinity"}` (older versions and the JSON module
    as a bare `Infinity`, which `json` reads): read both as the float."""
    if obj.keys() == {"__float__"} and obj["__float__"] in ("Infinity", "-Infinity", "NaN"):
        return float(obj["__float__"])
    return obj


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(), object_hook=_special_float)
    except FileNotFoundError:
        raise RnnxError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise RnnxError(f"{path}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RnnxError(f"cannot read {path}: {e}") from None


def read_config(cls, checkpoint: Checkpoint):
    """The family's config dataclass from config.json: each field from the key of its name (its default when
    absent), type-checked; keys the dataclass does not name are ignored (HF configs carry many)."""
    values = {}
    for f in fields(cls):
        if f.name not in checkpoint.config:
            if f.default is MISSING and f.default_factory is MISSING:
                raise RnnxError(f"{checkpoint.directory / CONFIG}: field {f.name!r} is missing")
            continue
        value = checkpoint.config[f.name]
        if not _is_instance(value, f.type):
            raise RnnxError(f"{checkpoint.directory / CONFIG}: field {f.name!r} must be {_type_name(f.type)}, "
                            f"got {type(value).__name__} {value!r}")
        values[f.name] = float(value) if f.type is float else value
    return cls(**values)


def _is_instance(value, annotation) -> bool:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_is_instance(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if typing.get_origin(annotation) is list:
        return isinstance(value, list) and all(_is_instance(v, typing.get_args(annotation)[0]) for v in value)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _type_name(annotation) -> str:
    if isinstance(annotation, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        return f"a list of {_type_name(typing.get_args(annotation)[0]).removeprefix('a ').removeprefix('an ')}s"
    return {type(None): "null", int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def refuse(cfg, **supported):
    """One line for the first field whose value rnnx does not import (hybrid attention layers, ...)."""
    for name, value in supported.items():
        if getattr(cfg, name) != value:
            raise RnnxError(f"config.json: field {name!r} = {getattr(cfg, name)!r} is not supported by rnnx's "
                            f"import of {type(cfg).__name__.removesuffix('Config')} (it supports {value!r})")
