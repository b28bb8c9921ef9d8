"""Parity checks between a backend and a reference backend, on seeded inputs (tokens, or standard-normal
feature vectors).

- prefill: outputs and final state of one prefill.
- steps: N single steps from the initial state, state fed back.
- prefill + steps vs longer prefill: a prefill handing its state to steps equals one prefill of it all.
- stream: a long stream of steps, state fed back, against the reference's prefill of the same tokens (drift).
"""
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..manifest import Signature
from ..numerics import Tolerance, compare
from ..runtime.checks import random_inputs


@dataclass
class Check:
    name: str
    max_abs: float
    max_rel: float
    nmse: float
    tolerance: Tolerance
    passed: bool

    def as_dict(self) -> dict:
        return asdict(self)


def check_outputs(name: str, actual, expected, tolerance: Tolerance | None = None) -> Check:
    """Compare the outputs and every state tensor (under `tolerance`, by default fp32's); report the worst."""
    results = [compare(torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(e)), tolerance=tolerance)
               for a, e in zip(actual, expected, strict=True)]
    return Check(name, max(r.max_abs for r in results), max(r.max_rel for r in results),
                 max(r.nmse for r in results), results[0].tolerance, all(r.passed for r in results))


def _steps(runner, tokens, state=None):
    logits = []
    for t in range(tokens.shape[1]):
        out, state = runner.step(tokens[:, t:t + 1], state)
        logits.append(out)
    return np.concatenate(logits, 1), state


def run_checks(backend, reference, *, signature: Signature, batch_size: int, prompt: int, steps: int,
               stream: int, seed: int = 0, tolerance: Tolerance | None = None) -> list[Check]:
    """The checks above for `backend` against `reference` (runners as in `rnnx.verify.runners`), under
    `tolerance` (by default fp32's)."""
    gen = np.random.default_rng(seed)
    tokens = random_inputs(signature, batch_size, prompt + steps, gen)
    head, tail = tokens[:, :prompt], tokens[:, prompt:]
    prefill, prefill_state = backend.prefill(head)
    ref_logits, ref_state = reference.prefill(head)
    checks = [check_outputs(f"prefill {prompt} vs {reference.name}", [prefill, *prefill_state], [ref_logits, *ref_state],
                             tolerance)]
    stepped, state = _steps(backend, tail)
    ref_stepped, ref_state = _steps(reference, tail)
    checks.append(check_outputs(f"{steps} steps vs {reference.name}", [stepped, *state], [ref_stepped, *ref_state],
                                tolerance))
    continued, state = _steps(backend, tail, prefill_state)
    whole, whole_state = backend.prefill(tokens)
    checks.append(check_outputs(f"prefill {prompt} + {steps} steps vs prefill {prompt + steps}",
                         [continued, *state], [whole[:, prompt:], *whole_state], tolerance))
    if stream:
        long = random_inputs(signature, batch_size, stream, gen)
        streamed, state = _steps(backend, long)
        ref_logits, ref_state = reference.prefill(long)
        checks.append(check_outputs(f"stream {stream} vs {reference.name} prefill", [streamed, *state],
                             [ref_logits, *ref_state], tolerance))
    return checks
