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
    atol: float
    rtol: float


TOLERANCES = {
    torch.float32: Tolerance(atol=1e-5, rtol=1e-5),
    torch.float16: Tolerance(atol=1e-3, rtol=1e-3),
    torch.bfloat16: Tolerance(atol=8e-3, rtol=8e-3),
}


@dataclass(frozen=True)
class Comparison:
    max_abs: float      # largest absolute error
    max_rel: float      # largest absolute error over the reference's largest magnitude
    tolerance: Tolerance
    passed: bool


def compare(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype = torch.float32) -> Comparison:
    """Compare `actual` with the fp64 `expected` under the tolerance for inputs of `dtype`."""
    tol = TOLERANCES[dtype]
    a, e = actual.double(), expected.double()
    same_inf = torch.isinf(e) & (a == e)  # e.g. the running max of an empty summary
    err = torch.where(same_inf, 0.0, (a - e).abs())
    scale = torch.where(same_inf, 0.0, e.abs())
    max_abs, max_scale = _max(err), _max(scale)
    rel = max_abs / max_scale if max_scale else max_abs
    return Comparison(max_abs, rel, tol, max_abs <= tol.atol + tol.rtol * max_scale)


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
