"""The `rnnx` command. Each command parses arguments and hands off to a plain function of the library."""
import functools
import json
import os
import sys
import time
import traceback
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import RnnxError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
debug = False  # --debug, set before any command runs


@app.callback()
def main(debug_option: bool = typer.Option(False, "--debug", help="On an internal error (a bug in rnnx), print "
                                           "its traceback here instead of writing it to a file.")):
    """Compile efficient-attention models into recurrent, constant-memory executables."""
    global debug
    debug = debug_option


def report_errors(command):
    """A user's mistake (`RnnxError`) is one line and exit code 2. Anything else is a bug in rnnx, and must not
    look like the user's: one line saying so and where its traceback went (stderr with --debug), exit code 1."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        stderr = Console(stderr=True, soft_wrap=True, highlight=False)
        try:
            return command(*args, **kwargs)
        except RnnxError as e:
            stderr.print(f"[bold red]error:[/] {escape(str(e))}")
            sys.exit(2)
        except KeyboardInterrupt:
            stderr.print("interrupted")
            sys.exit(130)
        except BrokenPipeError:  # the reader of our output went away (`rnnx targets | head`): nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush cannot fail too
            sys.exit(141)
        except Exception as e:
            trace = traceback.format_exc()
            if debug:
                print(trace, file=sys.stderr, end="")
                where = "traceback above"
            else:
                where = _write_traceback(trace)
            message = next((line for line in str(e).splitlines() if line.strip()), None)
            what = f"{type(e).__name__}: {message}" if message else type(e).__name__
            stderr.print(f"[bold red]error:[/] internal error in rnnx (a bug, not your input): {escape(what)}; "
                         f"{escape(where)}")
            sys.exit(1)
    return wrapper


def _write_traceback(trace: str) -> str:
    """Write a bug's traceback to $RNNX_HOME/crash/ (`fileio.rnnx_home`), atomically, named by time and pid;
    say where it went, or print it here when it cannot be written."""
    from .fileio import atomic_file, rnnx_home

    path = rnnx_home() / "crash" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            f.write(trace.encode())
        return f"traceback in {path}"
    except OSError as e:
        print(trace, file=sys.stderr, end="")
        return f"traceback above (cannot write {path}: {e.strerror})"


@app.command("ops")
@report_errors
def ops_command(head_dim: int = typer.Option(64, help="Dk = Dv for the bytes-per-head column."),
                window: int = typer.Option(512, help="W for sliding_window_attention's bytes per head."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the registered ops: forms, state tensors and state bytes per head."""
    from .ops.registry import describe

    rows = describe(dict(Dk=head_dim, Dv=head_dim, window=window))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"rnnx ops (state bytes per head at D={head_dim}, W={window})")
    table.add_column("op", no_wrap=True)
    table.add_column("forms", no_wrap=True)
    table.add_column("state per head", no_wrap=True)
    table.add_column("bytes/head", justify="right")
    for r in rows:
        table.add_row(r["op"], "\n".join(r["forms"]), escape("\n".join(r["state"])), f"{r['bytes_per_head']:,}")
    console.print(table)


@app.command("export")
@report_errors
def export_command(model: str = typer.Argument(..., help="A built-in config (ref-tiny, ...), a checkpoint directory "
                                             "(config.json, *.safetensors, tokenizer.json) or path/to/file.py:factory."),
                   out: Path = typer.Option(..., "-o", "--out", help="Directory to write (replaced atomically)."),
                   flavor: str = typer.Option("portable", help="portable | standard (ONNX LinearAttention, opset 27) | ort"),
                   seed: int = typer.Option(0, help="Seed of a built-in model's weights."),
                   batch_size: int = typer.Option(1, min=1, help="Batch dimension of both graphs."),
                   tokenizer: Path = typer.Option(None, help="The model's tokenizer.json (Hugging Face tokenizers), "
                                                  "carried into the export and its artifacts for `rnnx run`.")):
    """Export a model to ONNX: prefill.onnx, step.onnx and manifest.json."""
    from .export import export_model

    start = time.perf_counter()
    manifest = export_model(model, out, flavor=flavor, seed=seed, batch_size=batch_size, tokenizer=tokenizer)
    ops = ", ".join(f"{o.name} as {o.spelling}" for o in manifest.ops)
    console.print(f"exported {model} ({flavor}) to {out} in {time.perf_counter() - start:.1f} s: {ops}; "
                  f"state {manifest.state_bytes:,} bytes in {len(manifest.state)} tensors", highlight=False)


