"""How the chunk and parallel forms of each rnnx op scale with the sequence length T.

The chunk form should take time linear in T and never build a T x T tensor. The parallel form of the
linear-attention ops and of sliding-window attention is one T x T block, so quadratic; Aaren's parallel
form is a log-depth scan, not a T x T block, so it stays near-linear too.

Run from the repository root, with rnnx installed (`pip install -e .`); several minutes on a CPU:

    python bench/chunk_scaling.py [--lengths 1024 4096 16384] [--ops aaren gated_delta_rule] [--out bench/results]

Writes chunk_scaling.json and chunk_scaling.md to --out and prints the markdown table.
"""
import argparse
import math
import os
import re
import statistics
import time

import torch
import torch.nn.functional as F

from rnnx.ops import OPS, aaren, decay_linear_attention, gated_delta_rule, sliding_window_attention
from rnnx.ops.footprint import Footprint
from report import write_results

B, H, D, CHUNK_SIZE, WINDOW = 1, 2, 64, 64, 256
MODES = ("chunk", "parallel")
WARMUP_T = 256
MIN_REPEATS, MAX_REPEATS, MIN_TOTAL_S = 3, 50, 0.5  # millisecond runs are noisy: repeat them for ~0.5 s
SINGLE_RUN_S = 2.0                                  # a run this long is timed once
MEMORY_LIMIT_GB, TIME_LIMIT_S = 14.0, 120.0         # the machine has 24 GB
FOOTPRINT_MAX_T_PARALLEL = 4096  # the footprint mode is slow, and a T x T block shows at any T


def make_run(op: str, mode: str, T: int):
    """A no-argument call of op's public function on seeded fp32 inputs of length T, built beforehand."""
    gen = torch.Generator().manual_seed(T)
    q, k, v = (torch.randn(B, T, H, D, generator=gen) for _ in range(3))
    decay = torch.tensor([-0.05, -0.5])                                   # per head: a long and a short memory
    unit_k, g = F.normalize(k, dim=-1), F.logsigmoid(torch.randn(B, T, H, generator=gen))  # g < 0 per token
    beta, learned_q = torch.randn(B, T, H, generator=gen).sigmoid(), torch.randn(H, D, generator=gen)
    opts = dict(mode=mode, chunk_size=CHUNK_SIZE)
    return {"decay_linear_attention": lambda: decay_linear_attention(q, k, v, decay, **opts),
            "gated_delta_rule": lambda: gated_delta_rule(q, unit_k, v, g, beta, **opts),
            "aaren": lambda: aaren(learned_q, k, v, **opts),
            "sliding_window_attention": lambda: sliding_window_attention(q, k, v, window=WINDOW, **opts)}[op]


def resident_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", open("/proc/self/status").read()).group(1))


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(run) -> tuple[float, float]:
    """Median seconds over the repeats, and the peak memory (GB) the first repeat added. Writing 5 to
    /proc/self/clear_refs resets the kernel's resident high-water mark, so the peak is this run's alone."""
    before = resident_kb("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")
    with torch.no_grad():
        times = [seconds(run)]
        peak_gb = (resident_kb("VmHWM") - before) / 2**20
        while times[0] < SINGLE_RUN_S and len(times) < MAX_REPEATS and (
                len(times) < MIN_REPEATS or sum(times) < MIN_TOTAL_S):
            times.append(seconds(run))
    return statistics.median(times), peak_gb


def footprint(run, T: int) -> tuple[int, bool]:
    """Elements of the largest tensor the run produces, and whether any of them is T x T."""
    with torch.no_grad(), Footprint() as fp:
        run()
    return fp.largest, bool(fp.square(T))


def skip_reason(last: dict | None, T: int) -> str | None:
    """Why not to run at T, extrapolating the last measured length quadratically (an upper bound here)."""
    if last is None:
        return None
    growth = (T / last["T"]) ** 2
    gb, s = last["peak_gb"] * growth, last["seconds"] * growth
    if gb > MEMORY_LIMIT_GB:
        return f"needs ~{gb:.0f} GB > {MEMORY_LIMIT_GB:.0f} GB"
    return f"would take ~{s:.0f} s > {TIME_LIMIT_S:.0f} s" if s > TIME_LIMIT_S else None


