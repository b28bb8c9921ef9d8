"""rnnx: the portable export compiled for this machine (`rnnx compile EXPORT --target host`) and run by
`rnnx.runtime.Session`, whose step updates the state buffers in place. TVM's thread pool size comes from
TVM_NUM_THREADS, which the parent sets for each worker. `prepare_quantized` is the same after `rnnx quantize`
(rnnx_int8, rnnx_int4, and with int8 activations rnnx_int8_a8, rnnx_int4_a8)."""
import subprocess
import sys

import numpy as np

from rnnx.runtime import Session

from . import Unavailable

LABEL = "rnnx compiled"
THREADS = (1, 2)


def prepare(ctx) -> dict:
    artifact = ctx.workdir / "artifact"
    _rnnx("compile", str(ctx.export("portable")), "--target", "host", "-o", str(artifact))
    return {"artifact": str(artifact)}


def prepare_quantized(ctx, weights: str, activations: str | None = None) -> dict:
    name = weights + (f"-a{activations}" if activations else "")
    export, artifact = ctx.workdir / f"export-{name}", ctx.workdir / f"artifact-{name}"
    _rnnx("quantize", str(ctx.export("portable")), "-o", str(export), "--weights", weights,
          *(["--activations", activations] if activations else []))
    _rnnx("compile", str(export), "--target", "host", "-o", str(artifact))
    return {"artifact": str(artifact)}


def _rnnx(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "rnnx", *args], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("error")), lines[-1] if lines else "no output")
        raise Unavailable(f"rnnx {args[0]} failed: {reason}")


class Runner:
    def __init__(self, spec: dict, threads: int):
        self.session = Session(spec["artifact"], threads=threads, realtime=spec.get("realtime", False))  # rnnx_realtime

    def reset(self) -> None:
        self.session.reset()

    def step(self, token: int) -> np.ndarray:
        return self.session.step(token)

    def prefill(self, tokens: np.ndarray) -> np.ndarray:
        return self.session.prefill(tokens)
