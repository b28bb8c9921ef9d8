"""VM packagings: `prefill.so` and `step.so` for TVM's Relax VM, the weights baked in as constants.

`library`: shared libraries, cross-compiled with the target's toolchain; a cross-compiled board also gets
the native bundle (`rnnx.edge.vm_bundle`: TVM's runtime for it, `bin/rnnx-run`, `bin/rnnx-rpc-server`).
`objects`: the same for a target whose linker may be missing here (Android without an NDK): a tar of
objects per graph and the one command that links each.
"""
import tarfile
from pathlib import Path

import onnx
import tvm
from tvm import relax
from tvm.support import cc

from ..compiler import import_onnx, pipeline
from ..edge.program import RUNNER, run_program
from ..edge.vm_bundle import add_vm_bundle
from ..errors import RnnxError
from ..profile import profile_artifact
from ..profile.rpc import profile_remote
from . import Built, Packager, register


def _executables(target, export_dir: Path, export):
    tvm_target = tvm.target.Target(target.resolved())
    for kind, graph in export.graphs.items():
        module = import_onnx(onnx.load(Path(export_dir) / graph.file), target=tvm_target)
        yield kind, relax.build(module, target=tvm_target, relax_pipeline=pipeline(tvm_target), exec_mode="compiled")


@register
class VmLibrary(Packager):
    kind = "library"
    native_bundle = True  # for a board it is cross-compiled for

    def build(self, target, export_dir, export, out):
        compiler = target.toolchain and target.toolchain.require()
        libraries = {}
        for kind, executable in _executables(target, export_dir, export):
            libraries[kind] = f"{kind}.so"
            executable.export_library(str(out / libraries[kind]),
                                      **({"fcompile": cc.cross_compiler(compiler)} if compiler else {}))
        # cross-compiled for a board: the native runner, RPC server and TVM runtime beside the libraries
        bundle = (add_vm_bundle(out, target, export.graphs["step"].inputs[0])
                  if target.toolchain and self.native_bundle else [])
        return Built([*libraries.values(), *bundle], libraries=libraries)

    def run(self, artifact, manifest, target, inputs, prefill=0):
        """The bundle's `bin/rnnx-run` (natively on the target's own architecture, else under its emulator):
        report = steps, step_us_p50, step_us_p95, prefill_tokens (the steps prefilled), prefill_tokens_per_s,
        max_rss_kb (under qemu-user, the emulator's memory)."""
        runner = Path(artifact) / RUNNER
        if RUNNER not in manifest.files:
            raise RnnxError(f"{artifact} has no native bundle ({RUNNER}): compile it for a board target")
        batch, length = inputs.shape[:2]
        flat, report = run_program(runner, inputs, target.program_prefix(), ["--prefill", str(prefill)])
        outputs = flat.reshape(length, batch, manifest.signature.output_size).transpose(1, 0, 2)
        return (outputs[0] if batch == 1 else outputs), report

    def profile(self, artifact, manifest, target, *, rpc=None, tracker=None, key=None, timeout=30.0, **options):
        """On a board over TVM RPC when `rpc` or `tracker` is given, else with a Session on this machine."""
        if rpc or tracker:
            return profile_remote(artifact, rpc, tracker, key, timeout=timeout, **options)
        return profile_artifact(artifact, **options)


@register
class VmObjects(VmLibrary):
    kind = "objects"
    native_bundle = False

    def check(self, target, export_dir, export):
        pass  # objects need no linker here

    def build(self, target, export_dir, export, out):
        if target.toolchain.find():
            return super().build(target, export_dir, export, out)
        libraries, link = {}, {}
        for kind, executable in _executables(target, export_dir, export):
            libraries[kind] = f"{kind}.tar"
            executable.export_library(str(out / libraries[kind]))
            objects = " ".join(tarfile.open(out / libraries[kind]).getnames())
            link[kind] = (f"tar xf {kind}.tar && {target.toolchain.cxx} -shared -fPIC -o {kind}.so {objects}"
                          f"  # {target.toolchain.cxx}: in $ANDROID_NDK_HOME/toolchains/llvm/prebuilt/linux-x86_64/bin")
        return Built(list(libraries.values()), libraries=libraries, link=link)
