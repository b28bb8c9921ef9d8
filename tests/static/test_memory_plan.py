"""The static bundle's memory: no allocator anywhere in the model's objects, and one arena whose size in the
linked program is the size compile_static reports and the header declares."""
import re
import subprocess

import pytest

from rnnx.compiler.schedules import vector_lanes
from rnnx.static import bundle_objects
from rnnx.static.emit import static_tvm_target, target_tool

from .conftest import static_target

ALLOCATORS = {"malloc", "free", "calloc", "realloc", "aligned_alloc", "posix_memalign", "memalign", "sbrk"}


def nm(target, path, *flags) -> list[tuple[str, str]]:
    """(type letter, name) of every symbol of an object or program."""
    text = subprocess.run([target_tool(target, "nm"), *flags, str(path)], capture_output=True, text=True,
                          check=True).stdout
    return [(line.split()[-2], line.split()[-1]) for line in text.splitlines() if len(line.split()) >= 2]


@pytest.fixture(params=["host", "riscv64"])
def model_objects(request, static_builds, tmp_path):
    out, sizes = static_builds("ref-tiny", request.param)
    target = static_target(request.param)
    cc = target.toolchain.cc if target.toolchain else "gcc"
    return target, out, sizes, bundle_objects(out / sizes["bundle"], cc, ["-O2"], tmp_path)


def test_model_objects_reference_no_allocator_and_no_tvm_runtime(model_objects):
    target, _, _, objects = model_objects
    defined = {name for o in objects for kind, name in nm(target, o) if kind != "U"}
    needed = {name for o in objects for kind, name in nm(target, o) if kind == "U"} - defined
    assert not needed & ALLOCATORS, needed
    assert not [n for n in needed if re.match(r"_*(tvm|TVM)", n)], needed  # the hooks TVM's loader fills are ours
    assert needed, "the kernels need libm (expf) and the step memcpy: an empty list means nm saw nothing"


def ram_bytes(target, path) -> int:
    """Bytes of writable sections (.data, .bss and their small-data forms; not .data.rel.ro, which a PIE
    relocates once and then maps read-only)."""
    text = subprocess.run([target_tool(target, "size"), "-A", str(path)], capture_output=True, text=True,
                          check=True).stdout
    return sum(int(line.split()[1]) for line in text.splitlines()
               if re.match(r"\.(s?data|s?bss)\b", line) and not line.startswith(".data.rel.ro"))


def test_arena_is_the_only_ram_and_its_linked_size_is_the_reported_size(model_objects):
    target, out, sizes, objects = model_objects
    model, runtime, constants, kernels = objects
    assert [ram_bytes(target, o) for o in (model, runtime, constants)] == [sizes["arena_bytes"], 0, 0]
    # kernels.o keeps weak, empty hook pointers (V) that rnnx_runtime.o's const ones replace at link time
    hooks = [n for k, n in nm(target, kernels) if k == "V"]
    assert sorted(hooks) == ["__TVMBackendAllocWorkspace", "__TVMBackendFreeWorkspace"]
    assert ram_bytes(target, kernels) <= 16
    linked = {n: line for line in subprocess.run([target_tool(target, "nm"), "-S", str(out / sizes["runner"])],
                                                 capture_output=True, text=True, check=True).stdout.splitlines()
              for n in [line.split()[-1]]}
    arena_size = int(linked["rnnx_arena"].split()[1], 16)
    header = (out / sizes["bundle"] / "rnnx_model.h").read_text()
    declared = int(re.search(r"#define RNNX_ARENA_BYTES (\d+)", header)[1])
    assert arena_size == declared == sizes["arena_bytes"] >= sizes["state_bytes"] + sizes["scratch_pool_bytes"]
    assert int(linked["rnnx_constants"].split()[1], 16) == sizes["const_bytes"] > sizes["weight_bytes"]


def test_rvv_kernels_are_vectorised_with_four_fp32_lanes(static_builds):
    assert vector_lanes(static_tvm_target(static_target("riscv64-rvv"))) == 4  # VLEN 128
    out, sizes = static_builds("ref-tiny", "riscv64-rvv")
    code = subprocess.run([target_tool(static_target("riscv64-rvv"), "objdump"), "-d",
                           str(out / sizes["bundle"] / "kernels.o")], capture_output=True, text=True, check=True).stdout
    assert len(re.findall(r"\bvfmacc\.v|\bvfmadd\.v|\bvfmul\.v", code)) > 10
    scalar = subprocess.run([target_tool(static_target("riscv64"), "objdump"), "-d",
                             str(static_builds("ref-tiny", "riscv64")[0] / "bundle" / "kernels.o")],
                            capture_output=True, text=True, check=True).stdout
    assert not re.search(r"\bvset", scalar)  # rv64gc has no vector unit
