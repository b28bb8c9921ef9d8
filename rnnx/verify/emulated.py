"""`rnnx verify ARTIFACT --emulate`: the artifact's own program for its target, run here under the target's
emulator (qemu-user for Linux boards, qemu-system-arm for Cortex-M boards), against PyTorch.

The program starts from the initial state and returns the logits of every token it was fed, so the checks
are streams from the start: steps only, and for VM targets a prefill followed by steps.
"""
from pathlib import Path

import numpy as np

from ..export.manifest import read_manifest
from ..packaging import packager_for, run_program
from ..runtime.artifact import EXPORT_COPY, read_artifact
from ..targets import get_target
from .checks import Check, check_outputs
from .runners import TorchRunner


def verify_emulated(path: Path, *, prompt: int = 100, steps: int = 32, seed: int = 0) -> tuple[str, list[Check]]:
    """Checks of the emulated program against PyTorch's chunked prefill of the same tokens: `prompt + steps`
    steps from the initial state, and where the packaging runs a prefill, a prefill of `prompt` tokens
    followed by `steps` steps."""
    manifest = read_artifact(Path(path), check_files=False)  # run_program checks the hashes
    target = get_target(manifest.target.name)
    emulator = " ".join(target.require_emulator()[:1])
    export = read_manifest(Path(path) / EXPORT_COPY)
    tokens = np.random.default_rng(seed).integers(0, export.vocab, prompt + steps, dtype=np.int64)
    expected = TorchRunner(export).prefill(tokens[None])[0][0]
    runs = {f"{prompt + steps} steps": 0,
            **({f"prefill {prompt} + {steps} steps": prompt} if packager_for(target).runs_prefill else {})}
    checks = []
    for name, prefill in runs.items():
        logits, _ = run_program(Path(path), tokens, prefill)
        checks.append(check_outputs(f"{name} under {emulator} vs PyTorch", [logits], [expected]))
    return f"rnnx on {target.name}, emulated", checks
