"""Whether a model fits a microcontroller, and what a built firmware takes: code, weights, arena, stack.

`check_fits` is the refusal `rnnx compile` gives before any slow work; `export_sizes` gives it the sizes an
export already fixes (weights, state); `elf_sizes` reads what the linker placed (`size -A`, `nm -S`).
"""
import math
from pathlib import Path

import onnx

from ..errors import RnnxError
from ..manifest import ExportManifest
from ..static.emit import run_tool
from ..targets import Target, get_target

STACK_BYTES = 16 << 10  # the example firmware's stack: main, the step and the kernels' small locals
ARENA_SYMBOL, CONSTANTS_SYMBOL = "rnnx_arena", "rnnx_constants"


def check_fits(target: Target | str, weight_bytes: int, arena_bytes: int, code_bytes: int | None = None, *,
               model: str = "the model", stack_bytes: int = STACK_BYTES) -> None:
    """Raise if `weight_bytes` + `code_bytes` (None: not compiled yet) exceed the target's flash or
    `arena_bytes` + `stack_bytes` its RAM; the message gives every number."""
    target = get_target(target) if isinstance(target, str) else target
    if target.board is None:
        return
    flash, ram = target.board.flash, target.board.ram
    if weight_bytes + (code_bytes or 0) > flash:
        code = "before its code" if code_bytes is None else f"+ {code_bytes:,} B of code"
        raise RnnxError(f"{model} needs {weight_bytes + (code_bytes or 0):,} B of flash ({weight_bytes:,} B of weights "
                        f"{code}); {target.name} has {flash:,} B")
    if arena_bytes + stack_bytes > ram:
        raise RnnxError(f"{model} needs {arena_bytes + stack_bytes:,} B of RAM ({arena_bytes:,} B of arena + "
                        f"{stack_bytes:,} B of stack); {target.name} has {ram:,} B")


def export_sizes(export_dir: Path, export: ExportManifest) -> dict:
    """Sizes an export fixes before compiling: `weight_bytes` (the step graph's initializers, read without
    their data) and `state_bytes` (a lower bound of the arena, which adds the step's intermediates)."""
    graph = onnx.load(Path(export_dir) / export.graphs["step"].file, load_external_data=False).graph
    weights = sum(_tensor_bytes(t) for t in graph.initializer)
    return {"model": export.model.source, "weight_bytes": weights, "state_bytes": export.state_bytes}


def _tensor_bytes(t: onnx.TensorProto) -> int:
    return math.prod(t.dims) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


def elf_sizes(elf: Path, target: Target | str) -> dict:
    """What the linker placed in `elf`, in bytes: `flash_bytes` (read-only sections + .data's initial values),
    `const_bytes` (the `rnnx_constants` symbol: weights and initial state), `code_bytes` (the rest of flash
    but .data: code, tables, libc's constants), `ram_bytes` (.data, .bss and the stack), `stack_bytes`, and
    `arena_bytes` (the `rnnx_arena` symbol, inside .bss)."""
    target = get_target(target) if isinstance(target, str) else target
    text, data, bss = (int(n) for n in run_tool(target, "size", elf).splitlines()[1].split()[:3])  # Berkeley format
    stack = next((int(line.split()[1]) for line in run_tool(target, "size", "-A", elf).splitlines()
                  if line.startswith(".stack ")), 0)
    symbols = elf_symbols(elf, target)
    missing = [s for s in (ARENA_SYMBOL, CONSTANTS_SYMBOL) if s not in symbols]
    if missing:
        raise RnnxError(f"{elf} has no {' or '.join(missing)}: it is not a firmware built from an rnnx bundle")
    return {"flash_bytes": text + data, "const_bytes": symbols[CONSTANTS_SYMBOL],
            "code_bytes": text - symbols[CONSTANTS_SYMBOL], "ram_bytes": data + bss, "stack_bytes": stack,
            "arena_bytes": symbols[ARENA_SYMBOL]}


def elf_symbols(elf: Path, target: Target | str) -> dict[str, int]:
    """Every sized symbol of `elf` -> its size in bytes (`nm -S`)."""
    target = get_target(target) if isinstance(target, str) else target
    symbols = {}
    for line in run_tool(target, "nm", "-S", elf).splitlines():
        parts = line.split()
        if len(parts) == 4:
            symbols[parts[3]] = int(parts[1], 16)
    return symbols
