"""Gesture and activity classification from accelerometer (and gyroscope) streams, one sample per step, end to
end: train an Aaren classifier (plain PyTorch on rnnx's chunk forms) -> an rnnx checkpoint -> export ->
compile for the host, raspberry-pi-5 and cortex-m4f -> verify -> test accuracy on every backend -> profile ->
results.json. The datasets are the ones inside aeon's wheel: BasicMotions (a smartwatch's accelerometer and
gyroscope, 4 activities) and PickupGestureWiimoteZ (a Wii remote's accelerometer, 10 gestures, sequences of
different lengths).

    python examples/motion/run.py [--quick] [--out DIR] [--dataset NAME ...]

--quick trains for seconds on BasicMotions alone and scores a few test sequences off the host (the tests run
it). See README.md beside this file.
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
DATASETS = ("BasicMotions", "PickupGestureWiimoteZ")
NOISE = 0.1  # augmentation, in standard deviations: a per-channel gain and additive noise per sample
TARGETS = ("host", "raspberry-pi-5", "cortex-m4f")


@dataclass(frozen=True)
class Settings:
    """What --quick shrinks: the datasets, training (`steps` of `batch` training sequences), the test
    sequences scored on the emulated boards (None: all, else that many spread over the test set) and the
    checks' sizes."""
    datasets: tuple[str, ...]
    steps: int
    batch: int
    lr: float
    board_sequences: int | None
    checks: pipeline.Checks


FULL = Settings(datasets=DATASETS, steps=600, batch=16, lr=3e-3, board_sequences=None,
                checks=pipeline.Checks(prompt=64, steps=16, stream=256, profile_steps=1000, prefill_length=100))
QUICK = Settings(datasets=DATASETS[:1], steps=10, batch=8, lr=3e-3, board_sequences=2,
                 checks=pipeline.Checks(prompt=16, steps=4, stream=16, profile_steps=50, prefill_length=32))


@dataclass(frozen=True)
class Split:
    features: np.ndarray  # (N, T, C) float32, each sequence zero-padded after its `lengths`
    lengths: np.ndarray   # (N,) int64
    labels: np.ndarray    # (N,) int64, indices into the dataset's classes


def load(name: str) -> tuple[Split, Split, list[str]]:
    """The dataset's train and test splits from the `.ts` files aeon ships, and its class names."""
    from aeon.datasets import load_from_ts_file
    import aeon

    folder = Path(aeon.__file__).parent / "datasets" / "data" / name
    if not folder.is_dir():
        raise RnnxError(f"dataset {name!r} is not among those aeon ships in {folder.parent}")
    raw = {split: load_from_ts_file(str(folder / f"{name}_{split.upper()}.ts")) for split in ("train", "test")}
    classes = sorted(set(raw["train"][1]), key=lambda c: (len(c), c))  # "10" after "9"

    def split(series, labels) -> Split:
        series = [np.asarray(s, np.float32).T for s in series]  # aeon's (C, T) -> a stream of (T, C)
        lengths = np.array([len(s) for s in series], np.int64)
        features = np.zeros((len(series), lengths.max(), series[0].shape[1]), np.float32)
        for i, s in enumerate(series):
            features[i, :len(s)] = s
        return Split(features, lengths, np.array([classes.index(c) for c in labels], np.int64))

    return split(*raw["train"]), split(*raw["test"]), classes


