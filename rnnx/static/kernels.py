"""The step's TIR kernels as one object file for the target, and the scratch they ask the runtime for.

TVM lowers a kernel's local buffer to a stack slot when it is smaller than 1 KB (kMaxStackAlloca) and
otherwise to a `TVMBackendAllocWorkspace` call; the static runtime serves those from a pool in the arena,
sized here from the lowered kernels.
"""
import re
from pathlib import Path

import tvm
from tvm import tirx

from ..errors import RnnxError
from .plan import aligned

_STATIC_ALLOC = re.compile(r"TVMBackendAllocWorkspace\([^,()]+, [^,()]+, T\.uint64\((\d+)\)")
_NO_ASSERTS = {"tirx.disable_assert": True}  # shapes are static and checked at compile time


def kernel_module(mod: tvm.IRModule) -> tvm.IRModule:
    """The step module's PrimFuncs alone."""
    return tvm.IRModule({gv: f for gv, f in mod.functions_items() if isinstance(f, tirx.PrimFunc)})


def build_kernels(kernels: tvm.IRModule, target: tvm.target.Target, path: Path) -> None:
    """Compile `kernels` for `target` into the object file `path` (`__tvm_ffi_<name>` per kernel)."""
    with tvm.transform.PassContext(config=_NO_ASSERTS):
        tvm.tirx.build(kernels, target=target).write_to_file(str(path))


def scratch_bytes(kernels: tvm.IRModule, target: tvm.target.Target) -> int:
    """The most scratch any one kernel holds at once: the sum of its workspace allocations, each rounded to
    the pool's alignment (allocations are freed in reverse order, so the pool is a stack)."""
    target = tvm.target.Target(target, host=target)
    passes, finalize_host, _ = tvm.tirx.get_default_tir_pipeline(target)
    with tvm.transform.PassContext(config=_NO_ASSERTS):
        lowered = finalize_host()(passes(tirx.transform.BindTarget(target)(kernels)))
    most = 0
    for func in lowered.functions.values():
        # TVM 0.27 exposes no TIR visitor to Python: the calls are read from the printed kernel, where a
        # static size is a literal
        text = func.script()
        sizes = [int(n) for n in _STATIC_ALLOC.findall(text)]
        if len(sizes) != text.count("TVMBackendAllocWorkspace("):
            raise RnnxError(f"the static runtime cannot size the scratch of kernel {func.attrs['global_symbol']}: "
                            "its size is not static")
        most = max(most, sum(aligned(n) for n in sizes))
    return most
