"""`rnnx profile`: latency and memory of a compiled artifact on this machine."""
import resource
import time
from pathlib import Path

import numpy as np

from ..runtime import Session


def _rss_kb() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def profile_artifact(path: Path, *, tokens: int = 1000, prefill_lengths=(1024,), seed: int = 0,
                     threads: int | None = None) -> dict:
    """Step latency over `tokens` streamed tokens (p50, p95, µs), prefill tokens/s at each length, and
    memory: state bytes, the step's scratch (its preallocated workspace), compiled library bytes (the
    weights are baked in), resident memory after the warm-up and after the stream, and the process's peak."""
    session = Session(path, threads=threads)
    rng = np.random.default_rng(seed)
    stream = rng.integers(0, 256, tokens + 100)
    for t in stream[:100]:  # warm-up: first calls allocate the VM's pooled buffers
        session.step(int(t))
    latencies = np.ones(tokens)  # written now, so that its pages are resident before the first reading
    rss_start = _rss_kb()
    for i, t in enumerate(stream[100:]):
        start = time.perf_counter()
        session.step(int(t))
        latencies[i] = time.perf_counter() - start
    rss_end = _rss_kb()
    prefill = {}
    for length in prefill_lengths:
        session.reset()
        x = rng.integers(0, 256, (session.batch_size, length))
        session.prefill(x[:, :8])  # warm-up
        session.reset()
        start = time.perf_counter()
        session.prefill(x)
        prefill[length] = length / (time.perf_counter() - start)
    return {
        "artifact": str(path), "target": session.manifest["target"]["name"], "threads": session.threads,
        "tokens": tokens,
        "step_us": {"p50": float(np.percentile(latencies, 50) * 1e6), "p95": float(np.percentile(latencies, 95) * 1e6),
                    "mean": float(latencies.mean() * 1e6)},
        "prefill_tokens_per_s": prefill,
        "memory": {"state_bytes": session.state_bytes, "scratch_bytes": session.workspace_bytes,
                   "library_bytes": sum((Path(path) / lib).stat().st_size for lib in session.manifest["libraries"].values()),
                   "rss_after_warmup_kb": rss_start, "rss_after_stream_kb": rss_end,
                   "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss},
    }
