"""From an export to a static artifact's parts (C bundle, Linux runner), and running the runner."""
import platform
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx

from ..compiler.build import write_initial_state
from ..compiler.importer import import_onnx
from ..compiler.pipeline import pipeline
from ..errors import RnnxError
from ..export.manifest import read_manifest
from ..runtime.artifact import INITIAL_STATE, read_artifact
from ..edge.program import run_program
from ..targets import Target, get_target, require
from .emit import CONSTANTS_ASM, KERNELS, MODEL, RUNTIME_SOURCES, emit_static_bundle, static_tvm_target

BUNDLE_DIR, RUNNER = "bundle", "bin/rnnx-run"  # where the VM boards have theirs too
RUNNER_SOURCE = RUNTIME_SOURCES / "rnnx_run.c"


def compile_static(export_dir: Path, target: Target, out: Path) -> dict:
    """Compile the step graph of the export `export_dir` for the static target `target` into the existing
    directory `out` (an artifact being written): `out/initial_state.npz`, the C bundle `out/bundle/` and, for
    a Linux target, the runner `out/bin/rnnx-run`. Returns the artifact's "static" entry: the sizes of
    `emit_static_bundle`, "bundle" and "runner" (paths in `out`; runner None on bare metal), and "files"
    (every file written, relative to `out`, for the artifact's hashes)."""
    export_dir, out = Path(export_dir), Path(out)
    manifest = read_manifest(export_dir)
    write_initial_state(export_dir / manifest["graphs"]["prefill"]["file"], manifest["state"], out / INITIAL_STATE)
    with np.load(out / INITIAL_STATE, allow_pickle=False) as saved:
        initial = [saved[s["name"]] for s in manifest["state"]]
    tvm_target = static_tvm_target(target)
    module = import_onnx(onnx.load(export_dir / manifest["graphs"]["step"]["file"]))
    with tvm_target:
        module = pipeline(tvm_target)(module)
    params = [p.name for p in module["main"].params[1:-1]]
    if params != [s["past"] for s in manifest["state"]]:
        raise RnnxError(f"the step graph's state inputs {params} do not match the manifest of {export_dir}")
    (out / BUNDLE_DIR).mkdir()
    sizes = emit_static_bundle(module, target, initial, out / BUNDLE_DIR)
    runner = None
    if "linux" in target.resolved().get("mtriple", platform.system().lower()):
        (out / RUNNER).parent.mkdir()
        runner = build_linux_runner(out / BUNDLE_DIR, target, out / RUNNER).relative_to(out).as_posix()
    files = [INITIAL_STATE, *(f"{BUNDLE_DIR}/{f}" for f in sizes.pop("files")), *([runner] if runner else [])]
    return sizes | {"bundle": BUNDLE_DIR, "runner": runner, "files": files}


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


def run_runner(runner: Path, tokens, emulator: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
    """Run `runner` (an `rnnx-run`) on `tokens` (int sequence), under `emulator` (an argv prefix) if given.
    Returns the logits `(len(tokens), vocab)` float32 and its report (steps, step_us_p50, step_us_p95,
    max_rss_kb — the emulator's own included when emulated —, vocab, arena_bytes)."""
    logits, report = run_program(runner, np.asarray(tokens).reshape(-1), emulator)
    return logits.reshape(report["steps"], report["vocab"]), report


def run_steps(artifact_dir: Path, tokens) -> tuple[np.ndarray, dict]:
    """Run `tokens` one step each from the initial state through a static artifact's runner, under its
    target's emulator unless this machine is of the target's architecture."""
    artifact_dir = Path(artifact_dir)
    manifest = read_artifact(artifact_dir)
    runner = manifest.get("static", {}).get("runner")
    if runner is None:
        raise RnnxError(f"{artifact_dir} has no Linux runner: it is not a static artifact for a Linux target")
    target = get_target(manifest["target"]["name"])
    emulator = () if platform.machine() == target.arch else target.emulator
    return run_runner(artifact_dir / runner, tokens, emulator)
