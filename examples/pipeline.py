"""What the examples share: the training loop (plain PyTorch on rnnx's chunk forms) and the path from a saved
checkpoint to a report: export, compile for each target, verify (under the target's emulator off the host),
the task metric of every backend next to PyTorch's (`rnnx.verify.quality`, what `rnnx verify --data` prints),
profile, and `results.json`."""
import dataclasses
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from rnnx.errors import RnnxError
from rnnx.export import export_model
from rnnx.fileio import atomic_file
from rnnx.models.config import CONFIGS
from rnnx.packaging import compile_export, profile
from rnnx.profile import this_machine
from rnnx.verify import quality, verify, verify_emulated

THREADS = 1  # the compiled code's worker threads: on 2 shared cores a second worker stalls (TOOLCHAIN-NOTES)
# The sensor examples' model: the Aaren classifier of `ref-aaren-motion` at ref-micro's size, which fits a
# Cortex-M4F's 1 MB of flash (its d_model 128 does not). Each example sets its channels and outputs.
MICRO_AAREN = dataclasses.replace(CONFIGS["ref-aaren-motion"], layers=2, d_model=64, heads=2, head_dim=32)


@dataclass(frozen=True)
class Checks:
    """The sizes of the parity checks (`rnnx verify`'s prompt, steps and stream) and of the host profile."""
    prompt: int
    steps: int
    stream: int
    profile_steps: int
    prefill_length: int


def fit(model: torch.nn.Module, loss_of_step: Callable[[int], torch.Tensor], *, steps: int, lr: float,
        weight_decay: float = 0.1) -> dict:
    """AdamW on `loss_of_step(step)`, gradients clipped to norm 1, a linear warm-up over the first 5% of the
    steps then a cosine decay to a tenth of `lr`. Returns the log: the loss every 1/40 of the run, seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warmup if s < warmup else
                                                 0.1 + 0.45 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))))
    curve, start = [], time.perf_counter()
    model.train()
    for step in range(steps):
        loss = loss_of_step(step)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % max(1, steps // 40) == 0 or step == steps - 1:
            curve.append([step, round(loss.item(), 5)])
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.perf_counter() - start:6.0f} s", flush=True)
    model.eval()
    return {"steps": steps, "lr": lr, "seconds": round(time.perf_counter() - start, 1), "loss_curve": curve}


def deploy(checkpoint: Path, out: Path, *, targets: tuple[str, ...], data: Path, board_data: Path,
           checks: Checks) -> dict:
    """Export `checkpoint` to `out/export`, compile it for each of `targets` (`out/<target>`; a target whose
    memory the model does not fit is skipped, with why), verify each artifact, and score the task on `data`
    (on `board_data`, a subset, for the emulated boards). Returns the report: per backend the metric, PyTorch's
    on the same data and whether they agree; per target its verify checks and profile; seconds per stage."""
    seconds, report = {}, {"targets": {}, "quality": {}}
    start = time.perf_counter()
    export = out / "export"
    export_model(str(checkpoint), export)
    _score(report, "onnxruntime", export, data, emulate=False)
    seconds["export"] = _lap(start)
    for target in targets:
        artifact, begin = out / target, time.perf_counter()
        try:
            compile_export(export, target, artifact)
        except RnnxError as e:  # e.g. the weights exceed the board's flash: the numbers are in the message
            report["targets"][target] = {"skipped": str(e)}
            print(f"{target}: skipped: {e}", flush=True)
            continue
        info = report["targets"][target] = {"artifact": str(artifact), "compile_seconds": _lap(begin)}
        host = target == "host"
        backend, results = (verify(artifact, prompt=checks.prompt, steps=checks.steps, stream=checks.stream)
                            if host else verify_emulated(artifact, prompt=checks.prompt, steps=checks.steps))
        info["verify"] = {"backend": backend, "passed": all(c.passed for c in results),
                          "checks": [c.as_dict() for c in results]}
        print(f"{target}: verify {'passed' if info['verify']['passed'] else 'FAILED'} ({len(results)} checks)",
              flush=True)
        _score(report, backend, artifact, data if host else board_data, emulate=not host)
        info["profile"] = _profile(artifact, checks) if host else _footprint(artifact)
        seconds[target] = _lap(begin)
    report["passed"] = (all(q["passed"] for q in report["quality"].values())
                        and all(t["verify"]["passed"] for t in report["targets"].values() if "verify" in t))
    report["seconds"] = seconds
    return report


def _score(report: dict, backend: str, path: Path, data: Path, emulate: bool) -> None:
    q = quality(path, data, emulate=emulate)
    name = next(n for n in q.values if n != "PyTorch")
    report["quality"][backend] = {"metric": q.metric, "value": q.values[name], "pytorch": q.values["PyTorch"],
                                  "count": q.count, "data": str(data), "passed": q.passed, "detail": q.detail}
    print(f"{backend}: {q.metric} {q.values[name]:.4f} (PyTorch {q.values['PyTorch']:.4f} on the same "
          f"{q.count:,}) {'agrees' if q.passed else 'DIFFERS'}", flush=True)


def _profile(artifact: Path, checks: Checks) -> dict:
    """The host's step latency, prefill speed and memory, without the per-step series (`rnnx profile` plots it)."""
    report = profile(artifact, tokens=checks.profile_steps, prefill_lengths=[checks.prefill_length], threads=THREADS)
    return {k: v for k, v in report.items() if k != "series"}


def _footprint(artifact: Path) -> dict:
    """A microcontroller's flash, RAM and instructions per step; a board's program is profiled on the board."""
    try:
        return profile(artifact)
    except RnnxError as e:
        return {"not_here": str(e)}


def _lap(start: float) -> float:
    return round(time.perf_counter() - start, 1)


def write_data(path: Path, text: str | None = None, **arrays) -> Path:
    """Write a data file the scoring reads (`rnnx verify --data`), atomically: `text` as UTF-8, else `arrays` as
    an .npz of plain arrays. Returns `path`."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        if text is not None:
            f.write(text.encode())
        else:
            np.savez(f, **arrays)
    return path


def write_results(out: Path, results: dict) -> Path:
    path = out / "results.json"
    with atomic_file(path) as f:
        f.write((json.dumps(results, indent=2, default=str) + "\n").encode())
    return path


def header(mode: str, settings) -> dict:
    """What every results.json starts with: how it was made and on what."""
    return {"mode": mode, "command": " ".join(["python", *sys.argv]), "machine": this_machine(),
            "torch_threads": torch.get_num_threads(), "settings": asdict(settings)}


def main(run: Callable[[], int]) -> None:
    """An example's entry point: a user's mistake (no such dataset, a bad --out) is one line and exit 2."""
    try:
        sys.exit(run())
    except RnnxError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
