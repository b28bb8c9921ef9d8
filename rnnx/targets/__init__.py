"""The target registry: a name a user knows -> how to compile for it, package it, emulate it here and find
it over RPC. Targets are data: a board is one entry, a microcontroller's memory map included.

`packaging` names the packager that builds and runs the target's artifacts (`rnnx.packaging`): "library"
and "objects" for TVM's Relax VM (Linux boards TVM ships a runtime for: x86-64, aarch64), "runner" and
"c-bundle" for the static C step with one arena planned at compile time and no TVM runtime (riscv64,
which PyPI has no TVM runtime for, and microcontrollers).
"""
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RnnxError


@dataclass(frozen=True)
class Toolchain:
    """A cross toolchain: the compiler driver rnnx calls and the Debian package that provides it."""
    cc: str
    cxx: str
    install: str                 # how to get it: "apt-get install <Debian packages>", or where it comes from
    sysroot: str | None = None   # the target's libc, for qemu-user's -L

    def find(self, tool: str | None = None) -> str | None:
        """The path of `tool` (default: the C++ driver) on $PATH, or in $ANDROID_NDK_HOME's LLVM toolchain."""
        ndk = Path(os.environ.get("ANDROID_NDK_HOME", "/nonexistent")) / "toolchains/llvm/prebuilt/linux-x86_64/bin"
        return shutil.which(tool or self.cxx) or shutil.which(tool or self.cxx, path=str(ndk))

    def require(self, tool: str | None = None) -> str:
        """`find`, or a clear error naming what to install."""
        return self.find(tool) or require(tool or self.cxx, self.install)


@dataclass(frozen=True)
class Board:
    """A microcontroller's memory: the product's sizes (so a link fails where the product would) at the
    addresses of the board its emulator models, and what its firmware build needs beyond the TVM target."""
    ram: int                          # bytes
    flash: int
    ram_origin: int                   # of .data, .bss and the stack
    flash_origin: int                 # of the code and constants
    vectors: int | None = None        # origin of the vector table when it is not at the start of flash
    startup: str | None = "startup_cortex_m.c"  # None: the C library's crt0 (picolibc on RISC-V)
    fpu: str | None = None            # gcc's -mfpu, which the TVM target leaves to the core's default


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    tvm: dict                      # TVM target dict ("host" fills in this machine's CPU when compiling)
    arch: str                      # machine architecture the code runs on (platform.machine() there)
    cpu_flags: tuple[str, ...] = field(default_factory=tuple)  # /proc/cpuinfo flags the code needs
    toolchain: Toolchain | None = None  # None: this machine's own compiler
    packaging: str = "library"     # the packager's kind (see the module docstring)
    emulator: tuple[str, ...] = ()  # argv prefix that runs the target's programs on this machine
    rpc_key: str | None = None     # the key its RPC server registers with a tracker
    board: Board | None = None     # a microcontroller's memory map

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

    def needs(self) -> list[str]:
        """What must be installed here to compile for, and to emulate, this target."""
        return [p for p in (self.toolchain and self.toolchain.install, emulator_install(self.emulator)) if p]

    def gcc_cpu_flags(self) -> list[str]:
        """The cross gcc's flags for C that links with the TVM-compiled kernels, derived from the TVM target so
        that the two cannot disagree on the core, ISA or float ABI."""
        triple = self.tvm["mtriple"]
        if triple.startswith("thumb"):
            fpu = [f"-mfpu={self.board.fpu}"] if self.board and self.board.fpu else []
            return [f"-mcpu={self.tvm['mcpu']}", "-mthumb", f"-mfloat-abi={self.tvm['mfloat-abi']}", *fpu]
        if triple.startswith("riscv"):  # rv32 + i + single-letter extensions, e.g. rv32imac
            extensions = "".join(a[1:] for a in self.tvm.get("mattr", []) if len(a) == 2)
            return [f"-march=rv{triple[5:7]}i{extensions}", f"-mabi={self.tvm['mabi']}"]
        raise RnnxError(f"target {self.name} has no bare-metal C flags: it is not a microcontroller target")

    def program_prefix(self) -> tuple[str, ...]:
        """The argv prefix that runs the target's programs here: none on the target's own architecture, else
        its emulator (or a clear error)."""
        return () if platform.machine() == self.arch else self.require_emulator()

    def require_emulator(self) -> tuple[str, ...]:
        """The emulator's argv prefix, or a clear error: none for this target, or not installed."""
        if not self.emulator:
            raise RnnxError(f"target {self.name} has no emulator here: verify it on the board")
        require(self.emulator[0], emulator_install(self.emulator))
        return self.emulator


