"""ExecuTorch 1.5.1 with XNNPACK, 8da4w: torchao's `Int8DynamicActivationIntxWeightConfig` (int8 activations per
token, int4 weights in groups of 32, symmetric) on the linear layers rnnx quantizes by default (every one but the
head), then the same programs as bench/peers/executorch.py, XNNPACK running the quantized linears."""
import torch

from .executorch import THREADS, Runner, prepare as prepare_programs  # noqa: F401

LABEL = "ExecuTorch + XNNPACK 8da4w (group 32)"
# Against torchao's quantized model in PyTorch: an activation near a rounding boundary may round the other way in
# XNNPACK's kernels (its summation order), moving that token's output by a quantization step.
TOLERANCE = 5e-2


def quantize_8da4w(model: torch.nn.Module) -> torch.nn.Module:
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, PerGroup, quantize_

    from rnnx.weights import HEAD

    quantize_(model, Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4, weight_granularity=PerGroup(32)),
              filter_fn=lambda m, _: isinstance(m, torch.nn.Linear) and getattr(m, "weight_kind", None) != HEAD)
    return model


def prepare(ctx) -> dict:
    return prepare_programs(ctx, quantize_8da4w, TOLERANCE)
