"""Step latency, prefill throughput and resident memory of the reference models: rnnx against its peers.

For each config (DESIGN.md, "Models we measure on"), in one run: rnnx compiled (portable export ->
`rnnx compile --target host` -> `rnnx.runtime.Session`), onnxruntime at its best (`ort` export flavor, IO
binding), ExecuTorch 1.5.1 with XNNPACK (state as explicit inputs and outputs), PyTorch eager at one thread,
and the floor (bytes a step moves / read bandwidth). Each runtime at each thread count runs in a fresh
worker process (bench/peers/measure.py), so the resident memory it reports is its own: the median and p95
of `--steps` steps after 1000 warm-up steps, VmRSS after 1K and after `--stream` streamed tokens, and
prefill tokens/s at each of `--lengths`; and the bytes of the files each runtime loads (libraries, graphs,
programs).

Run from the repository root (about 10 minutes for ref-tiny, an hour or more for every config):

    pip install -e ".[bench]"        # executorch 1.5.1, beside torch 2.13.0
    python bench/step_latency.py [--configs ref-tiny ... | CHECKPOINT_DIR ...] [--runtimes rnnx_compiled ort ...]
                                 [--lengths 1024 4096 16384] [--stream 100000] [--steps 2000] [--out bench/results]

Writes step_latency.json and step_latency.md to --out and prints the markdown table. The helpers live in
bench/peers/: one module per runtime, the worker (measure.py) and the floor (floor.py).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from peers import RUNTIMES, Context, Unavailable, load
from peers import floor as floor_
from peers.measure import run_job
from report import write_atomically, write_results

WORKER_TIMEOUT_S = 3600
# Table rows: (label, runtime, thread counts it may use). A row's figures are its best run among those
# thread counts, and its ratios compare it with rnnx held to the same thread counts.
ROWS = (("rnnx compiled, 1 thread", "rnnx_compiled", (1,)),
        ("rnnx compiled, best of 1/2 threads", "rnnx_compiled", (1, 2)),
        ("onnxruntime, 1 thread", "ort", (1,)),
        ("onnxruntime, best of 1/2 threads", "ort", (1, 2)),
        ("rnnx int8, best of 1/2 threads", "rnnx_int8", (1, 2)),
        ("rnnx int4 (block 32), best of 1/2 threads", "rnnx_int4", (1, 2)),
        ("rnnx int8, int8 activations, best of 1/2 threads", "rnnx_int8_a8", (1, 2)),
        ("rnnx int4 (block 32), int8 activations, best of 1/2 threads", "rnnx_int4_a8", (1, 2)),
        ("onnxruntime int8 (quantize_dynamic), best of 1/2 threads", "ort_int8", (1, 2)),
        ("onnxruntime int4 (MatMulNBits, accuracy 4), best of 1/2 threads", "ort_int4", (1, 2)),
        ("onnxruntime int4 (MatMulNBits, accuracy 0), best of 1/2 threads", "ort_int4_exact", (1, 2)),
        ("ExecuTorch + XNNPACK, best of 1/2 threads", "executorch", (1, 2)),
        ("ExecuTorch + XNNPACK 8da4w (group 32), best of 1/2 threads", "executorch_8da4w", (1, 2)),
        ("PyTorch eager, 1 thread", "eager", (1,)))


def worker(runtime: str, threads: int, spec: dict, ctx: Context, args) -> dict:
    """Measure one runtime at one thread count in a fresh process; its result, or its error."""
    job, out = ctx.workdir / f"{runtime}-{threads}-job.json", ctx.workdir / f"{runtime}-{threads}.json"
    job.write_text(json.dumps({"runtime": runtime, "threads": threads, "spec": spec, "lengths": args.lengths,
                               "stream": args.stream, "steps": args.steps, "reference": str(ctx.reference),
                               "out": str(out)}))
    # threads None: the runtime's own choice (rnnx's default policy), with nothing set for it
    env = os.environ | ({"TVM_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)} if threads else {})
    try:
        done = subprocess.run([sys.executable, __file__, "--worker", str(job)], env=env, capture_output=True,
                              text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"threads": threads, "error": f"worker ran past {WORKER_TIMEOUT_S} s"}
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return {"threads": threads, "error": f"worker failed: {lines[-1]}"}
    return json.loads(out.read_text())


def measure_config(config: str, args, workdir: Path) -> dict:
    ctx = Context(config, workdir)
    runtimes = {}
    for runtime in RUNTIMES:
        if runtime not in args.runtimes:  # not imported either: executorch comes with the bench extra only
            runtimes[runtime] = {"label": runtime, "error": "not measured in this run (--runtimes)"}
            continue
        module = load(runtime)
        try:
            spec = module.prepare(ctx)
        except Exception as e:  # noqa: BLE001 - a peer that cannot run this config is a row of the table
            reason = first_line(e) if isinstance(e, Unavailable) else f"{type(e).__name__}: {first_line(e)}"
            runtimes[runtime] = {"label": module.LABEL, "error": reason}
            print(f"{config} {runtime}: {runtimes[runtime]['error']}", flush=True)
            continue
        runs = []
        for threads in module.THREADS:
            runs.append(worker(runtime, threads, spec, ctx, args))
            print(f"{config} {runtime} x{threads}: {summary(runs[-1])}", flush=True)
        runtimes[runtime] = {"label": module.LABEL, "spec": spec, "runs": runs, "model_bytes": model_bytes(spec)}
    return {"runtimes": runtimes, "floor": floor(config)}


MODEL_FILES = (".so", ".onnx", ".data", ".pte")  # what a runtime loads: libraries, graphs, external weights, programs


def model_bytes(spec) -> int | None:
    """Bytes on disk of what a runtime loads (its libraries, graphs or programs: prefill's and step's), from the
    paths in its spec; None where it loads none (PyTorch eager builds the model)."""
    paths = [Path(v) for v in (spec.values() if isinstance(spec, dict) else ()) if isinstance(v, str)]
    paths += [Path(v) for d in spec.values() if isinstance(d, dict) for v in d.values() if isinstance(v, str)]
    files = [f for p in paths if p.exists() for f in ([p] if p.is_file() else p.iterdir()) if f.suffix in MODEL_FILES]
    return sum(f.stat().st_size for f in files) or None


def floor(config: str) -> dict:
    moved = floor_.step_bytes(config)
    bandwidth = floor_.read_bandwidth(moved["weights"])
    return {"bytes": moved, "read_bytes_per_s": bandwidth, "step_us": moved["total"] / bandwidth * 1e6,
            "buffer_fits_in": floor_.cache_level(moved["weights"]), "cores": os.cpu_count()}


def best(runs: list[dict], threads: tuple[int, ...]) -> dict | None:
    """The step figures of the run with the lowest median step, and each length's best prefill."""
    runs = [r for r in runs if r["threads"] in threads and "error" not in r]
    if not runs:
        return None
    fastest = min(runs, key=lambda r: r["step_us"]["p50"])
    prefill = {T: max(((r["prefill_tokens_per_s"][T], r["threads"]) for r in runs)) for T in fastest["prefill_tokens_per_s"]}
    return {"step": fastest, "prefill": prefill}


