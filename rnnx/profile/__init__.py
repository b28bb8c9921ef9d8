"""`rnnx profile`: latency and memory of a compiled artifact, on this machine (`profile_artifact`) or on a
board over TVM RPC (`rpc.profile_remote`); both give the report of `report.build_report`. Which one an
artifact gets is its packager's choice (`rnnx.packaging.profile`)."""
import os
import platform
import time
from pathlib import Path

import numpy as np

from ..manifest import Signature
from ..runtime import Session
from ..runtime.checks import random_inputs
from .report import build_report

WARMUP = 100          # steps before timing: the first calls allocate the VM's pooled buffers
MEMORY_SAMPLES = 256  # resident-memory readings over a stream, at most


def status_kb(field: str = "VmRSS") -> int:
    """A memory figure of this process in kB from /proc/self/status: VmRSS (resident now) or VmHWM (its
    peak, exact, where getrusage's ru_maxrss can lag)."""
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def step_inputs(sig: Signature, batch: int, steps: int, rng: np.random.Generator) -> list:
    """Seeded inputs of `steps` steps, each as `Session.step` takes it: a plain int for one sequence of
    tokens (its fast path), else `(B,)` tokens or `(B, C)` features."""
    x = random_inputs(sig, batch, steps, rng)
    return [int(v) for v in x[0]] if sig.input == "tokens" and batch == 1 else list(x.swapaxes(0, 1))


def this_machine() -> str:
    """This machine in a few words: CPU model and CPU count."""
    models = [line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")]
    return f"{models[0] if models else platform.machine()}, {len(os.sched_getaffinity(0))} CPUs"


def profile_artifact(path: Path, *, tokens: int = 1000, prefill_lengths=(1024,), seed: int = 0,
                     threads: int | None = None) -> dict:
    """Step latency of each of `tokens` streamed tokens (after a warm-up; p50, p95, µs, and the series by
    position), prefill tokens/s at each length, and memory: state bytes, the step's scratch (its
    preallocated workspace), compiled library bytes (the weights are baked in), resident memory after the
    warm-up, during the stream (every few tokens) and after it, and the process's peak."""
    session = Session(path, threads=threads)
    rng = np.random.default_rng(seed)
    stream = step_inputs(session.signature, session.batch_size, tokens + WARMUP, rng)
    for x in stream[:WARMUP]:
        session.step(x)
    # written now, so that their pages are resident before the first reading
    latencies, every = np.ones(tokens), -(-tokens // MEMORY_SAMPLES)
    rss = np.ones(-(-tokens // every) + 1, np.int64)  # a reading every `every` tokens, and one after the stream
    rss_start = status_kb()
    for i, x in enumerate(stream[WARMUP:]):
        if i % every == 0:  # read between timed steps, never inside one
            rss[i // every] = status_kb()
        start = time.perf_counter()
        session.step(x)
        latencies[i] = time.perf_counter() - start
    rss[-1] = rss_end = status_kb()
    prefill = {}
    for length in prefill_lengths:
        session.reset()
        x = random_inputs(session.signature, session.batch_size, length, rng)
        session.prefill(x[:, :8])  # warm-up
        session.reset()
        start = time.perf_counter()
        session.prefill(x)
        prefill[length] = length / (time.perf_counter() - start)
    memory = {"state_bytes": session.state_bytes, "scratch_bytes": session.workspace_bytes,
              "rss_after_warmup_kb": rss_start, "rss_after_stream_kb": rss_end,
              "peak_rss_kb": status_kb("VmHWM")}
    return build_report(path, session.manifest, machine=this_machine(), threads=session.threads,
                        positions=WARMUP + np.arange(tokens), latencies_s=latencies, prefill=prefill,
                        memory=memory, memory_tokens=[*range(WARMUP, WARMUP + tokens, every), WARMUP + tokens],
                        memory_rss_kb=rss.tolist())
