"""Microcontroller boards: how the example firmware is compiled and linked for each `c-bundle` target,
and where its memory lies on the board qemu emulates (the target's `emulator`).

Memory maps (qemu 7.2, hw/arm/mps2.c and mps2-tz.c, checked by running firmware there):
- mps2-an386 (Cortex-M4), mps2-an500 (Cortex-M7): ZBT SSRAM1 (4 MB) at 0x0 holds the vectors, code and
  weights, as flash would; ZBT SSRAM2/3 at 0x20000000 is the RAM.
- mps3-an547 (Cortex-M55): the core boots from ITCM at 0x0 (512 KB), too small for the weights, so only the
  vectors go there; code and weights go to the 2 MB SRAM at 0x01000000; RAM is the DTCM at 0x20000000.
Regions get the target's sizes (`Target.memory`), not the board's, so the link fails where the product would.
"""
from dataclasses import dataclass
from pathlib import Path

from ..errors import RnnxError
from ..targets import Target, get_target

BOARD_FILES = Path(__file__).parent / "board"  # startup, linker scripts, board.h, main.c, Makefile template


@dataclass(frozen=True)
class Board:
    cflags: tuple[str, ...]          # the core, its FPU and float ABI: must match the TVM target's kernels.o
    flash: int                       # origin of the code and constants
    ram: int                         # origin of .data, .bss and the stack
    vectors: int | None = None       # origin of the vector table when it is not at the start of flash
    startup: str | None = "startup_cortex_m.c"  # None: the C library's crt0 (picolibc on RISC-V)


_M_CORE = ("-mthumb", "-mfloat-abi=hard")
BOARDS = {
    "cortex-m4f": Board(("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", *_M_CORE), flash=0x0, ram=0x20000000),
    "cortex-m7": Board(("-mcpu=cortex-m7", "-mfpu=fpv5-d16", *_M_CORE), flash=0x0, ram=0x20000000),
    "cortex-m55": Board(("-mcpu=cortex-m55", *_M_CORE), flash=0x01000000, ram=0x20000000, vectors=0x0),
    # No emulator: compiled and linked only, with picolibc's crt0, at an ESP32-C3-like map.
    "riscv32-imac": Board(("-march=rv32imac", "-mabi=ilp32"), flash=0x42000000, ram=0x3FC80000, startup=None),
}


def board_for(target: Target | str) -> tuple[Target, Board]:
    """The target and its board, or an error if the target is not a microcontroller."""
    target = get_target(target) if isinstance(target, str) else target
    if target.packaging != "c-bundle" or target.name not in BOARDS:
        raise RnnxError(f"target {target.name} is not a microcontroller target: firmware is built for "
                        f"{', '.join(BOARDS)}")
    return target, BOARDS[target.name]