def first_line(e: Exception) -> str:
    return next((line for line in str(e).splitlines() if line.strip()), "")


def summary(run: dict) -> str:
    if "error" in run:
        return run["error"]
    rates = ", ".join(f"{short(T)} {r:,.0f}/s" for T, r in run["prefill_tokens_per_s"].items())
    return (f"step p50 {run['step_us']['p50']:.1f} µs, p95 {run['step_us']['p95']:.1f} µs; prefill {rates}; "
            f"RSS {run['memory_after_1k']['rss_mb']:.0f} -> {run['memory_after_stream']['rss_mb']:.0f} MB; "
            f"parity {run['parity_max_abs']:.1e}")


def short(T) -> str:
    return f"{int(T) // 1024}K" if int(T) % 1024 == 0 else str(T)


def table_rows(config: str, result: dict, lengths: list[int]) -> list[str]:
    runtimes, lines = result["runtimes"], []
    empty = ["–"] * (len(lengths) + 4)  # the columns after the one that holds the reason
    for label, runtime, threads in ROWS:
        entry = runtimes[runtime]
        mine = best(entry.get("runs", []), threads)
        if mine is None:
            reason = entry.get("error") or "; ".join(r["error"] for r in entry["runs"] if r["threads"] in threads)
            reason = reason[:200].replace("|", "\\|")
            lines.append(f"| {config} | {label} | – | {reason} | " + " | ".join(empty) + " |")
            continue
        ours = best(runtimes["rnnx_compiled"].get("runs", []), threads) if runtime != "rnnx_compiled" else None
        step, prefill = mine["step"], mine["prefill"]
        cells = [f"{step['threads']} · " + "/".join(str(t) for _, t in prefill.values()),
                 with_ratio(step["step_us"]["p50"], ours and ours["step"]["step_us"]["p50"], "{:,.1f}"),
                 with_ratio(step["step_us"]["p95"], ours and ours["step"]["step_us"]["p95"], "{:,.1f}")]
        cells += [with_ratio(1 / rate, ours and 1 / ours["prefill"][T][0], "{:,.0f}", shown=rate)
                  for T, (rate, _) in prefill.items()]
        cells += [f"{step[m]['rss_mb']:,.0f}" for m in ("memory_after_1k", "memory_after_stream")]
        cells.append(f"{entry['model_bytes'] / 1e6:,.1f}" if entry.get("model_bytes") else "–")
        lines.append(f"| {config} | {label} | " + " | ".join(cells) + " |")
    ours = best(runtimes["rnnx_compiled"].get("runs", []), (1, 2))
    f = result["floor"]
    lines.append(f"| {config} | floor: bytes moved / read bandwidth | {f['cores']} · – | "
                 f"{with_ratio(f['step_us'], ours and ours['step']['step_us']['p50'], '{:,.1f}')} | "
                 + " | ".join(["–"] * (len(lengths) + 4)) + " |")
    return lines


