"""Running a target's `bin/rnnx-run`, here or under its emulator. Both runners speak one protocol (the VM
one, `native/runner.cc`, and the static one, `rnnx/static/runtime/rnnx_run.c`): the inputs in one file (int64
tokens or float32 feature vectors, little-endian, in their own shape), float32 outputs (logits, scores or a
forecast) in another, and one JSON line of figures on stdout. Each runner knows the kind of input from the
artifact it runs (the VM bundle's `input.txt`, the static bundle's `rnnx_model.h`)."""
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..targets import emulator_install, require

RUNNER = "bin/rnnx-run"  # in every artifact that has a runner, VM or static
_FILE_DTYPES = {"i": "<i8", "u": "<i8", "f": "<f4"}  # by numpy kind: tokens, features


def run_program(runner: Path, inputs, emulator: tuple[str, ...] = (), args: list[str] = ()) -> tuple[np.ndarray, dict]:
    """Run `runner INPUTS OUTPUTS *args` on `inputs` (integers are written as int64 tokens, floats as float32
    features), under `emulator` (an argv prefix) if given. Returns the outputs it wrote, flat float32 (the
    runner's layout), and its report."""
    if emulator:
        require(emulator[0], emulator_install(emulator))
    inputs = np.asarray(inputs)
    if inputs.dtype.kind not in _FILE_DTYPES:
        raise TypeError(f"a runner takes integer tokens or float features, not {inputs.dtype}")
    with tempfile.TemporaryDirectory(prefix="rnnx-run.") as tmp:
        inputs_path, outputs_path = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        inputs.astype(_FILE_DTYPES[inputs.dtype.kind]).tofile(inputs_path)
        done = subprocess.run([*emulator, str(runner), str(inputs_path), str(outputs_path), *args],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RnnxError(f"{runner} failed (exit code {done.returncode}): {done.stderr.strip()[-500:]}")
        return np.fromfile(outputs_path, "<f4"), json.loads(done.stdout.splitlines()[-1])
