"""How far a quantized model's predictions are from its fp32 export's along one long stream with the state carried:
the KL divergence of the next-step distributions (softmax of the logits or class scores), `KL(fp32 || quantized)`
in nats per step, averaged by position bucket, so that error compounding through the state shows as growth.

The quantized backend steps one input at a time, its state fed back as a deployed model's is; the fp32 export
runs the stream as one prefill in onnxruntime (it equals its steps to fp32 rounding: `rnnx verify` of the fp32
export checks that)."""
from dataclasses import asdict, dataclass

import numpy as np

from ..manifest import ExportManifest
from ..numerics import KL_FLAT_RATIO
from ..runtime.checks import random_inputs

BUCKETS = 10


@dataclass
class Drift:
    """`kl` the mean per bucket of `steps // BUCKETS` positions (nats), `mean` over the stream; `flat` when the
    last bucket's mean is within KL_FLAT_RATIO of the second's. Not the first's: both models start from the same
    initial state, so the KL is smaller while the state fills (a classifier's over its first hundreds of steps)."""
    name: str
    steps: int
    kl: list[float]
    mean: float
    flat: bool

    def as_dict(self) -> dict:
        return asdict(self)


def kl_drift(backend, reference, manifest: ExportManifest, *, steps: int, seed: int = 0) -> Drift:
    """`backend` (a quantized export's or artifact's runner) against `reference` (the fp32 export's) on `steps`
    seeded inputs, one stream per batch row."""
    inputs = random_inputs(manifest.signature, manifest.batch_size, steps, np.random.default_rng(seed))
    expected, _ = reference.prefill(inputs)
    state, kl = None, np.empty((manifest.batch_size, steps))
    for t in range(steps):
        out, state = backend.step(inputs[:, t:t + 1], state)
        kl[:, t] = _kl(expected[:, t].astype(np.float64), out[:, 0].astype(np.float64))
    buckets = [float(b.mean()) for b in np.array_split(kl, min(BUCKETS, steps), axis=1)]
    baseline = buckets[min(1, len(buckets) - 1)]
    return Drift(f"{backend.name} vs {reference.name} (fp32), {steps} steps", steps, buckets, float(kl.mean()),
                 buckets[-1] <= KL_FLAT_RATIO * baseline + 1e-12)


def _kl(p_logits: np.ndarray, q_logits: np.ndarray) -> np.ndarray:
    """KL(softmax(p) || softmax(q)) over the last axis, stable in log space."""
    lp = p_logits - _logsumexp(p_logits)
    lq = q_logits - _logsumexp(q_logits)
    return (np.exp(lp) * (lp - lq)).sum(-1)


def _logsumexp(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(-1, keepdims=True))
