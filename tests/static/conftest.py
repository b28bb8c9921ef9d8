"""Exports and static builds shared by the static runtime's tests, made once per session (exporting and
compiling are the slow parts)."""
import dataclasses

import numpy as np
import pytest
import torch

from rnnx.models import build_model
from rnnx.static import compile_static
from rnnx.targets import TARGETS

# this machine's CPU through the static runtime: the fast local check of the C path against the VM
HOST_STATIC = dataclasses.replace(TARGETS["host"], runtime="static")


def static_target(name: str):
    return HOST_STATIC if name == "host" else TARGETS[name]


def tokens(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n)


def pytorch_logits(config: str, tokens: np.ndarray) -> torch.Tensor:
    """fp64 logits `(n, vocab)` of the model's forward pass over `tokens` from its initial state."""
    with torch.no_grad():
        return build_model(config).double()(torch.from_numpy(tokens)[None])[0][0]


@pytest.fixture(scope="session")
def static_builds(exports, tmp_path_factory):
    """(directory, what compile_static returned) for a config and a target name ("host": HOST_STATIC)."""
    made = {}

    def get(config, target):
        if (config, target) not in made:
            out = tmp_path_factory.mktemp(f"{config}-{target}")
            made[config, target] = out, compile_static(exports(config), static_target(target), out)
        return made[config, target]
    return get
