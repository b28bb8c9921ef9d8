"""ref-micro's firmware on emulated Cortex-M boards (qemu-system-arm, semihosting) against PyTorch."""
import numpy as np
import pytest
import torch

from rnnx.packaging import run_program
from rnnx.models import build_model
from rnnx.numerics import compare


def pytorch_logits(tokens: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return build_model("ref-micro")(torch.from_numpy(tokens)[None])[0][0]


@pytest.mark.parametrize("target, steps", [("cortex-m4f", 200), ("cortex-m55", 200), ("cortex-m7", 32)])
def test_firmware_steps_match_pytorch(micro_artifact, target, steps):
    tokens = np.random.default_rng(1).integers(0, 256, steps)
    logits, report = run_program(micro_artifact(target), tokens)
    result = compare(torch.from_numpy(logits), pytorch_logits(tokens))
    assert logits.shape == (steps, 256) and result.passed, result
    assert report["steps"] == steps and report["instructions_per_step"]["min"] > 0
