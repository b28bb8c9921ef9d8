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
    """Compile an export for `target_name` into the artifact directory `out`: both graphs for a VM target,
    the step as a C bundle for a static one (`rnnx.targets`)."""
    export_dir = Path(export_dir)
    manifest = read_manifest(export_dir)
    target = get_target(target_name)
    if target.toolchain and target.packaging != "objects":  # before any work; objects need no linker here
        target.toolchain.require()
    if target.packaging == "c-bundle":  # refuse what cannot fit before the slow part
        from ..firmware import check_fits, export_sizes

        sizes = export_sizes(export_dir)
        check_fits(target, sizes["weight_bytes"], sizes["state_bytes"], model=sizes["model"])
    check_output(out, ARTIFACT_MANIFEST)
    with atomic_directory(out, ARTIFACT_MANIFEST) as tmp:
        built = (_compile_static if target.runtime == "static" else _compile_vm)(export_dir, manifest, target, tmp)
        shutil.copytree(export_dir, tmp / EXPORT_COPY)  # the graphs it came from: verify runs them in onnxruntime
        content = {
            "format": ARTIFACT_FORMAT,
            "rnnx_version": __version__,
            "tvm_version": tvm.__version__,
            "target": {"name": target.name, "tvm": tvm.target.Target(target.resolved()).export(), "arch": target.arch,
                       "cpu_flags": target.required_flags()},
            "compiled_on": platform.machine(),
            "export": {k: manifest[k] for k in ("model", "flavor", "batch_size", "ops", "graphs")},
            "state": manifest["state"],
            "state_bytes": manifest["state_bytes"],
            **{k: v for k, v in built.items() if k != "files"},
            "files": {name: sha256(tmp / name) for name in built["files"]},
        }
        (tmp / ARTIFACT_MANIFEST).write_text(json.dumps(content, indent=2, default=str) + "\n")
        return content


def _compile_vm(export_dir: Path, manifest: dict, target, tmp: Path) -> dict:
    """prefill.so and step.so for the Relax VM, the initial state, and for a board the native bundle."""
    tvm_target = tvm.target.Target(target.resolved())
    libraries, link = {}, {}
    for kind, graph in manifest["graphs"].items():
        module = import_onnx(onnx.load(export_dir / graph["file"]))
        executable = relax.build(module, target=tvm_target, relax_pipeline=pipeline(tvm_target), exec_mode="compiled")
        libraries[kind], link[kind] = _export_library(executable, kind, target, tmp)
    write_initial_state(export_dir / manifest["graphs"]["prefill"]["file"], manifest["state"], tmp / INITIAL_STATE)
    files = [*libraries.values(), INITIAL_STATE]
    # a cross-compiled Linux board: the native runner, RPC server and TVM runtime beside the libraries
    if target.toolchain and target.packaging == "library":
        from ..edge.vm_bundle import add_vm_bundle

        files += add_vm_bundle(tmp, target)
    return {"libraries": libraries, **({"link": link} if any(link.values()) else {}), "files": files}


def _compile_static(export_dir: Path, manifest: dict, target, tmp: Path) -> dict:
    """The step as a C bundle over one static arena (`rnnx.static`); a Linux target's runner, a
    microcontroller's example firmware."""
    from ..static import compile_static

    static = compile_static(export_dir, target, tmp)
    files = static.pop("files")
    if target.packaging == "c-bundle":
        from ..firmware import check_fits, write_example

        check_fits(target, static["const_bytes"], static["arena_bytes"], static["kernel_code_bytes"],
                   model=manifest["model"]["source"])
        (tmp / "firmware").mkdir()
        files += [f"firmware/{f}" for f in write_example(target, tmp / "firmware")]
    return {"libraries": {}, "static": static, "files": files}


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


def write_initial_state(prefill: Path, layout: list[dict], path: Path) -> None:
    """The export keeps the initial state as the prefill graph's input defaults; the runtime reads an .npz."""
    defaults = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(prefill, load_external_data=False).graph.initializer}
    np.savez(path, **{s["name"]: defaults[s["past"]] for s in layout})
