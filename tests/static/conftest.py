"""Exports and static builds shared by the static runtime's tests, made once per session (exporting and
compiling are the slow parts)."""
import dataclasses

import numpy as np
import pytest
import torch

from rnnx.export import read_manifest
from rnnx.models import build_model
from rnnx.packaging import packager_for, write_initial_state
from rnnx.runtime.artifact import INITIAL_STATE
from rnnx.targets import TARGETS

# this machine's CPU through the static runtime: the fast local check of the C path against the VM
HOST_STATIC = dataclasses.replace(TARGETS["host"], packaging="runner")


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
    """(directory, the artifact's "static" entry as a dict) of the static runner's build for a config and a
    target name ("host": HOST_STATIC)."""
    made = {}

    def get(config, target):
        if (config, target) not in made:
            out, static = tmp_path_factory.mktemp(f"{config}-{target}"), static_target(target)
            export = read_manifest(exports(config))
            write_initial_state(exports(config), export, out / INITIAL_STATE)
            built = packager_for(static).build(static, exports(config), export, out)
            made[config, target] = out, dataclasses.asdict(built.static)
        return made[config, target]
    return get