def with_ratio(time, rnnx_time, fmt: str, shown=None) -> str:
    """A figure and, when rnnx was measured, rnnx's speedup over it (its time / rnnx's time)."""
    text = fmt.format(time if shown is None else shown)
    return text if not rnnx_time else f"{text} ({time / rnnx_time:.2f}×)"


def markdown(results: dict, lengths: list[int]) -> str:
    stream = results["args"]["stream"]
    head = (["config", "runtime", "threads (step · prefill)", "step p50 µs", "step p95 µs"]
            + [f"prefill {short(T)} tok/s" for T in lengths]
            + ["RSS after 1K tokens MB", f"RSS after {f'{stream // 1000}K' if stream % 1000 == 0 else stream} MB",
               "model files MB"])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for config, result in results["configs"].items():
        lines += table_rows(Path(config).name, result, lengths)  # a checkpoint by its directory's name
    return "\n".join(lines) + "\n\n" + notes(results) + "\n"


def notes(results: dict) -> str:
    out = ["(n×): rnnx's speedup over that row (its step time / rnnx's; for prefill rnnx's tokens/s / its), "
           "against rnnx held to the same thread counts; rnnx's own rows and the floor's (n×) use rnnx's best.", ""]
    out += [config_note(Path(config).name, result) for config, result in results["configs"].items()]
    return "\n".join(out + ["", NOTES])


def config_note(config: str, result: dict) -> str:
    f, rts = result["floor"], result["runtimes"]
    runs = [r for e in rts.values() for r in e.get("runs", []) if "error" not in r]
    note = (f"- {config}: a step moves {f['bytes']['total'] / 1e6:.2f} MB ({f['bytes']['weights'] / 1e6:.2f} MB of "
            f"weights + 2 × {f['bytes']['state'] / 1e3:.1f} KB of state); numpy float32 reads on {f['cores']} cores "
            f"over a weights-sized buffer, which fits in {f['buffer_fits_in']}: {f['read_bytes_per_s'] / 1e9:.1f} GB/s.")
    fastest = min((r["step_us"]["p50"] for r in runs), default=None)
    if fastest is not None and fastest < f["step_us"]:
        note += (f" A measured step ({fastest:,.0f} µs) beat this floor: numpy reads slower than the "
                 "step's kernels do, so here the floor is no bound.")
    note += f" onnxruntime ran the `{rts['ort'].get('spec', {}).get('flavor', '–')}` export. "
    note += executorch_note(rts["executorch"])
    parity = max((r["parity_max_abs"] for r in runs), default=float("nan"))
    return note + f"Largest |logits − PyTorch| over the first 16 steps, any run: {parity:.1e}."


