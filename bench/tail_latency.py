"""Step latency under load: p50, p95, p99 and max of the step, quiet and with one and two competing busy
processes (each a CPU-bound loop, as a board's other work), rnnx at its default thread policy, at 1 and 2
threads and in its real-time mode, beside onnxruntime at 1 and 2 threads, each in a fresh worker process
(bench/peers/measure.py) under the same load.

    python bench/tail_latency.py [--configs ref-tiny ref-small] [--loads 0 1 2] [--steps 2000] [--out bench/results]

Writes tail_latency.json and tail_latency.md to --out and prints the table.
"""
import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from peers import Context, load
from report import write_results
from step_latency import machine, worker

# (label, runtime, threads: None is the runtime's own choice, "realtime" rnnx's real-time mode)
ROWS = (("rnnx, default threads", "rnnx_compiled", None),
        ("rnnx, 1 thread", "rnnx_compiled", 1),
        ("rnnx, 2 threads", "rnnx_compiled", 2),
        ("rnnx, real-time mode", "rnnx_realtime", 1),
        ("onnxruntime, 1 thread", "ort", 1),
        ("onnxruntime, 2 threads", "ort", 2))
BUSY = "while True: pass"


@contextlib.contextmanager
def busy(n: int):
    """`n` CPU-bound processes for the duration."""
    procs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def measure(config: str, args, workdir: Path) -> dict:
    ctx = Context(config, workdir)
    specs = {runtime: load(runtime).prepare(ctx) for runtime in {r for _, r, _ in ROWS}}
    rows = {}
    for n in args.loads:
        with busy(n):
            for label, runtime, threads in ROWS:
                run = worker(runtime, threads, specs[runtime], ctx, args)
                rows.setdefault(label, {})[str(n)] = run.get("step_us", run)
                print(f"{config} load {n} {label}: {run.get('step_us', run)}", flush=True)
    return rows


def markdown(results: dict) -> str:
    loads = results["args"]["loads"]
    head = ["config", "runtime"] + [f"{name(n)}: p50 / p99 / max µs" for n in loads]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for config, rows in results["configs"].items():
        for label, by_load in rows.items():
            cells = [cell(by_load[str(n)]) for n in loads]
            lines.append(f"| {config} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n" + (
        f"Each runtime and thread count in its own process, {results['args']['steps']} timed steps after 1000 "
        "warm-up steps; a busy process is `python -c 'while True: pass'`. "
        f"Machine: {results['machine']['cpu']}, {results['machine']['cores']} cores.\n")


def name(n: int) -> str:
    return "quiet" if n == 0 else f"{n} busy process{'es' if n > 1 else ''}"


def cell(step: dict) -> str:
    if "p50" not in step:
        return str(step.get("error", "–"))[:80]
    return f"{step['p50']:,.1f} / {step['p99']:,.0f} / {step['max']:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["ref-tiny", "ref-small"])
    parser.add_argument("--loads", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.lengths, args.stream = [], 0  # the workers' other measurements: none
    results = {"machine": machine(), "args": {"configs": args.configs, "loads": args.loads, "steps": args.steps},
               "configs": {}}
    with tempfile.TemporaryDirectory(prefix="tail_latency.") as scratch:
        for config in args.configs:
            (Path(scratch) / config).mkdir()
            results["configs"][config] = measure(config, args, Path(scratch) / config)
    table = markdown(results)
    write_results(args.out, "tail_latency", results, table)
    print(table)


if __name__ == "__main__":
    main()
