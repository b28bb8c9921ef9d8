"""The profile report, built once from raw measurements whether they were taken here or on a board over RPC,
and its table."""
from pathlib import Path

import numpy as np
from rich.table import Table

from ..manifest import ArtifactManifest, ExportManifest


def build_report(artifact: Path, manifest: ArtifactManifest, *, machine: str, threads: int | None, positions: np.ndarray,
                 latencies_s: np.ndarray, prefill: dict, memory: dict, memory_tokens: list[int],
                 memory_rss_kb: list[int]) -> dict:
    """The report of `rnnx profile` (`--json` prints it as is).

    `positions` `(N,)`: tokens already in the state at each timed step; `latencies_s` `(N,)` those steps'
    seconds; `prefill`: length -> tokens/s; `memory`: the scalar memory figures; `memory_tokens`,
    `memory_rss_kb` `(M,)`: resident memory sampled when that many tokens had been streamed."""
    return {
        "artifact": str(artifact), "model": manifest.export.model.source, "target": manifest.target.name,
        "machine": machine, "threads": threads,
        "tokens": len(latencies_s),
        "step_us": {f"p{q}": float(np.percentile(latencies_s, q) * 1e6) for q in (50, 95, 99)}
                   | {"max": float(latencies_s.max() * 1e6), "mean": float(latencies_s.mean() * 1e6)},
        "prefill_tokens_per_s": prefill,
        "memory": memory | {"library_bytes": sum((Path(artifact) / lib).stat().st_size
                                                 for lib in manifest.libraries.values())},
        "series": {"position": [int(p) for p in positions], "step_us": [float(s * 1e6) for s in latencies_s],
                   "memory_tokens": [int(t) for t in memory_tokens], "rss_kb": [int(r) for r in memory_rss_kb],
                   "state_bytes_in_use": [state_bytes_in_use(manifest.export, t) for t in memory_tokens]},
    }


def state_bytes_in_use(export: ExportManifest, tokens: int) -> int:
    """Bytes of the artifact's state that hold information after `tokens` tokens: all of a linear state from
    the first token; of a KV cache (an op's state tensor with a `window` dimension) min(tokens, W) of its W
    slots. The model's own state (a conv buffer, a position) is whole from the first token."""
    from ..ops.registry import OPS

    total = 0
    for s in export.state:
        declared = next((t for t in OPS[s.owner].state if s.name.endswith(t.name)), None) if s.owner in OPS else None
        if declared is not None and "window" in declared.shape:
            window = s.shape[declared.shape.index("window")]
            total += int(s.bytes * min(tokens, window) / window)
        else:
            total += s.bytes
    return total


def report_table(report: dict, title: str) -> Table:
    """The rich table `rnnx profile` prints, for a local or a remote report."""
    memory = report["memory"]
    table = Table(title=f"{title} ({report['target']} on {report['machine']}, {report['threads'] or '?'} threads)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    step = report["step_us"]
    table.add_row(f"step latency p50 / p95 / p99 / max ({report['tokens']} tokens)",
                  f"{step['p50']:.1f} / {step['p95']:.1f} / {step['p99']:.1f} / {step['max']:.1f} µs")
    for length, rate in report["prefill_tokens_per_s"].items():
        table.add_row(f"prefill T={length}", f"{rate:,.0f} tokens/s")
    table.add_row("state", f"{memory['state_bytes']:,} B")
    if memory.get("scratch_bytes") is not None:
        table.add_row("step scratch (preallocated workspace)", f"{memory['scratch_bytes']:,} B")
    table.add_row("compiled libraries (weights baked in)", f"{memory['library_bytes']:,} B")
    table.add_row("resident after warm-up / after stream",
                  f"{memory['rss_after_warmup_kb']:,} / {memory['rss_after_stream_kb']:,} kB")
    table.add_row("process peak resident", f"{memory['peak_rss_kb']:,} kB")
    return table


def footprint_table(report: dict, title: str) -> Table:
    """The rich table of a microcontroller artifact's footprint (`rnnx.firmware.footprint`)."""
    table = Table(title=f"{title} ({report['target']}: footprint)", caption=f"instructions: {report['instructions_how']}")
    table.add_column("measure")
    table.add_column("bytes / count", justify="right")
    capacity = report["capacity"]
    for label, value in (("code (text)", report["code_bytes"]), ("weights (flash)", report["weight_bytes"]),
                         ("arena: state + scratch (RAM, static)", report["arena_bytes"]),
                         ("of which state", report["state_bytes"]), ("stack reserved", report["stack_bytes"])):
        table.add_row(label, f"{value:,}")
    table.add_row("flash used / capacity", f"{report['flash_bytes']:,} / {capacity['flash']:,}")
    table.add_row("RAM used / capacity", f"{report['ram_bytes']:,} / {capacity['ram']:,}")
    if per_step := report["instructions_per_step"]:
        table.add_row("instructions per step (mean, min-max)",
                      f"{per_step['mean']:,.0f} ({per_step['min']:,.0f}-{per_step['max']:,.0f})")
    return table
