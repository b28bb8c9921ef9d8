"""Model families rnnx imports from checkpoints: one `Family` per `model_type`, declared by its own folder in
`rnnx.models.families` (as MLC-LLM's `model/<arch>/`: its config, its layers, its state map)."""
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from ..errors import RnnxError
from .checkpoint import Checkpoint, load_weights, read_checkpoint, read_config


@dataclass(frozen=True)
class Family:
    """model_type: config.json's. config: a frozen dataclass whose fields are config.json keys (read and typed
    by `read_config`; its `__post_init__` refuses what rnnx does not import). model: `model(config)` builds the
    rnnx model, an `nn.Module` whose parameter names are the checkpoint's tensor names (see `load_weights`),
    with `initial_state(batch_size)` and `forward(tokens, state, mode)`. framework: the Python package that
    defines model_type ("fla" or "transformers"), for parity against the source; None for rnnx's own models,
    whose source is rnnx's PyTorch model itself. source_state(cache, config):
    that framework's cache after a forward, as the rnnx model's state (same structure and layout).
    source_options: keyword arguments of the framework's `from_pretrained` (fla's recurrent kernels on CPU)."""

    model_type: str
    config: type
    model: Callable[[Any], nn.Module]
    framework: str | None
    source_state: Callable[[Any, Any], list] | None
    source_options: dict | None = None


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.model_type in FAMILIES:
        raise ValueError(f"model_type {family.model_type!r} is already registered")
    FAMILIES[family.model_type] = family
    return family


def family_of(checkpoint: Checkpoint) -> Family:
    from . import families  # noqa: F401  (each family registers itself)

    if checkpoint.model_type not in FAMILIES:
        raise RnnxError(f"{checkpoint.directory / 'config.json'}: model_type {checkpoint.model_type!r} is not a family "
                        f"rnnx imports; it imports {', '.join(sorted(FAMILIES))}")
    return FAMILIES[checkpoint.model_type]


def import_checkpoint(directory) -> nn.Module:
    """The rnnx model of a checkpoint directory, with its weights, in eval mode; `model.cfg` is its config."""
    checkpoint = read_checkpoint(directory)
    family = family_of(checkpoint)
    model = family.model(read_config(family.config, checkpoint))
    load_weights(model, checkpoint)
    return model.eval()
