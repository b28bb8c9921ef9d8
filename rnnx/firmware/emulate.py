"""Run the example firmware on the target's emulated board (qemu-system-arm with semihosting): tokens in,
logits and instruction counts out.

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
_FAULTS = {2: "NMI", 3: "HardFault", 4: "MemManage fault", 5: "BusFault", 6: "UsageFault", 7: "SecureFault"}


def emulator_command(target: Target | str, elf: Path) -> list[str]:
    """The qemu command that runs `elf` on the target's board and counts its instructions."""
    target = microcontroller(target)
    if not target.emulator:
        raise RnnxError(f"target {target.name} has no emulator here: its firmware is built and linked, not run")
    *qemu, kernel = target.emulator
    return [*qemu, "-icount", "shift=0", kernel, str(elf)]


def run_firmware(elf: Path, target: Target | str, tokens, vocab: int, timeout: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run `tokens` (n,) through the firmware `elf`, one step each, from the model's initial state; returns
    logits `(n, vocab)` float32 and the instructions of each step `(n,)` float64."""
    target = microcontroller(target)
    command = emulator_command(target, elf)
    require(command[0], emulator_install(target.emulator))
    tokens = np.asarray(tokens, dtype=np.int32).reshape(-1)
    with tempfile.TemporaryDirectory(prefix="rnnx-firmware-") as cwd:
        tokens.tofile(Path(cwd) / "tokens.bin")
        limit = timeout or 60 + 0.5 * len(tokens)
        try:
            done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=limit)
        except subprocess.TimeoutExpired:  # a limit the caller chose; past the default one, the firmware hangs
            raise (RnnxError if timeout else RuntimeError)(
                f"the {target.name} firmware did not finish {len(tokens)} steps in {limit:.0f} s under {command[0]}") from None
        _check_exit(done, target)
        logits = np.fromfile(Path(cwd) / "logits.bin", dtype=np.float32)
        counts = np.fromfile(Path(cwd) / "counts.bin", dtype=np.uint32).astype(np.float64)
    if logits.size != len(tokens) * vocab or counts.size != len(tokens) + 2:
        raise RuntimeError(f"the {target.name} firmware wrote {logits.size} logits and {counts.size - 2} counts "
                        f"for {len(tokens)} tokens of vocabulary {vocab}")
    (spin_ticks, spin_instructions), ticks = counts[:2], counts[2:]
    return logits.reshape(len(tokens), vocab), ticks * (spin_instructions / spin_ticks)


def _check_exit(done: subprocess.CompletedProcess, target: Target) -> None:
    code = done.returncode
    if code == 0:
        return
    what = _EXIT.get(code) or (f"stopped with a {_FAULTS.get(code - 128, f'exception {code - 128}')}" if code > 128
                               else f"exited with code {code}: {(done.stderr or done.stdout).strip()[-200:]}")
    # the tokens were checked and the firmware is rnnx's own: whatever stops it is a bug
    raise RuntimeError(f"the {target.name} firmware {what} (on {machine(target)})")


def machine(target: Target) -> str:
    """The emulated board's name, e.g. `mps2-an386`."""
    return target.emulator[target.emulator.index("-M") + 1]