def executorch_note(entry: dict) -> str:
    if "spec" not in entry:
        return ""
    spec = entry["spec"]
    note = "ExecuTorch ran rnnx's custom ops" if not spec["custom_ops_error"] else (
        f"ExecuTorch ran the plain-torch forms (with the custom ops: \"{spec['custom_ops_error']}\")")
    note += f", within {max(spec['error_vs_rnnx_model'].values()):.1e} of the rnnx model (relative to each output's scale)"
    for form, error in spec["prefill_failures"].items():
        note += f"; its {form}-form prefill program failed to lower (\"{error[:120]}\")"
    return note + (f"; prefill ran the {spec['prefill_form']} form. " if spec["prefill_form"] else
                   "; prefill ran the step program token by token. ")


NOTES = """Each runtime at each thread count ran in its own fresh process; resident memory includes that \
Python process and its imports (executorch.runtime, TVM and PyTorch eager all import torch). Where \
ExecuTorch cannot lower rnnx's custom ops, its programs trace each op's plain-torch form (the functions \
the custom op's kernel dispatches to), checked against the rnnx model to 1e-4; its prefill \
is a 1024-token program called T/1024 times with the state fed back, and RMSNorm's mean, the \
recurrent form's select/squeeze and the embedding stay outside XNNPACK. The step figures are the Python \
API of each runtime, per call, including its per-call overhead. The machine has 2 cores and is shared: \
figures are noisy."""


def machine() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:  # executorch comes with the bench extra only
            return "not installed"

    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    return {"cpu": cpu.group(1) if cpu else "unknown", "cores": os.cpu_count(),
            **{p: installed(p) for p in ("torch", "onnxruntime", "executorch", "apache-tvm")}}




def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return run_job(sys.argv[2])
    from rnnx.models import CONFIGS
    from rnnx.models.checkpoint import is_checkpoint

    def config_or_checkpoint(name: str) -> str:
        if name not in CONFIGS and not is_checkpoint(name):
            raise argparse.ArgumentTypeError(f"{name!r} is neither a built-in config nor a checkpoint directory")
        return str(Path(name).resolve()) if is_checkpoint(name) else name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", type=config_or_checkpoint, help="built-in configs or checkpoint "
                        "directories (config.json, *.safetensors)",
                        default=["ref-tiny", "ref-small", "ref-small-gdn", "ref-aaren"])
    parser.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES),
                        help="the runtimes to measure (rnnx_compiled always: the ratios are against it)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    parser.add_argument("--stream", type=int, default=100_000, help="tokens streamed through step")
    parser.add_argument("--steps", type=int, default=2000, help="timed steps (after 1000 warm-up steps)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.runtimes = sorted(set(args.runtimes) | {"rnnx_compiled"}, key=RUNTIMES.index)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": machine(),
               "args": {"configs": args.configs, "lengths": args.lengths, "stream": args.stream,
                        "steps": args.steps, "runtimes": args.runtimes}, "configs": {}}
    with tempfile.TemporaryDirectory(prefix="step_latency.") as scratch:
        for config in args.configs:
            (Path(scratch) / Path(config).name).mkdir()
            results["configs"][config] = measure_config(config, args, Path(scratch) / Path(config).name)
            # after each config, so that a long run that fails late keeps what it measured
            write_atomically(args.out / "step_latency.json", json.dumps(results, indent=2) + "\n")
    table = markdown(results, args.lengths)
    write_results(args.out, "step_latency", results, table)
    print(table)


if __name__ == "__main__":
    main()
