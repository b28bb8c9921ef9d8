"""Run the example firmware on the target's emulated board (qemu-system-arm with semihosting): tokens or
feature vectors in, outputs (logits, scores or forecast) and instruction counts out.

Instructions are counted with `-icount shift=0`, under which qemu's virtual clock advances exactly 1 ns per
executed instruction; the firmware reads the SysTick timer (clocked from the board's virtual CPU clock)
around each step, and converts ticks to instructions with a calibration loop of known length that it runs
first. The count is exact to one tick (40 instructions at mps2's 25 MHz, 31.25 at mps3-an547's 32 MHz).
"""
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..targets import Target, emulator_install, require
from .build import microcontroller

_EXIT = {2: "could not open its host files", 3: "could not write its host files", 4: "rnnx_model_init failed",
         5: "rnnx_model_step returned NULL: a token outside the vocabulary, or a kernel failed"}
# the host file the firmware reads its inputs from (board/main.c), by numpy kind: int32 tokens, one per step,
# or float32 features, a vector per step
_INPUT_FILES = {"i": ("tokens.bin", "<i4"), "u": ("tokens.bin", "<i4"), "f": ("features.bin", "<f4")}
_FAULTS = {2: "NMI", 3: "HardFault", 4: "MemManage fault", 5: "BusFault", 6: "UsageFault", 7: "SecureFault"}


def emulator_command(target: Target | str, elf: Path) -> list[str]:
    """The qemu command that runs `elf` on the target's board and counts its instructions."""
    target = microcontroller(target)
    if not target.emulator:
        raise RnnxError(f"target {target.name} has no emulator here: its firmware is built and linked, not run")
    *qemu, kernel = target.emulator
    return [*qemu, "-icount", "shift=0", kernel, str(elf)]


def run_firmware(elf: Path, target: Target | str, inputs, outputs: int,
                 timeout: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run `inputs`, tokens `(n,)` (integers) or features `(n, C)` (floats, as the firmware's model takes
    them), through the firmware `elf`, one step each, from the model's initial state; returns the model's
    outputs `(n, outputs)` float32 and the instructions of each step `(n,)` float64."""
    target = microcontroller(target)
    command = emulator_command(target, elf)
    require(command[0], emulator_install(target.emulator))
    inputs = np.asarray(inputs)
    name, dtype = _INPUT_FILES[inputs.dtype.kind]
    steps = len(inputs)
    with tempfile.TemporaryDirectory(prefix="rnnx-firmware-") as cwd:
        inputs.astype(dtype).tofile(Path(cwd) / name)
        limit = timeout or 60 + 0.5 * steps
        try:
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:  # a limit the caller chose; past the default one, the firmware hangs
            raise (RnnxError if timeout else RuntimeError)(
                f"the {target.name} firmware did not finish {steps} steps in {limit:.0f} s under {command[0]}") from None
        _check_exit(done, target)
        written = np.fromfile(Path(cwd) / "outputs.bin", dtype=np.float32)
        counts = np.fromfile(Path(cwd) / "counts.bin", dtype=np.uint32).astype(np.float64)
    if written.size != steps * outputs or counts.size != steps + 2:
        raise RuntimeError(f"the {target.name} firmware wrote {written.size} outputs and {counts.size - 2} counts "
                           f"for {steps} steps of {outputs} outputs")
    (spin_ticks, spin_instructions), ticks = counts[:2], counts[2:]
    return written.reshape(steps, outputs), ticks * (spin_instructions / spin_ticks)


def _check_exit(done: subprocess.CompletedProcess, target: Target) -> None:
    code = done.returncode
    if code == 0:
        return
    what = _EXIT.get(code) or (f"stopped with a {_FAULTS.get(code - 128, f'exception {code - 128}')}" if code > 128
                               else f"exited with code {code}: {(done.stderr or done.stdout).strip()[-200:]}")
    # the inputs were checked and the firmware is rnnx's own: whatever stops it is a bug
    raise RuntimeError(f"the {target.name} firmware {what} (on {machine(target)})")


def machine(target: Target) -> str:
    """The emulated board's name, e.g. `mps2-an386`."""
    return target.emulator[target.emulator.index("-M") + 1]
