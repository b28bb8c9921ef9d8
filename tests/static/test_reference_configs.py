"""The larger reference configs compile for riscv64 through the static runtime (82 MB of weights each), and
their steps (the gated delta rule's kernel among them) match PyTorch under qemu-riscv64: ~15 s each, mostly
the export."""
import pytest
import torch

from rnnx.numerics import compare
from rnnx.static import run_runner

from .conftest import pytorch_logits, static_target, tokens


@pytest.mark.parametrize("config", ["ref-small", "ref-small-gdn"])
def test_large_config_compiles_for_riscv64_and_steps_match_pytorch(static_builds, config):
    out, sizes = static_builds(config, "riscv64")
    assert sizes["weight_bytes"] > 80e6 and (out / sizes["bundle"] / "constants.bin").stat().st_size == sizes["const_bytes"]
    seq = tokens(6, seed=2)
    logits, _ = run_runner(out / sizes["runner"], seq, static_target("riscv64").emulator)
    result = compare(torch.from_numpy(logits), pytorch_logits(config, seq))
    assert result.passed, result
