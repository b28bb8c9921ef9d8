"""Forecasting a body-worn accelerometer stream a quarter of a second ahead, one sample per step, end to end:
train an Aaren forecaster (plain PyTorch on rnnx's chunk forms) -> an rnnx checkpoint -> export -> compile for
the host, raspberry-pi-5 and cortex-m4f -> verify -> test MSE on every backend, next to two baselines'
(persistence, the training mean) -> profile -> results.json. The series is Daphnet's S06R02E0 (freezing of gait: 3-axis
accelerometers on the ankle, thigh and trunk, 64 Hz), which ships inside aeon's wheel.

    python examples/forecast/run.py [--quick] [--out DIR]

--quick trains for seconds and scores a few test windows (the tests run it). See README.md beside this file.
"""
import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import rnnx.models.families  # noqa: F401  (registers the families)
from rnnx.errors import RnnxError
from rnnx.models.checkpoint import save_checkpoint
from rnnx.models.reference import ReferenceModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pipeline  # noqa: E402

HERE = Path(__file__).resolve().parent
SERIES = "Daphnet_S06R02E0"
HORIZON = 16        # samples ahead: 0.25 s at 64 Hz
TRAIN_FRACTION = 0.7  # the first 70% of the recording trains, the rest tests (chronological: no leak)
CONFIG = dataclasses.replace(pipeline.MICRO_AAREN, name="forecast-daphnet", input_channels=9, output="forecast",
                             output_size=9, labels=None)  # Aaren, as in the paper's forecasting setting
TARGETS = ("host", "raspberry-pi-5", "cortex-m4f")


@dataclass(frozen=True)
class Settings:
    """What --quick shrinks: training (`steps` of `batch` random windows of `context` samples), the test
    windows of `window` samples (all that fit; the first `board_windows` on the emulated boards) and the checks."""
    steps: int
    batch: int
    context: int
    lr: float
    window: int
    test_windows: int | None
    board_windows: int
    checks: pipeline.Checks


FULL = Settings(steps=800, batch=16, context=256, lr=3e-3, window=256, test_windows=None, board_windows=4,
                checks=pipeline.Checks(prompt=64, steps=16, stream=256, profile_steps=1000, prefill_length=256))
QUICK = Settings(steps=10, batch=4, context=128, lr=3e-3, window=128, test_windows=4, board_windows=1,
                 checks=pipeline.Checks(prompt=16, steps=4, stream=16, profile_steps=50, prefill_length=32))


def load() -> tuple[np.ndarray, list[str]]:
    """The recording `(T, 9)` float32 in the sensors' units (mg) and its channel names."""
    import aeon

    path = Path(aeon.__file__).parent / "datasets" / "data" / SERIES / "S06R02E0.csv"
    if not path.is_file():
        raise RnnxError(f"{path} is not in this aeon: the series {SERIES} ships with aeon 1.6")
    header = path.open().readline().strip().split(",")
    channels = header[1:-1]  # between the timestamp and the anomaly label
    return np.loadtxt(path, np.float32, delimiter=",", skiprows=1, usecols=range(1, 1 + len(channels))), channels


def windows(series: np.ndarray, length: int, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint windows of `length` samples and, per sample, the one `HORIZON` later: `(N, length, C)` each."""
    n = (len(series) - HORIZON) // length if count is None else count
    starts = np.arange(n) * length
    index = starts[:, None] + np.arange(length)
    return series[index], series[index + HORIZON]


def train(series: np.ndarray, settings: Settings, seed: int) -> tuple[ReferenceModel, dict]:
    """MSE of the forecast at every step, inputs and targets standardised per channel; the standardisation is
    then folded into the input and output projections, so that the saved model reads and writes mg."""
    torch.manual_seed(seed)
    model = ReferenceModel(CONFIG)
    mean, std = series.mean(0), series.std(0) + 1e-6
    x = torch.from_numpy((series - mean) / std)
    offsets = torch.arange(settings.context)

    def loss_of_step(step: int) -> torch.Tensor:
        index = torch.randint(0, len(x) - settings.context - HORIZON, (settings.batch, 1)) + offsets
        forecast, _ = model(x[index], state=None, mode="chunk")
        return F.mse_loss(forecast, x[index + HORIZON])

    log = pipeline.fit(model, loss_of_step, steps=settings.steps, lr=settings.lr)
    m, s = torch.from_numpy(mean), torch.from_numpy(std)
    with torch.no_grad():  # embed(x) = W (x - m) / s + b;  the forecast in mg = s * head(h) + m
        model.embed.bias -= model.embed.weight @ (m / s)
        model.embed.weight /= s
        model.head.weight *= s[:, None]
        model.head.bias.mul_(s).add_(m)
    return model, log | {"batch": settings.batch, "context": settings.context}


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds of training, a few test windows (for the tests)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where everything is written")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    series, channels = load()
    split = int(len(series) * TRAIN_FRACTION)
    features, targets = windows(series[split:], settings.window, settings.test_windows)
    baselines = {"persistence": float(np.mean((features - targets) ** 2)),  # the value now, a quarter second on
                 "training_mean": float(np.mean((targets - series[:split].mean(0)) ** 2))}
    results = pipeline.header("quick" if args.quick else "full", settings) | {"data": {
        "series": SERIES, "source": "aeon's wheel (aeon/datasets/data)", "channels": channels, "samples": len(series),
        "rate_hz": 64, "horizon_samples": HORIZON, "train_samples": split, "test_windows": len(features),
        "window_samples": settings.window, "baseline_mse": baselines}}
    model, results["training"] = train(series[:split], settings, args.seed)
    checkpoint = out / "checkpoint"
    save_checkpoint(model, CONFIG, checkpoint)
    board = slice(settings.board_windows)
    results |= pipeline.deploy(checkpoint, out, targets=TARGETS,
                               data=pipeline.write_data(out / "data" / "test.npz", features=features, targets=targets),
                               board_data=pipeline.write_data(out / "data" / "test_board.npz", features=features[board],
                                                             targets=targets[board]),
                               checks=settings.checks)
    path = pipeline.write_results(out, results)
    mse, best = results["quality"]["onnxruntime"]["pytorch"], min(baselines, key=baselines.get)
    print(f"test MSE {HORIZON} samples ahead: PyTorch {mse:,.0f} mg², the better baseline ({best}) "
          f"{baselines[best]:,.0f} mg² (ratio {mse / baselines[best]:.3f}); every backend agrees: {results['passed']}; "
          f"{path}")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    pipeline.main(run)
