"""What a session is fed, checked before any kernel runs, against the artifact's `Signature`: a token outside
the embedding table would be read out of bounds, so every token is held to `[0, vocab)`; a feature vector must
have the model's channels and be finite (one NaN would stay in the recurrent state for good); every shape is
held to the batch it was compiled for, and a thread count to the CPUs there are. Each refusal is one
`RnnxError` naming the value and what is allowed."""
import os

import numpy as np

from ..errors import RnnxError
from ..manifest import Signature


def check_inputs(values, sig: Signature, batch: int, what: str | None = None) -> np.ndarray:
    """A prompt or a stream: int64 tokens `(batch, T)` or float32 features `(batch, T, C)`, T >= 1; without
    the batch axis when `batch` is 1."""
    what = what or sig.input
    x = _values(values, sig, what)
    if x.ndim == len(sig.input_shape(batch, 0)) - 1 and batch == 1:
        x = x[None]
    shape = sig.input_shape(batch, "T")
    if x.ndim != len(shape) or x.shape[0] != batch or (sig.input == "features" and x.shape[2] != sig.input_size):
        raise RnnxError(f"{what} have shape {list(x.shape)}; the artifact was compiled for batch {batch}: give "
                        f"{_shape(shape)}" + (f" or {_shape(shape[1:])}" if batch == 1 else ""))
    if x.shape[1] == 0:
        raise RnnxError(f"{what} are empty: give at least one step")
    return x


def check_step_input(value, sig: Signature, batch: int) -> np.ndarray:
    """One step per sequence: tokens `(batch,)` (a single integer when `batch` is 1) or features `(batch, C)`
    (`(C,)` when `batch` is 1)."""
    x = _values(value, sig, sig.input.removesuffix("s"))
    shape = (batch,) + ((sig.input_size,) if sig.input == "features" else ())
    if x.shape != shape and not (batch == 1 and x.shape == shape[1:]):
        raise RnnxError(f"a step takes one {sig.input.removesuffix('s')} per sequence, {_shape(list(shape))}; got "
                        f"shape {list(x.shape)}")
    return x.reshape(shape)


def random_inputs(sig: Signature, batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
    """Seeded test inputs of the signature's kind: uniform tokens, or standard-normal features."""
    if sig.input == "tokens":
        return rng.integers(0, sig.input_size, (batch, length), dtype=np.int64)
    return rng.standard_normal((batch, length, sig.input_size), dtype=np.float32)


def check_threads(threads: int) -> int:
    cpus = len(os.sched_getaffinity(0))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= cpus:
        raise RnnxError(f"threads {threads!r} is out of range [1, {cpus}]: the CPUs this process may run on")
    return int(threads)


def _shape(shape: list) -> str:
    return str(tuple(shape)).replace("'", "")


def _values(values, sig: Signature, what: str) -> np.ndarray:
    x = np.asarray(values)
    if sig.input == "features":
        if x.dtype.kind not in "fiu" or x.dtype == np.bool_:
            raise RnnxError(f"{what} must be real numbers (float32 features), got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        bad = ~np.isfinite(x)
        if bad.any():
            raise RnnxError(f"{what} hold {x.reshape(-1)[bad.reshape(-1).argmax()]} at index "
                            f"{[int(i) for i in np.unravel_index(bad.argmax(), x.shape)]}: features must be finite")
        return x
    if x.size == 0:
        return np.zeros(x.shape, np.int64)
    if x.dtype.kind not in "iu":  # floats are refused even when whole: 3.0 for a token is a mistake too
        bad = next((v for v in x.reshape(-1).tolist() if type(v) is not int), values)
        raise RnnxError(f"{what} must be integers in [0, {sig.input_size}), got {bad!r}")
    flat = x.reshape(-1)
    outside = (flat < 0) | (flat >= sig.input_size)
    if outside.any():
        raise RnnxError(f"token {int(flat[outside.argmax()])} is out of range [0, {sig.input_size}): the model's "
                        "vocabulary")
    return x.astype(np.int64, copy=False)