def benchmark(op: str, mode: str, lengths: list[int]) -> list[dict]:
    with torch.no_grad():
        make_run(op, mode, WARMUP_T)()
    rows, last = [], None
    for T in lengths:
        row = dict(op=op, mode=mode, T=T, seconds=None, tokens_per_s=None, peak_gb=None,
                   largest_intermediate_elements=None, built_TxT=None, skipped=skip_reason(last, T))
        if row["skipped"] is None:
            run = make_run(op, mode, T)
            row["seconds"], row["peak_gb"] = measure(run)
            row["tokens_per_s"] = B * T / row["seconds"]
            if mode == "chunk" or T <= FOOTPRINT_MAX_T_PARALLEL:
                row["largest_intermediate_elements"], row["built_TxT"] = footprint(run, T)
            last = row
        done = f"{row['seconds']:.4f} s, peak {row['peak_gb']:.2f} GB" if last is row else row["skipped"]
        print(f"{op:>24} {mode:>8} T={T:>6}: {done}", flush=True)
        rows.append(row)
    return rows


def growth_exponents(rows: list[dict]) -> dict:
    """Slope of log(time) against log(T) between consecutive measured lengths, and first to last."""
    points = [(r["T"], r["seconds"]) for r in rows if r["seconds"]]
    slope = lambda a, b: math.log(b[1] / a[1]) / math.log(b[0] / a[0])  # noqa: E731
    return dict(op=rows[0]["op"], mode=rows[0]["mode"], steps=[slope(a, b) for a, b in zip(points, points[1:])],
                overall=slope(points[0], points[-1]) if len(points) > 1 else None)


def short(T: int) -> str:
    return f"{T // 1024}K" if T % 1024 == 0 else str(T)


def markdown_row(rows: list[dict], exponent: dict) -> str:
    times = [f"{r['seconds']:.3f} s" if r["seconds"] else f"skipped: {r['skipped']}" for r in rows]
    growth = " → ".join(f"{s:.2f}" for s in exponent["steps"])
    growth += f" (overall {exponent['overall']:.2f})" if len(exponent["steps"]) > 1 else ""
    seen = [r for r in rows if r["built_TxT"] is not None]
    largest = f"{seen[-1]['largest_intermediate_elements']:,} (T={short(seen[-1]['T'])})" if seen else "-"
    built = ", ".join(f"{'yes' if r['built_TxT'] else 'no'} ({short(r['T'])})" for r in seen) or "-"
    return f"| {exponent['op']} | {exponent['mode']} | {' | '.join(times)} | {growth} | {largest} | {built} |"


def machine() -> dict:
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    return dict(cpu=cpu.group(1) if cpu else "unknown", cores=os.cpu_count(), torch=torch.__version__,
                threads=torch.get_num_threads())




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--ops", nargs="+", choices=list(OPS), default=list(OPS))
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    lengths = sorted(args.lengths)  # the guards extrapolate from the last, shorter length
    runs = [benchmark(op, mode, lengths) for op in args.ops for mode in MODES]
    exponents = [growth_exponents(rows) for rows in runs]
    table = "\n".join([f"| op | mode | {' | '.join(f'T={short(T)}' for T in lengths)} | growth exponent "
                       "| largest intermediate (elements) | T×T built? |", "|---" * (len(lengths) + 5) + "|"]
                      + [markdown_row(rows, e) for rows, e in zip(runs, exponents)]) + "\n"
    config = dict(B=B, H=H, D=D, dtype="float32", chunk_size=CHUNK_SIZE, window=WINDOW, warmup_T=WARMUP_T)
    report = dict(machine=machine(), config=config, results=[r for rows in runs for r in rows],
                  growth_exponents=exponents)
    write_results(args.out, "chunk_scaling", report, table)
    print(table)


if __name__ == "__main__":
    main()