def train(data: Split, config, settings: Settings, seed: int) -> tuple[ReferenceModel, dict]:
    """Cross-entropy of the class scores after every sample of the second half of each training sequence
    (a streaming classifier should know the class before the end; the last sample alone overfits forty
    training sequences), on inputs standardised per channel, with a random gain and noise; the
    standardisation is then folded into the input projection, so that the saved model takes the sensor's
    raw values."""
    torch.manual_seed(seed)
    model = ReferenceModel(config)
    valid = np.arange(data.features.shape[1])[None, :] < data.lengths[:, None]
    mean, std = data.features[valid].mean(0), data.features[valid].std(0) + 1e-6
    x = torch.from_numpy((data.features - mean) / std * valid[..., None])
    lengths, labels = torch.from_numpy(data.lengths), torch.from_numpy(data.labels)

    def loss_of_step(step: int) -> torch.Tensor:
        pick = torch.randint(0, len(x), (settings.batch,))
        n, t = lengths[pick, None], int(lengths[pick].max())
        batch = x[pick, :t]
        batch = batch * (1 + NOISE * torch.randn(len(pick), 1, batch.shape[2])) + NOISE * torch.randn_like(batch)
        scores, _ = model(batch, state=None, mode="chunk")
        steps = torch.arange(t)[None]
        weight = ((steps >= n // 2) & (steps < n)).float()  # (batch, t): the second half of each sequence
        loss = F.cross_entropy(scores.transpose(1, 2), labels[pick, None].expand(-1, t), reduction="none")
        return (loss * weight).sum() / weight.sum()

    log = pipeline.fit(model, loss_of_step, steps=settings.steps, lr=settings.lr)
    with torch.no_grad():  # embed(x) = W (x - mean) / std + b = (W / std) x + (b - W (mean / std))
        weight = model.embed.weight
        model.embed.bias -= weight @ torch.from_numpy(mean / std)
        weight /= torch.from_numpy(std)
    return model, log | {"batch": settings.batch, "standardisation": {"mean": mean.tolist(), "std": std.tolist()}}


def run_dataset(name: str, settings: Settings, out: Path, seed: int) -> dict:
    train_split, test, classes = load(name)
    config = dataclasses.replace(pipeline.MICRO_AAREN, name=f"motion-{name}", input_channels=train_split.features.shape[2],
                                 output_size=len(classes), labels=classes)
    counts = np.bincount(test.labels, minlength=len(classes))
    results = {"data": {"dataset": name, "source": "aeon's wheel (aeon/datasets/data)", "classes": classes,
                        "channels": config.input_channels, "train_sequences": len(train_split.labels),
                        "test_sequences": len(test.labels), "lengths": [int(test.lengths.min()),
                                                                        int(max(test.lengths.max(), train_split.lengths.max()))],
                        "chance_accuracy": 1 / len(classes), "majority_class_accuracy": float(counts.max() / counts.sum())}}
    out.mkdir(parents=True, exist_ok=True)
    model, results["training"] = train(train_split, config, settings, seed)
    checkpoint = out / "checkpoint"
    save_checkpoint(model, config, checkpoint)
    every = np.linspace(0, len(test.labels) - 1, settings.board_sequences or len(test.labels)).round().astype(int)
    board = Split(*(a[every] for a in dataclasses.astuple(test)))  # spread over the test set: every class
    data = pipeline.write_data(out / "data" / "test.npz", **vars(test))
    board_data = pipeline.write_data(out / "data" / "test_board.npz", **vars(board))
    results |= pipeline.deploy(checkpoint, out, targets=TARGETS, data=data, board_data=board_data, checks=settings.checks)
    return results


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds of training on BasicMotions (for the tests)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where everything is written")
    parser.add_argument("--dataset", nargs="+", choices=DATASETS, help="the datasets to run (default: all; "
                                                                        "--quick: BasicMotions)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.dataset:
        settings = dataclasses.replace(settings, datasets=tuple(args.dataset))
    out = args.out.resolve()
    results = pipeline.header("quick" if args.quick else "full", settings)
    results["datasets"] = {name: run_dataset(name, settings, out / name, args.seed) for name in settings.datasets}
    path = pipeline.write_results(out, results)
    for name, r in results["datasets"].items():
        accuracy = ", ".join([f"PyTorch {r['quality']['onnxruntime']['pytorch']:.3f}",
                              *(f"{backend} {q['value']:.3f}" for backend, q in r["quality"].items())])
        print(f"{name}: test accuracy {accuracy} (chance {r['data']['chance_accuracy']:.3f}); "
              f"predictions identical across backends: {all(q['passed'] for q in r['quality'].values())}")
    passed = all(r["passed"] for r in results["datasets"].values())
    print(f"{'passed' if passed else 'FAILED'}: {path}")
    return 0 if passed else 1


if __name__ == "__main__":
    pipeline.main(run)
