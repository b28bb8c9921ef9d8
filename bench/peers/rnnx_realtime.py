"""rnnx in its real-time mode (`Session(..., realtime=True)`: one thread, pinned, SCHED_FIFO), the artifact of
rnnx_compiled."""
from . import rnnx_compiled
from .rnnx_compiled import Runner  # noqa: F401

LABEL = "rnnx real-time mode"
THREADS = (1,)


def prepare(ctx) -> dict:
    return rnnx_compiled.prepare(ctx) | {"realtime": True}
