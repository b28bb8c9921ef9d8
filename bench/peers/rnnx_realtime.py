"""rnnx in its real-time mode (`Session(..., realtime=True)`: one thread, pinned, SCHED_FIFO), the artifact of
rnnx_compiled."""
import numpy as np

from rnnx.runtime import Session

from .rnnx_compiled import prepare  # noqa: F401

LABEL = "rnnx real-time mode"
THREADS = (1,)


class Runner:
    def __init__(self, spec: dict, threads: int):
        self.session = Session(spec["artifact"], realtime=True)

    def reset(self) -> None:
        self.session.reset()

    def step(self, token: int) -> np.ndarray:
        return self.session.step(token)

    def prefill(self, tokens: np.ndarray) -> np.ndarray:
        return self.session.prefill(tokens)
