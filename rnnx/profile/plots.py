"""PNG plots of profile reports: step latency against position in the stream, and memory against tokens
streamed, for a model and, beside it, a baseline (a softmax attention whose KV cache grows)."""
import shlex
import sys
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..fileio import atomic_file

SMOOTHING = 64  # tokens in the running median drawn over each latency series


def plot_report(report: dict, out_dir: Path, baseline: dict | None = None, command: str | None = None) -> list[Path]:
    """Write `<model>-latency.png` and `<model>-memory.png` for `report` (and `baseline`, another report, if
    given) into `out_dir` (created if its parent exists); returns their paths. `command`, for the titles, defaults to
    this process's command line."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise RnnxError(f"cannot write plots to {out_dir}: {out_dir.parent} does not exist")
    out_dir.mkdir(exist_ok=True)
    command = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    reports = [r for r in (report, baseline) if r is not None]
    threads = f"{report['threads']} thread{'' if report['threads'] == 1 else 's'}"
    subtitle = f"{report['target']} on {report['machine']}, {threads}\n$ {command}"

    fig, ax = plt.subplots(figsize=(10, 5.5))
    top = 0.0
    for r, color in zip(reports, ("tab:blue", "tab:red")):
        x, y = np.array(r["series"]["position"]), np.array(r["series"]["step_us"]) / 1e3
        ax.plot(x, y, ",", color=color, alpha=0.3)
        top = max(top, np.percentile(y, 99.5))  # a few preempted steps would squash the curves
        ax.plot(x, _running_median(y), color=color, lw=2,
                label=f"{r['model']} (median of {SMOOTHING}; p50 {r['step_us']['p50'] / 1e3:.2f} ms)")
    ax.set(xlabel="position in the stream (tokens already seen)", ylabel="step latency (ms)",
           title=f"Per-token step latency by position\n{subtitle}", ylim=(0, 1.15 * top))
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    paths = [_save(fig, out_dir / f"{report['model']}-latency.png")]

    fig, (rss_ax, state_ax) = plt.subplots(1, 2, figsize=(12, 5.5))
    for r, color in zip(reports, ("tab:blue", "tab:red")):
        series = r["series"]
        rss_ax.plot(series["memory_tokens"], np.array(series["rss_kb"]) / 1024, color=color, lw=2, label=r["model"])
        state_ax.plot(series["memory_tokens"], np.array(series["state_bytes_in_use"]) / 2**20, color=color, lw=2,
                      label=f"{r['model']} ({r['memory']['state_bytes'] / 2**20:.1f} MiB allocated)")
    rss_ax.set(xlabel="tokens streamed", ylabel="resident memory of the process (MiB)",
               title="Resident memory (VmRSS; caches are allocated up front)",
               ylim=(0, 1.2 * max(max(r["series"]["rss_kb"]) for r in reports) / 1024))
    state_ax.set(xlabel="tokens streamed", ylabel="MiB", title="Recurrent state / KV cache in use", ylim=(0, None))
    for a in (rss_ax, state_ax):
        a.legend(loc="best")
        a.grid(alpha=0.3)
    fig.suptitle(f"Memory against tokens streamed\n{subtitle}")
    paths.append(_save(fig, out_dir / f"{report['model']}-memory.png"))
    return paths


def _running_median(y: np.ndarray) -> np.ndarray:
    """Median of each `SMOOTHING`-token window ending at each point, `(N,)` for `y` `(N,)`."""
    if len(y) < SMOOTHING:
        return y
    windows = np.lib.stride_tricks.sliding_window_view(y, SMOOTHING)
    return np.concatenate([np.full(SMOOTHING - 1, np.nan), np.median(windows, axis=1)])


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_file(path) as f:
            fig.savefig(f, format="png", dpi=110)
    finally:
        plt.close(fig)
    return path