_VECTOR_ISA = ("sse", "ssse3", "avx", "fma", "f16c", "asimd", "sve", "neon")


def check_runnable_here(name: str, arch: str, flags: list[str]) -> None:
    """Raise if code compiled for target `name` (`arch`, needing CPU `flags`) cannot run on this machine."""
    if platform.machine() != arch:
        raise RnnxError(f"artifact for target {name} ({arch}) cannot run on this {platform.machine()} machine: "
                        f"run it on the board, or here with `rnnx verify --emulate`")
    missing = [f for f in flags if f not in _cpu_flags()]
    if missing:
        raise RnnxError(f"artifact for target {name} needs CPU features this machine lacks: {', '.join(missing)}")


def _cpu_flags() -> set[str]:
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


def emulator_install(emulator: tuple[str, ...]) -> str | None:
    """How to install the emulator an argv prefix starts with."""
    if not emulator:
        return None
    return "apt-get install " + ("qemu-system-arm" if emulator[0].startswith("qemu-system") else "qemu-user")


def require(tool: str, install: str) -> str:
    """The path of `tool` on $PATH, or an error naming it and how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise RnnxError(f"{tool} not found; to install it: {install}")
    return path


def _debian(cc: str, cxx: str, packages: str, sysroot: str | None = None) -> Toolchain:
    return Toolchain(cc, cxx, f"apt-get install {packages}", sysroot)


AARCH64 = _debian("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu", "/usr/aarch64-linux-gnu")
RISCV64 = _debian("riscv64-linux-gnu-gcc", "riscv64-linux-gnu-g++", "g++-riscv64-linux-gnu", "/usr/riscv64-linux-gnu")
ARM_NONE_EABI = _debian("arm-none-eabi-gcc", "arm-none-eabi-g++", "gcc-arm-none-eabi libnewlib-arm-none-eabi")
RISCV_ELF = _debian("riscv64-unknown-elf-gcc", "riscv64-unknown-elf-g++", "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf")
# Optional: without it an Android artifact is a tar of objects plus the one command that links them.
ANDROID_NDK = Toolchain("aarch64-linux-android24-clang", "aarch64-linux-android24-clang++",
                        "the Android NDK, with $ANDROID_NDK_HOME set (optional)")

_QEMU_AARCH64 = ("qemu-aarch64", "-L", AARCH64.sysroot)
_QEMU_RISCV64 = ("qemu-riscv64", "-L", RISCV64.sysroot)
# Cortex-M boards run a bare-metal ELF; semihosting gives it the host's files and exit code.
_QEMU_MPS = ("qemu-system-arm", "-nographic", "-semihosting-config", "enable=on,target=native", "-kernel")


def _aarch64_board(name: str, description: str, cpu: str, cores: int, key: str) -> "Target":
    return Target(name, description, {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": cpu,
                                      "mattr": ["+neon"], "num-cores": cores},
                  arch="aarch64", cpu_flags=("asimd",), toolchain=AARCH64, emulator=_QEMU_AARCH64, rpc_key=key)


def _microcontroller(name: str, description: str, tvm: dict, board: Board, emulator=()) -> "Target":
    return Target(name, description, tvm, arch=tvm["mtriple"].split("-")[0],
                  toolchain=RISCV_ELF if tvm["mtriple"].startswith("riscv") else ARM_NONE_EABI,
                  packaging="c-bundle", emulator=emulator, board=board)


# Memory maps of the emulated boards (qemu 7.2, hw/arm/mps2.c and mps2-tz.c, checked by running firmware):
# mps2-an386 (M4) and mps2-an500 (M7): ZBT SSRAM1 at 0x0 holds vectors, code and weights as flash would;
# SSRAM2/3 at 0x20000000 is the RAM. mps3-an547 (M55) boots from its 512 KB ITCM at 0x0, too small for the
# weights: only the vectors go there, code and weights to the 2 MB SRAM at 0x01000000, RAM is the DTCM.
_MPS2 = {"flash_origin": 0x0, "ram_origin": 0x20000000}


_RV64GC = ["+64bit", "+m", "+a", "+f", "+d", "+c"]
TARGETS = {t.name: t for t in (
    Target("host", "this machine's CPU, every feature it has", {"kind": "llvm"}, arch=platform.machine(),
           rpc_key="host"),
    Target("x86-64-avx2", "any x86-64 CPU with AVX2 and FMA (Haswell, Zen and later)",
           {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "haswell", "num-cores": 2},
           arch="x86_64", cpu_flags=("avx2", "fma"), rpc_key="x86-64-avx2"),
    _aarch64_board("raspberry-pi-4", "Raspberry Pi 4: 4× Cortex-A72, NEON", "cortex-a72", 4, "rasp4"),
    _aarch64_board("raspberry-pi-5", "Raspberry Pi 5: 4× Cortex-A76, NEON", "cortex-a76", 4, "rasp5"),
    _aarch64_board("jetson-orin-cpu", "NVIDIA Jetson Orin's CPU: 12× Cortex-A78AE, NEON", "cortex-a78ae", 12,
                   "jetson-orin"),
    Target("android-arm64", "Android phones (arm64-v8a), linked by the NDK's clang",
           {"kind": "llvm", "mtriple": "aarch64-linux-android", "mcpu": "cortex-a76", "mattr": ["+neon"],
            "num-cores": 8},
           arch="aarch64", cpu_flags=("asimd",), toolchain=ANDROID_NDK, packaging="objects", rpc_key="android"),
    Target("riscv64", "64-bit RISC-V Linux boards (rv64gc: VisionFive 2, Milk-V)",
           {"kind": "llvm", "mtriple": "riscv64-linux-gnu", "mcpu": "generic-rv64", "mabi": "lp64d",
            "mattr": _RV64GC, "num-cores": 1},
           arch="riscv64", toolchain=RISCV64, packaging="runner", emulator=_QEMU_RISCV64,
           rpc_key="riscv64"),
    Target("riscv64-rvv", "64-bit RISC-V with the vector extension (rv64gcv, VLEN >= 128: Banana Pi F3, K230)",
           {"kind": "llvm", "mtriple": "riscv64-linux-gnu", "mcpu": "generic-rv64", "mabi": "lp64d",
            "mattr": [*_RV64GC, "+v", "+zvl128b"], "num-cores": 1},
           arch="riscv64", toolchain=RISCV64, packaging="runner",
           emulator=("qemu-riscv64", "-cpu", "rv64,v=true,vlen=128", "-L", RISCV64.sysroot), rpc_key="riscv64-rvv"),
    _microcontroller("cortex-m4f", "Cortex-M4 with FPU (STM32F4 class): 256 KB RAM, 1 MB flash",
                     {"kind": "llvm", "mtriple": "thumbv7em-none-eabihf", "mcpu": "cortex-m4", "mfloat-abi": "hard",
                      "num-cores": 1},
                     Board(256 << 10, 1 << 20, **_MPS2, fpu="fpv4-sp-d16"),
                     emulator=(*_QEMU_MPS[:1], "-M", "mps2-an386", *_QEMU_MPS[1:])),
    _microcontroller("cortex-m7", "Cortex-M7 with double FPU (STM32F7/H7 class): 512 KB RAM, 2 MB flash",
                     {"kind": "llvm", "mtriple": "thumbv7em-none-eabihf", "mcpu": "cortex-m7", "mfloat-abi": "hard",
                      "num-cores": 1},
                     Board(512 << 10, 2 << 20, **_MPS2, fpu="fpv5-d16"),
                     emulator=(*_QEMU_MPS[:1], "-M", "mps2-an500", *_QEMU_MPS[1:])),
    _microcontroller("cortex-m55", "Cortex-M55 with Helium (Corstone-300 class): 512 KB RAM, 2 MB flash",
                     {"kind": "llvm", "mtriple": "thumbv8.1m.main-none-eabihf", "mcpu": "cortex-m55",
                      "mfloat-abi": "hard", "num-cores": 1},
                     Board(512 << 10, 2 << 20, ram_origin=0x20000000, flash_origin=0x01000000, vectors=0x0),
                     emulator=(*_QEMU_MPS[:1], "-M", "mps3-an547", *_QEMU_MPS[1:])),
    _microcontroller("riscv32-imac", "32-bit RISC-V microcontrollers (rv32imac: ESP32-C3 class): 256 KB RAM, 1 MB flash",
                     {"kind": "llvm", "mtriple": "riscv32-unknown-elf", "mcpu": "generic-rv32", "mabi": "ilp32",
                      "mattr": ["+m", "+a", "+c"], "num-cores": 1},
                     # no emulator here: compiled and linked only, with picolibc's crt0, at an ESP32-C3-like map
                     Board(256 << 10, 1 << 20, ram_origin=0x3FC80000, flash_origin=0x42000000, startup=None)),
)}


def describe(target: Target) -> dict:
    """A target as `rnnx targets` shows it."""
    return {"name": target.name, "description": target.description, "tvm": target.tvm, "arch": target.arch,
            "packaging": target.packaging, "emulator": " ".join(target.emulator[:1]),
            "rpc_key": target.rpc_key, "needs": target.needs()}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise RnnxError(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    return TARGETS[name]
