"""Running a target's `bin/rnnx-run`, here or under its emulator. Both runners speak one protocol (the VM
one, `native/runner.cc`, and the static one, `rnnx/static/runtime/rnnx_run.c`): int64 tokens in one file,
float32 logits out in another, and one JSON line of figures on stdout."""
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..targets import emulator_install, require

RUNNER = "bin/rnnx-run"  # in every artifact that has a runner, VM or static


def run_program(runner: Path, tokens: np.ndarray, emulator: tuple[str, ...] = (),
                args: list[str] = ()) -> tuple[np.ndarray, dict]:
    """Run `runner TOKENS LOGITS *args` on `tokens` (written as little-endian int64 in their own shape),
    under `emulator` (an argv prefix) if given. Returns the logits it wrote, flat float32 (the runner's
    layout), and its report."""
    if emulator:
        require(emulator[0], emulator_install(emulator))
    with tempfile.TemporaryDirectory(prefix="rnnx-run.") as tmp:
        tokens_path, logits_path = Path(tmp) / "tokens.bin", Path(tmp) / "logits.bin"
        np.asarray(tokens, "<i8").tofile(tokens_path)
        done = subprocess.run([*emulator, str(runner), str(tokens_path), str(logits_path), *args],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RnnxError(f"{runner} failed (exit code {done.returncode}): {done.stderr.strip()[-500:]}")
        return np.fromfile(logits_path, "<f4"), json.loads(done.stdout.splitlines()[-1])
