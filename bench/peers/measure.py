"""The worker: one runtime at one thread count, alone in a fresh process, so its resident memory is its own.

Order: load, parity of the first steps against PyTorch, a stream of steps (resident memory after 1K tokens,
the timed window, resident memory at the end), then prefill at each length.
"""
import itertools
import json
import re
import statistics
import time

import numpy as np

from . import load

WARMUP = 1000                             # steps before the timed window; resident memory is read after them
PREFILL_MIN_RUNS, PREFILL_MAX_RUNS, PREFILL_MIN_S = 3, 10, 2.0
PREFILL_SINGLE_S = 5.0                    # a prefill this slow is timed once after its warm-up


def stream_tokens(n: int) -> np.ndarray:
    """The byte stream every runtime sees (and the parity reference is computed on)."""
    return np.random.default_rng(0).integers(0, 256, n, dtype=np.int64)


def memory_mb() -> dict:
    status = open("/proc/self/status").read()
    kb = {f: int(re.search(rf"{f}:\s+(\d+) kB", status).group(1)) for f in ("VmRSS", "VmHWM")}
    return {"rss_mb": kb["VmRSS"] / 1024, "peak_mb": kb["VmHWM"] / 1024}


def steps(runner, tokens, n: int) -> None:
    for token in itertools.islice(tokens, n):
        runner.step(token)


def timed_steps(runner, tokens, n: int) -> np.ndarray:
    """Microseconds per step. np.ones writes its pages now, so the loop adds nothing to resident memory."""
    times, clock = np.ones(n), time.perf_counter_ns
    for i, token in enumerate(itertools.islice(tokens, n)):
        start = clock()
        runner.step(token)
        times[i] = clock() - start
    return times / 1e3


def stream(runner, length: int, timed: int) -> dict:
    """From the initial state: WARMUP steps, `timed` timed steps, then the rest of a `length`-token stream.
    One iterator walks the token list, so no slice of it is allocated on the way."""
    length = max(length, WARMUP + timed)
    tokens = iter(stream_tokens(length).tolist())
    runner.reset()
    steps(runner, tokens, WARMUP)
    after_warmup = memory_mb()
    times = timed_steps(runner, tokens, timed)
    steps(runner, tokens, length - WARMUP - timed)
    after_stream = memory_mb()  # before the statistics: numpy's percentile machinery allocates ~1.8 MB
    return {"step_us": {"p50": float(np.median(times)), "p95": float(np.percentile(times, 95)),
                        "p99": float(np.percentile(times, 99)), "max": float(times.max()),
                        "mean": float(times.mean()), "n": len(times)},
            "memory_after_1k": after_warmup, "memory_after_stream": after_stream, "stream_tokens": length}


def prefill_rate(runner, T: int) -> float:
    """Tokens per second of a prefill of T tokens from the initial state; the first run (at a new shape
    runtimes plan memory and pick kernels) is a warm-up."""
    tokens = stream_tokens(T)[None]
    runs = []
    while len(runs) < 2 or (runs[0] < PREFILL_SINGLE_S and len(runs) < PREFILL_MAX_RUNS
                            and (len(runs) < PREFILL_MIN_RUNS or sum(runs[1:]) < PREFILL_MIN_S)):
        runner.reset()
        start = time.perf_counter()
        runner.prefill(tokens)
        runs.append(time.perf_counter() - start)
    return T / statistics.median(runs[1:])


def parity(runner, reference: np.ndarray) -> float:
    """Largest |logits - PyTorch's| over the first steps of the stream (reference: (steps, vocab))."""
    runner.reset()
    tokens = stream_tokens(len(reference)).tolist()
    return max(float(np.abs(np.asarray(runner.step(t), dtype=np.float64).reshape(-1) - ref).max())
               for t, ref in zip(tokens, reference))


def run_job(job_path: str) -> None:
    """Run the job a parent wrote (runtime, threads, spec, lengths, stream, steps, reference, out)."""
    job = json.load(open(job_path))
    start = time.perf_counter()
    runner = load(job["runtime"]).Runner(job["spec"], job["threads"])
    result = {"runtime": job["runtime"], "threads": job["threads"], "load_s": time.perf_counter() - start,
              "memory_loaded": memory_mb(), "parity_max_abs": parity(runner, np.load(job["reference"]))}
    result |= stream(runner, job["stream"], job["steps"])
    result["prefill_tokens_per_s"] = {str(T): prefill_rate(runner, T) for T in job["lengths"]}
    with open(job["out"], "w") as f:
        json.dump(result, f)
