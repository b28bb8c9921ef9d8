"""`rnnx compile`: an export directory -> an artifact directory for one target.

The artifact holds `prefill.so` and `step.so` (the weights baked in as constants; cross-compiled with the
target's toolchain, or for Android without an NDK a tar of objects and the command that links them), the
initial state, a copy of the export it came from, and `artifact.json`: the target and TVM version, the
state layout and the sha256 of every file. It is written to a temporary directory and renamed into place.
"""
import json
import platform
import shutil
import tarfile
from pathlib import Path

import numpy as np
import onnx
import tvm
from tvm import relax
from tvm.support import cc

from .. import __version__
from ..export.manifest import read_manifest
from ..fileio import atomic_directory, check_output, sha256
from ..runtime.artifact import ARTIFACT_FORMAT, ARTIFACT_MANIFEST, EXPORT_COPY, INITIAL_STATE
from ..targets import get_target
from .importer import import_onnx
from .pipeline import pipeline


def compile_export(export_dir: Path, target_name: str, out: Path) -> dict:
    """Compile both graphs of an export for `target_name` into the artifact directory `out`."""
    manifest = read_manifest(export_dir)
    target = get_target(target_name)
    if target.toolchain and target.packaging != "objects":  # before any work; objects need no linker here
        target.toolchain.require()
    check_output(out, ARTIFACT_MANIFEST)
    tvm_target = tvm.target.Target(target.resolved())
    with atomic_directory(out, ARTIFACT_MANIFEST) as tmp:
        libraries, link = {}, {}
        for kind, graph in manifest["graphs"].items():
            module = import_onnx(onnx.load(Path(export_dir) / graph["file"]))
            executable = relax.build(module, target=tvm_target, relax_pipeline=pipeline(tvm_target), exec_mode="compiled")
            libraries[kind], link[kind] = _export_library(executable, kind, target, tmp)
        _write_initial_state(Path(export_dir) / manifest["graphs"]["prefill"]["file"], manifest["state"], tmp / INITIAL_STATE)
        shutil.copytree(export_dir, tmp / EXPORT_COPY)  # the graphs it came from: verify runs them in onnxruntime
        content = {
            "format": ARTIFACT_FORMAT,
            "rnnx_version": __version__,
            "tvm_version": tvm.__version__,
            "target": {"name": target.name, "tvm": tvm_target.export(), "arch": target.arch,
                       "cpu_flags": target.required_flags()},
            "compiled_on": platform.machine(),
            "export": {k: manifest[k] for k in ("model", "flavor", "batch_size", "ops", "graphs")},
            "state": manifest["state"],
            "state_bytes": manifest["state_bytes"],
            "libraries": libraries,
            **({"link": link} if any(link.values()) else {}),
            "files": {name: sha256(tmp / name) for name in [*libraries.values(), INITIAL_STATE]},
        }
        (tmp / ARTIFACT_MANIFEST).write_text(json.dumps(content, indent=2, default=str) + "\n")
        return content


def _export_library(executable, kind: str, target, tmp: Path) -> tuple[str, str | None]:
    """Write `kind`'s library for the target: (file name, the command that still has to link it, if any)."""
    compiler = target.toolchain and target.toolchain.find()
    if target.packaging == "objects" and compiler is None:
        executable.export_library(str(tmp / f"{kind}.tar"))
        objects = " ".join(tarfile.open(tmp / f"{kind}.tar").getnames())
        return f"{kind}.tar", (f"tar xf {kind}.tar && {target.toolchain.cxx} -shared -fPIC -o {kind}.so {objects}"
                               f"  # {target.toolchain.cxx}: in $ANDROID_NDK_HOME/toolchains/llvm/prebuilt/linux-x86_64/bin")
    executable.export_library(str(tmp / f"{kind}.so"), **({"fcompile": cc.cross_compiler(compiler)} if compiler else {}))
    return f"{kind}.so", None


def _write_initial_state(prefill: Path, layout: list[dict], path: Path) -> None:
    """The export keeps the initial state as the prefill graph's input defaults; the runtime reads an .npz."""
    defaults = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(prefill, load_external_data=False).graph.initializer}
    np.savez(path, **{s["name"]: defaults[s["past"]] for s in layout})
