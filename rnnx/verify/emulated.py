"""`rnnx verify ARTIFACT --emulate`: the artifact's own program for its target, run here under the target's
emulator (qemu-user for Linux boards, qemu-system-arm for Cortex-M boards), against PyTorch.

The program starts from the initial state and returns the logits of every token it was fed, so the checks
are streams from the start: steps only, and for VM targets a prefill followed by steps.
"""
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..export.manifest import read_manifest
from ..runtime.artifact import EXPORT_COPY, read_artifact
from ..targets import Target, get_target
from .checks import Check, check_outputs
from .runners import TorchRunner


def run_emulated(artifact: Path, target: Target, tokens: np.ndarray, prefill: int = 0) -> tuple[np.ndarray, dict]:
    """Run the artifact's program for `target` on `tokens` `(n,)` int64 under the target's emulator:
    (logits `(n, V)` float32 — for a prefill of the first `prefill` tokens, their logits —, its report)."""
    target.require_emulator()
    if target.runtime == "vm":
        from ..edge.vm_bundle import run_steps

        return run_steps(artifact, tokens, prefill=prefill)
    if prefill:
        raise RnnxError(f"target {target.name} runs steps only (a static step, no prefill graph)")
    if target.packaging == "c-bundle":
        from ..firmware import run_steps
    else:
        from ..static import run_steps
    return run_steps(artifact, tokens)


def verify_emulated(path: Path, *, prompt: int = 100, steps: int = 32, seed: int = 0) -> tuple[str, list[Check]]:
    """Checks of the emulated program against PyTorch's chunked prefill of the same tokens: `prompt + steps`
    steps from the initial state, and (VM targets) a prefill of `prompt` tokens followed by `steps` steps."""
    manifest = read_artifact(Path(path))
    target = get_target(manifest["target"]["name"])
    export = read_manifest(Path(path) / EXPORT_COPY)
    vocab = export["graphs"]["prefill"]["outputs"][0]["shape"][-1]
    tokens = np.random.default_rng(seed).integers(0, vocab, prompt + steps, dtype=np.int64)
    expected = TorchRunner(export).prefill(tokens[None])[0][0]
    runs = {f"{prompt + steps} steps": 0, **({f"prefill {prompt} + {steps} steps": prompt} if target.runtime == "vm" else {})}
    checks = []
    for name, prefill in runs.items():
        logits, _ = run_emulated(Path(path), target, tokens, prefill)
        checks.append(check_outputs(f"{name} under {target.emulator[0]} vs PyTorch", [logits], [expected]))
    return f"rnnx on {target.name}, emulated", checks
