"""Packaging: one packager per packaging kind turns an export into an artifact for a target and owns
everything particular to that kind: refusing early what it cannot build, building, running the artifact's
own program here (under the target's emulator) and profiling it. `rnnx compile`, `rnnx verify --emulate`
and `rnnx profile` dispatch through the target's packager; a target names its kind (`Target.packaging`).

- `library` (`VmLibrary`): TVM's Relax VM, `prefill.so` and `step.so`, and a board's native bundle when
  cross-compiled: host, x86-64, the aarch64 boards;
- `objects` (`VmObjects`): the VM's libraries as objects linked on the user's side, without an NDK here:
  Android;
- `runner` (`StaticRunner`): the static C step and a static Linux `bin/rnnx-run`: riscv64;
- `c-bundle` (`CBundle`): the static C step and an example firmware: microcontrollers.
"""
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import onnx
import tvm

from .. import __version__
from ..errors import RnnxError
from ..export.manifest import read_manifest
from ..fileio import atomic_directory, check_output
from ..manifest import ArtifactManifest, ExportManifest, StaticInfo, TargetInfo, hashes, write
from ..runtime.artifact import EXPORT_COPY, INITIAL_STATE, read_artifact
from ..runtime.checks import check_inputs
from ..targets import Target, get_target


@dataclass
class Built:
    """What a packager wrote into the artifact directory, for artifact.json."""
    files: list[str]                                      # every file, relative to the directory
    libraries: dict[str, str] = field(default_factory=dict)
    link: dict[str, str] = field(default_factory=dict)
    static: StaticInfo | None = None


class Packager:
    kind: ClassVar[str]
    runs_prefill: ClassVar[bool] = True  # its own program runs the prefill graph (else steps only)

    def check(self, target: Target, export_dir: Path, export: ExportManifest) -> None:
        """Refuse, before any slow work, what cannot be built here: by default, a missing cross compiler."""
        if target.toolchain:
            target.toolchain.require()

    def build(self, target: Target, export_dir: Path, export: ExportManifest, out: Path) -> Built:
        raise NotImplementedError

    def run(self, artifact: Path, manifest: ArtifactManifest, target: Target, inputs: np.ndarray,
            prefill: int = 0) -> tuple[np.ndarray, dict]:
        """Run the artifact's own program on `inputs` (checked: tokens `(B, T)` or features `(B, T, C)`) from
        the initial state (prefill the first `prefill`, step through the rest), under the target's emulator:
        the outputs `(T, N)` (batch 1) or `(B, T, N)`, and its report."""
        raise NotImplementedError

    def profile(self, artifact: Path, manifest: ArtifactManifest, target: Target, **options) -> dict:
        raise NotImplementedError


PACKAGERS: dict[str, Packager] = {}


def register(cls: type[Packager]) -> type[Packager]:
    PACKAGERS[cls.kind] = cls()
    return cls


def packager_for(target: Target) -> Packager:
    return PACKAGERS[target.packaging]


def compile_export(export_dir: Path, target_name: str, out: Path) -> ArtifactManifest:
    """Compile the export `export_dir` for `target_name` into the artifact directory `out`, written to a
    temporary directory and renamed into place: what the target's packager builds, the initial state, a
    copy of the export, and artifact.json with the sha256 of every file the runtime reads (the export's
    tokenizer too, read from its copy)."""
    export_dir = Path(export_dir)
    export = read_manifest(export_dir)
    target = get_target(target_name)
    packager = packager_for(target)
    packager.check(target, export_dir, export)
    check_output(out, ArtifactManifest.FILE)
    with atomic_directory(out, ArtifactManifest.FILE) as tmp:
        write_initial_state(export_dir, export, tmp / INITIAL_STATE)
        built = packager.build(target, export_dir, export, tmp)
        shutil.copytree(export_dir, tmp / EXPORT_COPY)  # the graphs it came from: verify runs them in onnxruntime
        tokenizer = f"{EXPORT_COPY}/{export.tokenizer}" if export.tokenizer is not None else None
        listed = [INITIAL_STATE, *built.files] + ([tokenizer] if tokenizer else [])
        return write(tmp, ArtifactManifest(
            rnnx_version=__version__, tvm_version=tvm.__version__,
            target=TargetInfo(target.name, _plain(tvm.target.Target(target.resolved()).export()), target.arch,
                              target.required_flags()),
            packaging=target.packaging, compiled_on=platform.machine(), export=export,
            libraries=built.libraries, link=built.link, static=built.static,
            files=hashes(tmp, listed), tokenizer=tokenizer))


def run_program(artifact: Path, inputs, prefill: int = 0) -> tuple[np.ndarray, dict]:
    """Run the artifact's own program for its target here (under the target's emulator unless this machine
    is of its architecture) on `inputs` from the initial state: tokens `(T,)` (or `(B, T)`) or features
    `(T, C)` (or `(B, T, C)`); a prefill of the first `prefill` steps where its packaging has one, then one
    step each. Returns the outputs after every step, `(T, N)` (or `(B, T, N)`), and the program's report."""
    manifest = read_artifact(artifact)
    target = get_target(manifest.target.name)
    packager = packager_for(target)
    inputs = check_inputs(inputs, manifest.signature, manifest.batch_size)
    if prefill and not packager.runs_prefill:
        raise RnnxError(f"target {target.name} runs steps only (a static step, no prefill graph)")
    if not 0 <= prefill <= inputs.shape[1]:
        raise RnnxError(f"prefill {prefill} is out of range [0, {inputs.shape[1]}]: the number of steps")
    return packager.run(Path(artifact), manifest, target, inputs, prefill)


def _plain(x):
    """TVM's containers (a target's export) as JSON's dicts, lists and scalars."""
    if x is None or isinstance(x, (bool, int, float, str)):
        return type(x)(x) if x is not None else None
    if hasattr(x, "items"):
        return {str(k): _plain(v) for k, v in x.items()}
    return [_plain(v) for v in x]


def profile(artifact: Path, **options) -> dict:
    """Profile an artifact where its packaging runs: a VM artifact on this machine or, with `rpc` or `tracker`,
    on a board over TVM RPC; a microcontroller's C bundle by its footprint on the emulated board."""
    manifest = read_artifact(artifact, check_files=False)  # what profiles it reads it again, with the hashes
    target = get_target(manifest.target.name)
    return packager_for(target).profile(Path(artifact), manifest, target, **options)


def write_initial_state(export_dir: Path, export: ExportManifest, path: Path) -> None:
    """The export keeps the initial state as the prefill graph's input defaults; an artifact keeps it as an
    .npz by state name."""
    graph = onnx.load(Path(export_dir) / export.graphs["prefill"].file, load_external_data=False).graph
    defaults = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    np.savez(path, **{s.name: defaults[s.past] for s in export.state})


from . import c_bundle, runner, vm  # noqa: E402,F401  the packagers register themselves
