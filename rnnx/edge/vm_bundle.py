"""The deployable bundle of a VM artifact (aarch64 boards): what a board needs to run it without Python.

Beside `prefill.so` and `step.so` an artifact directory gets:
- `lib/libtvm_runtime.so`, `lib/libtvm_ffi.so`: TVM's runtime for the board (`tvm_runtime`);
- `bin/rnnx-run INPUTS OUTPUTS [--prefill N] [--threads N]`: streams int64 tokens `(B, T)` or float32
  features `(B, T, C)` through the artifact and writes float32 outputs `(T, B, N)`, printing one JSON line of
  step latency (p50, p95 µs), prefill steps/s and peak resident memory (VmHWM, kB) (`native/runner.cc`);
- `bin/rnnx-rpc-server [--host H] [--port P] [--tracker HOST:PORT --key KEY]`: the board side of TVM RPC
  (`native/rpc_server.cc`), with the global `rnnx.board.memory` returning '{"VmRSS": kB, "VmHWM": kB}';
- `state.txt` ("name dtype d0 d1 ..." per state tensor) and `initial_state.bin` (their bytes, concatenated):
  the initial state in a form C++ reads without a parser; `input.txt`, the step's first input in the same
  form ("tokens int64 B 1" or "features float32 B 1 C"), so the runner reads its inputs as the model takes them.

Both programs find the artifact at `dirname(argv[0])/..` and their libraries through the rpath
`$ORIGIN/../lib`, so the directory can be copied anywhere on the board.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..manifest import Value
from ..runtime.artifact import INITIAL_STATE
from ..targets import Target
from . import tvm_runtime

NATIVE = Path(__file__).parent / "native"
PROGRAMS = {"rnnx-run": "runner.cc", "rnnx-rpc-server": "rpc_server.cc"}
STATE_LAYOUT, STATE_BYTES, INPUT_LAYOUT = "state.txt", "initial_state.bin", "input.txt"
_CXXFLAGS = ["-std=c++17", "-O2", "-s", "-Wl,--no-as-needed", "-ltvm_runtime", "-ltvm_ffi", "-Wl,-rpath,$ORIGIN/../lib"]


def add_vm_bundle(artifact_dir: Path, target: Target, step_input: Value) -> list[str]:
    """Add the bundle to the artifact directory being written (its initial_state.npz must be there; the
    state's order is that file's, which is artifact.json's); `step_input` is the step graph's first input.
    Returns the paths it added, relative to the directory, for artifact.json's "files"."""
    artifact_dir = Path(artifact_dir)
    runtime = tvm_runtime.locate(target.arch)
    added = []
    (artifact_dir / "lib").mkdir()
    for library in (Path(member).name for member in tvm_runtime.LIBRARIES.values()):
        shutil.copy2(runtime / library, artifact_dir / "lib" / library)
        added.append(f"lib/{library}")
    shutil.copytree(_programs(target, runtime), artifact_dir / "bin")
    added += [f"bin/{program}" for program in PROGRAMS]
    with np.load(artifact_dir / INITIAL_STATE, allow_pickle=False) as initial:
        state = [(name, np.ascontiguousarray(initial[name])) for name in initial.files]
    (artifact_dir / STATE_LAYOUT).write_text("".join(_layout(name, x.dtype, x.shape) for name, x in state))
    (artifact_dir / STATE_BYTES).write_bytes(b"".join(x.astype(x.dtype.newbyteorder("<")).tobytes() for _, x in state))
    (artifact_dir / INPUT_LAYOUT).write_text(_layout(step_input.name, step_input.dtype, step_input.shape))
    added += [STATE_LAYOUT, STATE_BYTES, INPUT_LAYOUT]
    return added


def _layout(name: str, dtype, shape) -> str:
    """A line of state.txt or input.txt: "name dtype d0 d1 ..."."""
    return f"{name} {dtype} {' '.join(map(str, shape))}\n"


def _programs(target: Target, runtime: Path) -> Path:
    """The bundle's `bin/` for `target`, built once per source, toolchain flags and TVM release and kept
    beside the runtime libraries (the programs do not depend on the model)."""
    cxx = target.toolchain.require()
    key = hashlib.sha256(json.dumps([cxx, _CXXFLAGS, tvm_runtime.versions(),
                                     [p.read_text() for p in sorted(NATIVE.iterdir())]]).encode())
    built = runtime.parent / f"{target.arch}-bin" / key.hexdigest()[:16]
    if built.is_dir():
        return built
    built.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=built.parent) as tmp:
        includes = [f"-I{d}" for d in (NATIVE, *tvm_runtime.include_dirs())]
        # the two programs compile in parallel: each takes seconds
        jobs = {program: subprocess.Popen([cxx, *includes, str(NATIVE / source), "-o", f"{tmp}/{program}",
                                           f"-L{runtime}", *_CXXFLAGS], stderr=subprocess.PIPE, text=True)
                for program, source in PROGRAMS.items()}
        for program, job in jobs.items():
            errors = job.communicate()[1].splitlines()
            if job.returncode:
                raise RnnxError(f"{cxx} could not build {program}: {next((e for e in errors if 'error' in e), errors[-1:])}")
        os.chmod(tmp, 0o755)  # it becomes the bundle's bin/, which mkdtemp's 0700 would hide from other users
        try:  # one rename: a concurrent build (pytest workers) that finished first is kept, and never half-seen
            os.rename(tmp, built)
        except OSError:
            if not built.is_dir():
                raise
    return built
