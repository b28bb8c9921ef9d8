"""What a session is fed, checked before any kernel runs: a token outside the embedding table would be read
out of bounds, so every value is held to `[0, vocab)`, every shape to the batch it was compiled for, and a
thread count to the CPUs there are. Each refusal is one `RnnxError` naming the value and what is allowed."""
import os

import numpy as np

from ..errors import RnnxError


def check_tokens(tokens, vocab: int, batch: int, what: str = "tokens") -> np.ndarray:
    """A prompt as int64 `(batch, T)`, T >= 1; `(T,)` is taken as one sequence when `batch` is 1."""
    x = _integers(tokens, vocab, what)
    if x.ndim == 1 and batch == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] != batch:
        raise RnnxError(f"{what} have shape {list(x.shape)}; the artifact was compiled for batch {batch}: "
                        f"give ({batch}, T) tokens" + (" or (T,)" if batch == 1 else ""))
    if x.shape[1] == 0:
        raise RnnxError(f"{what} are empty: give at least one token")
    return x


def check_step_tokens(token, vocab: int, batch: int) -> np.ndarray:
    """One token per sequence as int64 `(batch,)`; a single integer when `batch` is 1."""
    x = _integers(token, vocab, "token")
    if x.shape != (batch,) and not (batch == 1 and x.ndim == 0):
        raise RnnxError(f"a step takes one token per sequence, ({batch},); got shape {list(x.shape)}")
    return x.reshape(batch)


def check_threads(threads: int) -> int:
    cpus = len(os.sched_getaffinity(0))
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= cpus:
        raise RnnxError(f"threads {threads!r} is out of range [1, {cpus}]: the CPUs this process may run on")
    return int(threads)


def _integers(values, vocab: int, what: str) -> np.ndarray:
    x = np.asarray(values)
    if x.size == 0:
        return np.zeros(x.shape, np.int64)
    if x.dtype.kind not in "iu":  # floats are refused even when whole: 3.0 for a token is a mistake too
        bad = next((v for v in x.reshape(-1).tolist() if type(v) is not int), values)
        raise RnnxError(f"{what} must be integers in [0, {vocab}), got {bad!r}")
    flat = x.reshape(-1)
    outside = (flat < 0) | (flat >= vocab)
    if outside.any():
        raise RnnxError(f"token {int(flat[outside.argmax()])} is out of range [0, {vocab}): the model's vocabulary")
    return x.astype(np.int64, copy=False)
