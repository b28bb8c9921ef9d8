"""The target registry: a name a user knows -> how to compile for it. Targets are data: a board is one entry."""
import os
import platform
from dataclasses import dataclass, field

from ..errors import RnnxError


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    tvm: dict                      # TVM target dict ("host" fills in this machine's CPU when compiling)
    arch: str                      # machine architecture the code runs on (platform.machine() there)
    cpu_flags: tuple[str, ...] = field(default_factory=tuple)  # /proc/cpuinfo flags the code needs

    def resolved(self) -> dict:
        """The TVM target dict for compiling now: `host` becomes this machine's CPU and core count."""
        if self.name != "host":
            return dict(self.tvm)
        import tvm

        return self.tvm | {"mcpu": tvm.target.codegen.llvm_get_system_cpu(), "num-cores": os.cpu_count()}

    def required_flags(self) -> list[str]:
        """CPU features the compiled code may use: the target's, or for `host` every vector ISA present now."""
        if self.name != "host":
            return list(self.cpu_flags)
        return sorted(f for f in _cpu_flags() if f.startswith(_VECTOR_ISA))


_VECTOR_ISA = ("sse", "ssse3", "avx", "fma", "f16c", "asimd", "sve", "neon")


def check_runnable_here(name: str, arch: str, flags: list[str]) -> None:
    """Raise if code compiled for target `name` (`arch`, needing CPU `flags`) cannot run on this machine."""
    if platform.machine() != arch:
        raise RnnxError(f"artifact for target {name} ({arch}) cannot run on this {platform.machine()} machine")
    missing = [f for f in flags if f not in _cpu_flags()]
    if missing:
        raise RnnxError(f"artifact for target {name} needs CPU features this machine lacks: {', '.join(missing)}")


def _cpu_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


TARGETS = {t.name: t for t in (
    Target("host", "this machine's CPU, every feature it has", {"kind": "llvm"}, arch=platform.machine()),
    Target("x86-64-avx2", "any x86-64 CPU with AVX2 and FMA (Haswell, Zen and later)",
           {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "haswell", "num-cores": 2},
           arch="x86_64", cpu_flags=("avx2", "fma")),
)}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise RnnxError(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    return TARGETS[name]
