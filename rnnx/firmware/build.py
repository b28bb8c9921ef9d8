"""The example firmware around a C bundle: its sources (`write_example`, which an artifact ships) and the
build of `firmware.elf` from them with the target's cross compiler (`build_firmware`)."""
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import RnnxError
from ..targets import Board, Target, get_target, require
from .footprint import STACK_BYTES

FIRMWARE = "firmware.elf"
BOARD_FILES = Path(__file__).parent / "board"  # startup, linker scripts, board.h, main.c, Makefile template


def microcontroller(target: Target | str) -> Target:
    """The target, or an error if it is not a microcontroller (one with a board memory map)."""
    target = get_target(target) if isinstance(target, str) else target
    if target.board is None:
        raise RnnxError(f"target {target.name} is not a microcontroller target: firmware is built for targets "
                        "with packaging c-bundle")
    return target


def _memory_script(target: Target, board: Board) -> str:
    """memory.ld: the target's flash and RAM sizes at the board's addresses."""
    regions = [("VECTORS (rx)", board.vectors, 1 << 10)] if board.vectors is not None else []
    regions += [("FLASH (rx)", board.flash_origin, board.flash), ("RAM (rwx)", board.ram_origin, board.ram)]
    lines = [f"/* {target.name}: {target.description}; written by rnnx */", "MEMORY", "{",
             *(f"    {name} : ORIGIN = {origin:#010x}, LENGTH = {length}" for name, origin, length in regions), "}"]
    if board.vectors is None:
        lines.append('REGION_ALIAS("VECTORS", FLASH);')
    return "\n".join(lines) + "\n"


def _link_flags(target: Target, board: Board) -> str:
    if board.startup is None:  # picolibc: its crt0 and linker script, placed by symbols
        places = {"__flash": board.flash_origin, "__flash_size": board.flash, "__ram": board.ram_origin,
                  "__ram_size": board.ram}
        return "--oslib=semihost -Tpicolibc.ld " + " ".join(f"-Wl,--defsym={k}={v:#x}" for k, v in places.items())
    return "-nostartfiles --specs=nano.specs -L. -T sections_cortex_m.ld"


def write_example(target: Target | str, directory: Path) -> list[str]:
    """Write the example firmware for `target` into `directory` (which must exist): main.c, board.h, the
    startup code and linker scripts where the C library has none, and a Makefile. Returns the file names."""
    target = microcontroller(target)
    board, directory = target.board, Path(directory)
    names = ["main.c", "board.h"] + ([board.startup, "sections_cortex_m.ld"] if board.startup else [])
    for name in names:
        shutil.copyfile(BOARD_FILES / name, directory / name)
    if board.startup:
        (directory / "memory.ld").write_text(_memory_script(target, board))
        names.append("memory.ld")
    cpu = " ".join(target.gcc_cpu_flags()) + (" --specs=picolibc.specs" if board.startup is None else "")
    (directory / "Makefile").write_text((BOARD_FILES / "Makefile.in").read_text().format(
        target=target.name, cc=target.toolchain.cc, cpu=cpu, link=_link_flags(target, board),
        startup=f"{board.startup} " if board.startup else "", stack=STACK_BYTES))
    return [*names, "Makefile"]


def build_firmware(bundle: Path, target: Target | str, directory: Path) -> Path:
    """Build the example firmware for the C bundle in `bundle` into `directory` (created); returns the ELF."""
    target = microcontroller(target)
    target.toolchain.require(target.toolchain.cc)
    require("make", "apt-get install make")
    if not (Path(bundle) / "rnnx_model.h").is_file():
        raise RnnxError(f"{bundle} is not an rnnx C bundle: it has no rnnx_model.h")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_example(target, directory)
    done = subprocess.run(["make", "-s", "-C", str(directory), f"BUNDLE={Path(bundle).resolve()}"],
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RnnxError(f"building the {target.name} firmware failed: {_first_error(done.stderr + done.stdout)}")
    return directory / FIRMWARE


def _first_error(log: str) -> str:
    """The line of a compiler or linker log that says what went wrong (e.g. "region `RAM' overflowed by N
    bytes"), not the warnings before it or the drivers' summaries after it."""
    lines = [line.strip() for line in log.splitlines()
             if line.strip() and not re.match(r"make(\[\d+\])?: \*\*\* \[|collect2|compilation terminated", line)]
    errors = [line for line in lines if re.search(r"error|overflowed|undefined reference", line, re.IGNORECASE)]
    line = (errors or [line for line in lines if "warning" not in line] or lines or ["no output"])[0]
    return re.sub(r"^\S*/(ld|as|cc1): ", r"\1: ", line)  # the tool's name, not its path inside gcc's tree
