"""Parity tolerances, stated once for the whole project (tests, `rnnx verify`, bench).

A tensor passes when `max |actual - expected| <= atol + rtol * max |expected|` against an fp64 reference
fed the same inputs: the error is measured against the tensor's scale, not each element's, because an
element near zero that is the sum of large terms (a long decay-free state) carries the rounding of
those terms, which no fp32 implementation avoids. fp32 uses atol = rtol = 1e-5, the usual figure for
fp32 outputs of order 1. fp16 and bf16 inputs are bounded by rounding the output to 11 and 8
significant bits (half-ulps 4.9e-4 and 3.9e-3). State is always accumulated in fp32, so state tensors
are held to the fp32 tolerance whatever the input dtype.
"""
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    """Pass when `max |a - e| <= atol + rtol · max |e|`; or, with `nmse`, when the normalized mean squared
    error `Σ (a - e)² / Σ e²` is at most it (QUANTIZED_ACTIVATIONS)."""
    atol: float
    rtol: float
    nmse: float | None = None

    def __str__(self) -> str:
        return f"nmse {self.nmse:g}" if self.nmse is not None else f"{self.atol:g}, {self.rtol:g}"


TOLERANCES = {
    torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
    torch.float16: Tolerance(atol=1e-3, rtol=1e-3),
    torch.bfloat16: Tolerance(atol=8e-3, rtol=8e-3),
}


# Quantized activations (`rnnx quantize --activations int8`) are a step function of the values before them: an
# fp32 rounding difference upstream (another summation order) moves a value across a rounding boundary now and
# then, and that token's quantized value by a step (1/127 of its peak), which the layers and the state carry on;
# no two correct implementations avoid it (onnxruntime's optimized and unoptimized runs of ref-small int8 with
# int8 activations differ by a normalized MSE of 4e-5 in the logits and up to 2.6e-4 in the state, 300 tokens).
# So compiled code of such an export is held to its graphs on the normalized MSE, as llama.cpp's test-backend-ops
# holds quantized backends, with this bound; its kernels are held to fp64 on the same quantized inputs at the
# fp32 tolerance (tests/test_quantized_activations.py).
QUANTIZED_ACTIVATIONS = Tolerance(atol=0.0, rtol=0.0, nmse=1e-3)


@dataclass(frozen=True)
class Comparison:
    max_abs: float      # largest absolute error
    max_rel: float      # largest absolute error over the reference's largest magnitude
    nmse: float         # Σ (actual - expected)² / Σ expected²
    tolerance: Tolerance
    passed: bool


def compare(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype = torch.float32,
            tolerance: Tolerance | None = None) -> Comparison:
    """Compare `actual` with the fp64 `expected` under `tolerance`, by default the one for inputs of `dtype`."""
    tol = tolerance or TOLERANCES[dtype]
    a, e = actual.double(), expected.double()
    same_inf = torch.isinf(e) & (a == e)  # e.g. the running max of an empty summary
    err = torch.where(same_inf, 0.0, (a - e).abs())
    scale = torch.where(same_inf, 0.0, e.abs())
    max_abs, max_scale = _max(err), _max(scale)
    rel = max_abs / max_scale if max_scale else max_abs
    power = float((scale ** 2).sum())
    nmse = float((err ** 2).sum()) / power if power else float((err ** 2).sum())
    passed = nmse <= tol.nmse if tol.nmse is not None else max_abs <= tol.atol + tol.rtol * max_scale
    return Comparison(max_abs, rel, nmse, tol, passed)


def _max(x: torch.Tensor) -> float:
    return float(x.nan_to_num(float("inf")).max()) if x.numel() else 0.0


# Task metrics of a compiled fp32 model against PyTorch's on the same data (`rnnx verify --data`): the
# logits agree to 1e-5 of their scale, which moves a mean cross-entropy by far less than 1e-4 bits and an
# MSE by far less than 1e-4 of itself; a class decision moves only on a near tie, so fp32 requires every
# prediction to be the same.
TASK_TOLERANCE = {"bits per byte": 1e-4, "bits per token": 1e-4, "mse": 1e-4}  # absolute bits; relative MSE

# A quantized model is judged on its task against its fp32 model, not on logits (issue 13's gates): bits per byte
# (or token) and MSE within these fractions of fp32's, relative; a classifier's predictions: int8 changes at most
# `differ` test sequences, int4 loses at most `accuracy` of accuracy, absolute.
QUANTIZED_TASK_TOLERANCE = {
    "int8": {"bits": 0.005, "mse": 0.01, "differ": 1, "accuracy": 0.0},
    "int4": {"bits": 0.03, "mse": 0.05, "differ": None, "accuracy": 0.02},
}
# Along a long stream with the state carried, the KL of a quantized model's next-step distributions from fp32's
# is flat when its last tenth's mean is at most this times its second tenth's (the first is the state filling from
# the initial state both share): an error that compounds through the state grows instead.
KL_FLAT_RATIO = 2.0
