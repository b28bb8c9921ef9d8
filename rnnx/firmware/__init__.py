"""Firmware for microcontroller targets (`packaging == "c-bundle"`): the example firmware around a C bundle
(`rnnx.static`), built with the target's cross compiler, run on the emulated board, measured.

Public functions:
- `check_fits(target, weight_bytes, arena_bytes, code_bytes=None, *, model, stack_bytes)`: raise, with the
  numbers, if a model does not fit the target's flash or RAM; `export_sizes(export_dir)` gives the sizes an
  export fixes, so that `rnnx compile` can refuse before the slow build;
- `write_example(target, directory)`: main.c, board.h, startup, linker scripts and a Makefile;
- `build_firmware(bundle, target, directory) -> elf`;
- `run_bundle(bundle, target, inputs) -> (outputs (n, N) float32, report)`: build, then run tokens `(n,)` or
  features `(n, C)` on the board;
- `footprint(bundle, target, signature, steps=16) -> dict`: code, weight, arena bytes and instructions per step.
"""
import re
import tempfile
from pathlib import Path

import numpy as np

from ..manifest import Signature
from ..runtime.checks import random_inputs
from ..targets import Target
from .build import build_firmware, microcontroller, write_example
from .emulate import machine, run_firmware
from .footprint import STACK_BYTES, check_fits, elf_sizes, elf_symbols, export_sizes

_HOW = ("{qemu} -M {board} -icount shift=0 (virtual time advances 1 ns per instruction): SysTick ticks around "
        "each step, converted to instructions by a loop of known length timed first; exact to one tick")


def bundle_sizes(bundle: Path) -> dict[str, int]:
    """The `#define RNNX_<NAME> <int>` of the bundle's rnnx_model.h, as {name lowercased: value}."""
    text = (Path(bundle) / "rnnx_model.h").read_text()
    return {k.lower(): int(v) for k, v in re.findall(r"^#define RNNX_(\w+) (\d+)$", text, re.MULTILINE)}


def run_bundle(bundle: Path, target: Target, inputs, timeout: float | None = None) -> tuple[np.ndarray, dict]:
    """Build the example firmware of the C bundle and run its model's inputs, tokens `(n,)` or features
    `(n, C)`, through it on the target's emulated board, one step each from the initial state: the outputs
    `(n, N)` float32 and a report (target, board, steps, instructions per step and how they were counted, the
    ELF's sizes)."""
    target = microcontroller(target)
    with tempfile.TemporaryDirectory(prefix="rnnx-firmware-build-") as build:
        elf = build_firmware(bundle, target, Path(build))
        outputs, instructions = run_firmware(elf, target, inputs, bundle_sizes(bundle)["outputs"], timeout)
        sizes = elf_sizes(elf, target)
    return outputs, {"target": target.name, "board": machine(target), "steps": len(outputs),
                    "instructions_per_step": _summary(instructions), "instructions_how": _how(target), **sizes}


def footprint(bundle: Path, target: Target, signature: Signature, steps: int = 16, seed: int = 0) -> dict:
    """What the firmware of the C bundle (of a model with `signature`) takes, from the linked ELF: code,
    constants (weights + initial state), arena, stack, flash and RAM in bytes, with the target's capacity; the
    bundle's own figures; and the instructions per step over `steps` seeded inputs (`random_inputs`) on the
    emulated board (None where there is none)."""
    target = microcontroller(target)
    declared = bundle_sizes(bundle)
    with tempfile.TemporaryDirectory(prefix="rnnx-firmware-build-") as build:
        elf = build_firmware(bundle, target, Path(build))
        sizes = elf_sizes(elf, target)
        instructions, how = None, f"not measured: {target.name} has no emulator here"
        if target.emulator:
            inputs = random_inputs(signature, 1, steps, np.random.default_rng(seed))[0]
            instructions = _summary(run_firmware(elf, target, inputs, declared["outputs"])[1])
            how = _how(target)
    return {"target": target.name, "capacity": {"ram": target.board.ram, "flash": target.board.flash}, **sizes,
            "weight_bytes": declared["weight_bytes"], "state_bytes": declared["state_bytes"],
            "declared_arena_bytes": declared["arena_bytes"], "instructions_per_step": instructions,
            "instructions_how": how}


def _summary(instructions: np.ndarray) -> dict:
    return {"mean": float(instructions.mean()), "min": float(instructions.min()), "max": float(instructions.max())}


def _how(target) -> str:
    return _HOW.format(qemu=target.emulator[0], board=machine(target))


__all__ = ["STACK_BYTES", "build_firmware", "bundle_sizes", "check_fits", "elf_sizes", "elf_symbols", "export_sizes",
           "footprint", "microcontroller", "run_bundle", "write_example"]
