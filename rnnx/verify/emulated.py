"""`rnnx verify ARTIFACT --emulate`: the artifact's own program for its target, run here under the target's
emulator (qemu-user for Linux boards, qemu-system-arm for Cortex-M boards), against PyTorch (and an
imported checkpoint's against its own framework too).

The program starts from the initial state and returns the logits of every token it was fed, so the checks
are streams from the start: steps only, and for VM targets a prefill followed by steps.
"""
from pathlib import Path
from typing import Callable

import numpy as np

from ..export.manifest import read_manifest
from ..packaging import packager_for, run_program
from ..runtime.artifact import EXPORT_COPY, read_artifact
from ..runtime.checks import random_inputs
from ..targets import get_target
from .checks import Check, check_outputs
from .source import source_runner


def verify_emulated(path: Path, *, prompt: int = 100, steps: int = 32, seed: int = 0,
                    on_note: Callable[[str], None] = lambda note: None) -> tuple[str, list[Check]]:
    """Checks of the emulated program against PyTorch's chunked prefill of the same tokens (and the source
    framework's, for a checkpoint's export): `prompt + steps` steps from the initial state, and where the
    packaging runs a prefill, a prefill of `prompt` tokens followed by `steps` steps."""
    manifest = read_artifact(Path(path), check_files=False)  # run_program checks the hashes
    target = get_target(manifest.target.name)
    emulator = " ".join(target.require_emulator()[:1])
    export = read_manifest(Path(path) / EXPORT_COPY)
    tokens = random_inputs(export.signature, 1, prompt + steps, np.random.default_rng(seed))[0]
    from . import parity_reference, parity_tolerance

    reference = parity_reference(Path(path) / EXPORT_COPY, export)
    expected = {reference.name: reference.prefill(tokens[None])[0][0]}
    source = source_runner(export, on_note) if export.quantization is None else None
    if source is not None:
        expected[source.name] = source.prefill(tokens[None])[0][0]
        source.close()
    runs = {f"{prompt + steps} steps": 0,
            **({f"prefill {prompt} + {steps} steps": prompt} if packager_for(target).runs_prefill else {})}
    checks = []
    for name, prefill in runs.items():
        logits, _ = run_program(Path(path), tokens, prefill)
        checks += [check_outputs(f"{name} under {emulator} vs {reference}", [logits], [logits_of],
                                 parity_tolerance(export)) for reference, logits_of in expected.items()]
    return f"rnnx on {target.name}, emulated", checks


class EmulatedRunner:
    """The artifact's own program under its target's emulator, behind the runner interface of
    `rnnx.verify.runners`, from the initial state only: every call is one run of the program (a prefill where
    its packaging has one, else steps)."""

    def __init__(self, path: Path):
        manifest = read_artifact(Path(path), check_files=False)
        target = get_target(manifest.target.name)
        self.path, self.runs_prefill = Path(path), packager_for(target).runs_prefill
        self.name = f"rnnx on {target.name}, emulated"

    def prefill(self, inputs, state=None):
        if state is not None:
            raise ValueError("an emulated program runs from the initial state only")
        outputs, _ = run_program(self.path, inputs, inputs.shape[1] if self.runs_prefill else 0)
        return outputs[None] if outputs.ndim == 2 else outputs, None
