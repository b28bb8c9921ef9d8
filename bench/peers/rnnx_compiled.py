"""rnnx: the portable export compiled for this machine (`rnnx compile EXPORT --target host`) and run by
`rnnx.runtime.Session`, whose step updates the state buffers in place. TVM's thread pool size comes from
TVM_NUM_THREADS, which the parent sets for each worker."""
import subprocess
import sys

import numpy as np

from rnnx.runtime import Session

from . import Unavailable

LABEL = "rnnx compiled"
THREADS = (1, 2)


def prepare(ctx) -> dict:
    artifact = ctx.workdir / "artifact"
    done = subprocess.run([sys.executable, "-m", "rnnx", "compile", str(ctx.export("portable")), "--target", "host",
                           "-o", str(artifact)], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("error")), lines[-1] if lines else "no output")
        raise Unavailable(f"rnnx compile failed: {reason}")
    return {"artifact": str(artifact)}


class Runner:
    def __init__(self, spec: dict, threads: int):
        self.session = Session(spec["artifact"], threads=threads)

    def reset(self) -> None:
        self.session.reset()

    def step(self, token: int) -> np.ndarray:
        return self.session.step(token)

    def prefill(self, tokens: np.ndarray) -> np.ndarray:
        return self.session.prefill(tokens)
