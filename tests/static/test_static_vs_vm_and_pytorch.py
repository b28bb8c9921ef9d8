"""The static C step against the TVM VM session and PyTorch (fp64): natively on this machine, and the
riscv64 builds under qemu-riscv64 (scalar rv64gc, and RVV with VLEN 128)."""
import pytest
import torch

from rnnx.packaging import compile_export
from rnnx.numerics import compare
from rnnx.runtime import Session
from rnnx.static import run_runner

from .conftest import pytorch_logits, static_target, tokens


def test_host_static_steps_equal_vm_session_and_pytorch(exports, static_builds, tmp_path):
    seq = tokens(200)
    out, sizes = static_builds("ref-tiny", "host")
    logits, report = run_runner(out / sizes["runner"], seq)
    compile_export(exports("ref-tiny"), "host", tmp_path / "vm")
    session = Session(tmp_path / "vm")
    vm = torch.stack([torch.from_numpy(session.step(int(t))[0]) for t in seq])
    assert logits.shape == (200, 256) and report["steps"] == 200
    assert compare(torch.from_numpy(logits), vm.double()).passed
    assert compare(torch.from_numpy(logits), pytorch_logits("ref-tiny", seq)).passed


@pytest.mark.parametrize("config, target, steps", [("ref-tiny", "riscv64", 200), ("ref-tiny", "riscv64-rvv", 100),
                                                   ("ref-aaren", "riscv64", 48)])
def test_emulated_riscv_steps_match_pytorch(static_builds, config, target, steps):
    seq = tokens(steps, seed=1)
    out, sizes = static_builds(config, target)
    emulator = static_target(target).emulator
    sysroot = emulator.index("-L")
    # the runner is linked statically, so qemu-user runs it without the target's libc (-L sysroot)
    logits, report = run_runner(out / sizes["runner"], seq, emulator[:sysroot] + emulator[sysroot + 2:])
    result = compare(torch.from_numpy(logits), pytorch_logits(config, seq))
    assert logits.shape == (steps, 256) and result.passed, result
    assert report["arena_bytes"] == sizes["arena_bytes"] and report["step_us_p50"] > 0