@app.command("quantize")
@report_errors
def quantize_command(export: Path = typer.Argument(..., help="An export directory (rnnx export)."),
                     out: Path = typer.Option(..., "-o", "--out", help="Directory to write (replaced atomically)."),
                     weights: str = typer.Option(..., help="int8 (a scale per output channel) | int4 (a scale per "
                                                 "--group weights along K; opset 21)."),
                     group: int = typer.Option(32, help="int4's block size along K; it must divide every K quantized."),
                     head: bool = typer.Option(False, "--head", help="Quantize the output head too."),
                     embedding: bool = typer.Option(False, "--embedding", help="Quantize the input embedding too "
                                                    "(int8 rows)."),
                     activations: str = typer.Option(None, help="int8: quantize each quantized MatMul's input too "
                                                     "(symmetric, per token), for integer dot products.")):
    """Quantize an export's weights to int8 or int4, in standard ONNX (DequantizeLinear -> MatMul): a new export.
    The recurrence's decay, gate, β and dt columns, norms and convolutions stay fp32; the head and the embedding
    too unless asked."""
    from .quantize import quantize_export

    q = quantize_export(export, out, weights, group=group, head=head, embedding=embedding,
                        activations=activations).quantization
    quantized = sum(w.bits != 32 for w in q.weights)
    kept = sum(k.stop - k.start for w in q.weights for k in w.kept if w.bits != 32)
    how = weights + (f", group {group}" if weights == "int4" else "") + (f", {activations} activations" if activations else "")
    console.print(f"quantized {export} to {out} ({how}): "
                  f"{quantized} of {len(q.weights)} weight tensors, {kept:,} recurrence columns kept fp32; weights "
                  f"{q.bytes_before:,} -> {q.bytes_after:,} bytes", highlight=False, soft_wrap=True)


