"""From an export to a static artifact's parts (C bundle, Linux runner), and running the runner."""
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx

from ..compiler import import_onnx, pipeline
from ..edge.program import run_program
from ..errors import RnnxError
from ..manifest import ExportManifest
from ..targets import Target, require
from .emit import CONSTANTS_ASM, KERNELS, MODEL, RUNTIME_SOURCES, emit_static_bundle, static_tvm_target

BUNDLE_DIR = "bundle"
RUNNER_SOURCE = RUNTIME_SOURCES / "rnnx_run.c"


def compile_bundle(target: Target, export_dir: Path, export: ExportManifest, initial_state: list[np.ndarray],
                   out: Path) -> dict:
    """Compile the step graph of the export for the static target into the C bundle `out/bundle/` (`out` is
    the artifact being written). Returns the sizes of `emit_static_bundle` and "files" (every file written,
    relative to `out`)."""
    tvm_target = static_tvm_target(target)
    module = import_onnx(onnx.load(Path(export_dir) / export.graphs["step"].file), target=tvm_target)
    with tvm_target:
        module = pipeline(tvm_target)(module)
    params = [p.name for p in module["main"].params[1:-1]]
    if params != [s.past for s in export.state]:  # the compiler keeps the graph's inputs in order
        raise RuntimeError(f"the step module's state parameters {params} do not match the export's state")
    (Path(out) / BUNDLE_DIR).mkdir()
    sizes = emit_static_bundle(module, export.signature, target, initial_state, Path(out) / BUNDLE_DIR)
    return sizes | {"files": [f"{BUNDLE_DIR}/{f}" for f in sizes["files"]]}


def bundle_objects(bundle_dir: Path, cc: str, cflags: list[str], out_dir: Path) -> list[Path]:
    """Compile the bundle's C and assembly with the C compiler `cc` and `cflags` (a firmware build adds its
    CPU and float-ABI flags) into `out_dir`; returns every object the model links: those and `kernels.o`."""
    bundle_dir, out_dir = Path(bundle_dir), Path(out_dir)
    objects = []
    for source in (MODEL, "rnnx_runtime.c", CONSTANTS_ASM):
        objects.append(out_dir / Path(source).with_suffix(".o").name)
        _run([cc, *cflags, f"-I{bundle_dir}", f"-Wa,-I{bundle_dir}", "-c", str(bundle_dir / source), "-o",
              str(objects[-1])], f"compiling {source}")
    return [*objects, bundle_dir / KERNELS]


def build_linux_runner(bundle_dir: Path, target: Target, out: Path) -> Path:
    """Link `rnnx-run` (runtime/rnnx_run.c) at `out` from the bundle, with the target's Linux C compiler (this
    machine's gcc where the target has no cross toolchain): static, so qemu-user needs no sysroot."""
    cc = target.toolchain.require(target.toolchain.cc) if target.toolchain else require("gcc", "apt-get install gcc")
    with tempfile.TemporaryDirectory(prefix="rnnx-objects.") as tmp:
        objects = bundle_objects(bundle_dir, cc, ["-O2", "-Wall"], Path(tmp))
        _run([cc, "-O2", "-Wall", f"-I{bundle_dir}", str(RUNNER_SOURCE), *map(str, objects), "-static", "-lm",
              "-o", str(out)], f"linking {Path(out).name} for {target.name}")
    return Path(out)


def _run(command: list[str], doing: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RnnxError(f"{doing} failed: {done.stderr.strip()[-2000:]}")


def run_runner(runner: Path, inputs, emulator: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """Run `runner` (an `rnnx-run`) on the inputs of its model, tokens `(T,)` (integers) or features `(T, C)`
    (floats), under `emulator` (an argv prefix) if given. Returns the outputs `(T, N)` float32 and its report
    (steps, step_us_p50, step_us_p95, max_rss_kb — the emulator's own included when emulated —, outputs: N,
    arena_bytes)."""
    outputs, report = run_program(runner, inputs, emulator)
    return outputs.reshape(report["steps"], report["outputs"]), report
