"""A riscv64 artifact from `compile_export` (the static runtime's parts hashed in artifact.json) run through
`run_program` under its target's emulator, against PyTorch."""
import json

import torch

from rnnx.numerics import compare
from rnnx.packaging import compile_export, run_program

from .conftest import pytorch_logits, tokens


def test_riscv64_artifact_steps_under_qemu_match_pytorch(exports, tmp_path):
    compile_export(exports("ref-tiny"), "riscv64", tmp_path / "artifact")
    manifest = json.loads((tmp_path / "artifact" / "artifact.json").read_text())
    assert {"bin/rnnx-run", "bundle/kernels.o", "bundle/constants.bin", "initial_state.npz"} <= set(manifest["files"])
    seq = tokens(32, seed=3)
    logits, report = run_program(tmp_path / "artifact", seq)
    assert report["arena_bytes"] == manifest["static"]["arena_bytes"] and report["steps"] == 32
    result = compare(torch.from_numpy(logits), pytorch_logits("ref-tiny", seq))
    assert result.passed, result