@app.command("verify")
@report_errors
def verify_command(path: Path = typer.Argument(..., help="An export directory or a compiled artifact."),
                   prompt: int = typer.Option(100, min=1, help="Prefill length."),
                   steps: int = typer.Option(32, min=1, help="Steps after the prefill."),
                   stream: int = typer.Option(1000, min=0, help="Length of the step stream checked for drift."),
                   seed: int = typer.Option(0, help="Seed of the test tokens."),
                   emulate: bool = typer.Option(False, "--emulate", help="Run an artifact's own program for its "
                                                "target under the target's emulator (qemu) instead."),
                   data: Path = typer.Option(None, help="Also score the task on real data next to PyTorch: text (a "
                                             "token model: bits per byte) or an .npz of features with labels "
                                             "(accuracy) or targets (MSE); see rnnx/verify/quality.py."),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """Check an export or artifact against PyTorch (and an artifact against onnxruntime too): prefill, steps,
    prefill + steps, long stream. With --emulate, an artifact for another machine runs under its emulator.
    With --data, the task metric too. A quantized export or artifact: against its own graphs, and the KL of its
    predictions from the fp32 export's along the stream. Exit 1 on a failure."""
    from .verify import drift, quality, verify, verify_emulated

    def note(text: str):
        Console(stderr=True).print(f"note: {escape(text)}")

    if emulate:
        backend, checks = verify_emulated(path, prompt=prompt, steps=steps, seed=seed, on_note=note)
    else:
        backend, checks = verify(path, prompt=prompt, steps=steps, stream=stream, seed=seed, on_note=note)
    task = quality(path, data, emulate=emulate) if data is not None else None
    kl = drift(path, steps=stream, seed=seed) if stream and not emulate else None
    passed = all(c.passed for c in checks) and (task is None or task.passed) and (kl is None or kl.flat)
    if as_json:
        print(json.dumps({"path": str(path), "backend": backend, "passed": passed,
                          "checks": [c.as_dict() for c in checks]} | ({"quality": task.as_dict()} if task else {})
                         | ({"drift": kl.as_dict()} if kl else {}), indent=2))
    else:
        table = Table(title=f"rnnx verify {path} ({backend})",
                      caption="pass: max abs error <= atol + rtol · max|reference|, or normalized MSE <= nmse "
                              "(quantized activations; rnnx/numerics.py)")
        for column in ("check", "max abs error", "max rel error", "nmse", "tolerance", "pass"):
            table.add_column(column, justify="left" if column == "check" else "right")
        for c in checks:
            table.add_row(c.name, f"{c.max_abs:.2e}", f"{c.max_rel:.2e}", f"{c.nmse:.1e}", str(c.tolerance),
                          "[green]yes[/]" if c.passed else "[bold red]NO[/]")
        if checks:
            console.print(table)
        if kl is not None:
            console.print(drift_table(kl))
        if task is not None:
            console.print(quality_table(task, data))
    sys.exit(0 if passed else 1)


def drift_table(kl) -> Table:
    from .numerics import KL_FLAT_RATIO

    table = Table(title=f"KL(fp32 || quantized) per step: {kl.name}",
                  caption=f"flat: the last tenth's mean within {KL_FLAT_RATIO:g}x the second's")
    for column in ("steps", "mean KL (nats)"):
        table.add_column(column, justify="right")
    bucket = kl.steps // len(kl.kl)
    for i, value in enumerate(kl.kl):
        table.add_row(f"{i * bucket:,}–{(i + 1) * bucket if i < len(kl.kl) - 1 else kl.steps:,}", f"{value:.3e}")
    table.add_row("all", f"{kl.mean:.3e}  " + ("[green]flat[/]" if kl.flat else "[bold red]GROWS[/]"))
    return table


def quality_table(task, data: Path) -> Table:
    table = Table(title=f"{task.metric} on {data} ({task.count:,} scored)", caption=f"pass: {task.rule}")
    table.add_column("backend")
    table.add_column(task.metric, justify="right")
    for name, value in task.values.items():
        table.add_row(name, f"{value:.4f}")
    table.add_row("pass", ("[green]yes[/]" if task.passed else "[bold red]NO[/]") +
                  (f" ({escape(task.detail)})" if task.detail else ""))
    return table


@app.command("compile")
@report_errors
def compile_command(export: Path = typer.Argument(..., help="An export directory (rnnx export)."),
                    target: str = typer.Option("host", help="A target name; `rnnx targets` lists them."),
                    out: Path = typer.Option(..., "-o", "--out", help="Artifact directory to write (atomically).")):
    """Compile an export with TVM for a target: fused in-place kernels, scheduled dense layers."""
    from .packaging import compile_export

    start = time.perf_counter()
    manifest = compile_export(export, target, out)
    console.print(f"compiled {export} for {manifest.target.name} to {out} in {time.perf_counter() - start:.1f} s; "
                  f"state {manifest.export.state_bytes:,} bytes", highlight=False)
    if static := manifest.static:
        console.print(f"static arena {static.arena_bytes:,} B (state {static.state_bytes:,} B, kernel scratch "
                      f"{static.scratch_pool_bytes:,} B), weights {static.weight_bytes:,} B, kernel code "
                      f"{static.kernel_code_bytes:,} B; no heap: the C bundle is in {out / static.bundle}",
                      highlight=False)
    for kind, command in manifest.link.items():
        console.print(f"{kind}: no linker for the target here; link it with: {command}", highlight=False, markup=False)


@app.command("targets")
@report_errors
def targets_command(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """List the compile targets: what each runs on, how it is packaged and emulated, and what it needs."""
    from .targets import TARGETS, describe

    rows = [describe(t) for t in TARGETS.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="rnnx targets")
    for column in ("target", "runs on", "packaging", "emulated here by", "RPC key", "needs installed"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], r["description"], r["packaging"], r["emulator"] or "-",
                      r["rpc_key"] or "-", escape("\n".join(r["needs"]) or "-"))
    console.print(table)


@app.command("run")
@report_errors
def run_command(model: str = typer.Argument(..., help="A compiled artifact directory, or a built-in config (PyTorch)."),
                prompt: str = typer.Option("The quick brown fox", help="Text to prefill."),
                tokens: int = typer.Option(64, min=1, help="Tokens to generate (of the model's tokenizer; bytes for "
                                           "a byte-level model)."),
                temperature: float = typer.Option(1.0, min=0.0, help="0 for greedy."),
                seed: int = typer.Option(0, help="Seed of sampling (and of a built-in model's weights)."),
                threads: int = typer.Option(None, min=1, help="Worker threads of a compiled artifact (default: every CPU)."),
                data: Path = typer.Option(None, help="A model of float vectors: an .npz of features (as rnnx verify "
                                          "--data reads) whose sequences it streams, instead of a prompt.")):
    """Generate text: the prompt encoded with the model's tokenizer (or as UTF-8 bytes) and prefilled in chunks,
    then one recurrent step per token, the text printed as it comes; then tokens/s. A classifier or forecaster
    streams each sequence of --data and prints its class (or forecast) after the sequence's last step."""
    from .models import EagerModel, Generation, build_model
    from .tokenizer import byte_tokenizer, load_tokenizer

    if Path(model).is_dir():
        from .runtime import Session

        steps = Session(Path(model), threads=threads)
        if steps.signature.input == "features":
            return _run_features(steps, model, data)
        if data is not None:
            raise RnnxError(f"--data is for a model of float vectors; {model} takes tokens: give --prompt")
        tokenizer = load_tokenizer(steps.path, steps.manifest)
        what = f"compiled for {steps.manifest.target.name}"
    else:
        built = build_model(model, seed=seed)
        steps, tokenizer = EagerModel(built), byte_tokenizer(built.cfg.vocab_size, model)
        what = f"PyTorch eager, random weights from seed {seed}"
    prompt_ids = tokenizer.encode(prompt)
    generation = Generation(steps, prompt_ids, tokens, temperature, seed)
    console.print(f"[bold]{escape(model)}[/] ({what}; prompt of {len(prompt_ids)} tokens, {escape(tokenizer.name)})",
                  highlight=False, soft_wrap=True)  # one line, however long the tokenizer's path
    text = tokenizer.stream()
    for token in generation:
        _print_now(text.step(token))
    _print_now(text.finish() + "\n")
    console.print(f"prefill {generation.prefill_tokens_per_s:,.0f} tokens/s · "
                  f"step {generation.step_tokens_per_s:,.0f} tokens/s")


def _run_features(session, model: str, data: Path | None) -> None:
    import numpy as np

    from .verify.quality import read_sequences

    sig = session.signature
    if data is None:
        raise RnnxError(f"{model} takes float32 features ({sig.input_size} per step), not a prompt: give --data "
                        f"FILE.npz with an array 'features' (N, T, {sig.input_size})")
    x, lengths, arrays = read_sequences(data, sig)
    table = Table(title=f"rnnx run {model} on {data} ({sig.output} after each sequence's last step)")
    for column in ("sequence", "steps", *(("class", "probability") if sig.output == "scores" else ("forecast",)),
                   *(("label",) if "labels" in arrays and sig.output == "scores" else ())):
        table.add_column(column, justify="left" if column in ("class", "label", "forecast") else "right")
    seconds = 0.0
    for i, n in enumerate(lengths):
        session.reset()
        start = time.perf_counter()
        last = session.prefill(x[i:i + 1, :n])[0, -1].astype(np.float64)
        seconds += time.perf_counter() - start
        if sig.output == "scores":
            p = np.exp(last - last.max())
            k = int(p.argmax())
            row = [sig.labels[k], f"{p[k] / p.sum():.3f}"]
            if "labels" in arrays:
                row.append(sig.labels[arrays["labels"][i]] if 0 <= arrays["labels"][i] < len(sig.labels) else "?")
        else:
            row = [" ".join(f"{v:.4g}" for v in last)]
        table.add_row(str(i), str(n), *row)
    console.print(table)
    console.print(f"prefill {lengths.sum() / seconds:,.0f} steps/s")


def _print_now(text: str) -> None:
    """Write generated text as it comes: a terminal sees each piece at once, not at the end of a line."""
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


@app.command("profile")
@report_errors
def profile_command(artifact: Path = typer.Argument(..., help="A compiled artifact directory."),
                    tokens: int = typer.Option(1000, min=1, help="Tokens streamed through step."),
                    prefill: list[int] = typer.Option([1024], help="Prefill lengths to time."),
                    threads: int = typer.Option(None, min=1, help="Worker threads (default: every CPU)."),
                    rpc: str = typer.Option(None, help="Profile on a board: its RPC server's HOST:PORT."),
                    tracker: str = typer.Option(None, help="Profile on a board: an RPC tracker's HOST:PORT."),
                    key: str = typer.Option(None, help="The board's key at the tracker (default: the target's)."),
                    timeout: float = typer.Option(30.0, min=1, help="Seconds to wait for the board."),
                    plot: Path = typer.Option(None, help="Write the latency and memory plots (PNG) here."),
                    baseline: Path = typer.Option(None, help="Another artifact profiled the same way and plotted "
                                                  "beside (e.g. a softmax attention with a KV cache)."),
                    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")):
    """Step latency (p50, p95, p99, max) by position, prefill tokens/s and memory of an artifact, on this machine or
    on a board over TVM RPC; for a microcontroller's C bundle, its footprint and instructions per step on
    the emulated board."""
    from .packaging import profile
    from .profile.report import footprint_table, report_table

    def measure(path: Path) -> dict:
        return profile(path, tokens=tokens, prefill_lengths=prefill, threads=threads, rpc=rpc, tracker=tracker,
                       key=key, timeout=timeout)

    report = measure(artifact)
    base = measure(baseline) if baseline else None
    plots = []
    if plot and "step_us" in report:
        from .profile.plots import plot_report

        plots = plot_report(report, plot, baseline=base, command=" ".join(["rnnx", *sys.argv[1:]]))
    if as_json:
        print(json.dumps(report | ({"baseline": base} if base else {}) | ({"plots": list(map(str, plots))} if plots else {}),
                         indent=2, default=str))
        return
    for path, r in ((artifact, report), (baseline, base)):
        if r:
            console.print((report_table if "step_us" in r else footprint_table)(r, f"rnnx profile {path}"))
    for path in plots:
        console.print(f"wrote {path}", highlight=False)
