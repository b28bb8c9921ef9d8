"""`rnnx verify --data`: the task metric of an export or artifact next to PyTorch's. A classifier's accuracy
on host and on the emulated Cortex-M4F board equals PyTorch's prediction for prediction; a token model's bits
per byte on text equal PyTorch's, and PyTorch's equal a cross-entropy computed here from its own logits; a data
file that does not fit the model is one line naming what is wrong. `rnnx run --data` streams the same file
through a classifier and prints PyTorch's predictions."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from rnnx.errors import RnnxError
from rnnx.models import build_model
from rnnx.verify import quality

MICRO = "ref-micro-motion"


@pytest.fixture(scope="module")
def motion_data(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "motion.npz"
    np.savez(path, features=rng.standard_normal((6, 30, 6)).astype(np.float32), labels=rng.integers(0, 4, 6),
             lengths=rng.integers(5, 31, 6))
    return path


@pytest.mark.parametrize("target, emulate", [("host", False), ("cortex-m4f", True)])
def test_classifier_accuracy_equals_pytorch_prediction_for_prediction(artifacts, motion_data, target, emulate):
    task = quality(artifacts(MICRO, target), motion_data, emulate=emulate)
    assert task.metric == "accuracy" and task.count == 6 and task.passed, task
    assert len(set(task.values.values())) == 1 and task.detail.startswith("0 of 6")


def test_bits_per_byte_of_text_equal_pytorch_and_a_direct_cross_entropy(exports, tmp_path):
    text = "The quick brown fox jumps over the lazy dog. " * 30  # 1,350 bytes: two prefills of 1,024 handing on state
    (tmp_path / "text.txt").write_text(text)
    task = quality(exports("ref-tiny"), tmp_path / "text.txt")
    assert task.metric == "bits per byte" and task.count == len(text) and task.passed, task
    tokens = torch.tensor([list(text.encode())])
    with torch.no_grad():
        logits, _ = build_model("ref-tiny")(tokens)
    nats = torch.nn.functional.cross_entropy(logits[0, :-1].double(), tokens[0, 1:], reduction="sum")
    assert task.values["PyTorch"] == pytest.approx(float(nats) / math.log(2) / len(text), rel=1e-6)


def test_data_that_does_not_fit_the_model_is_one_line(artifacts, tmp_path):
    artifact = artifacts(MICRO, "host")
    np.savez(tmp_path / "no_labels.npz", features=np.zeros((2, 5, 6), np.float32))
    np.savez(tmp_path / "channels.npz", features=np.zeros((2, 5, 3), np.float32), labels=np.zeros(2, np.int64))
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "plain.npy", np.zeros((2, 5, 6), np.float32))
    for name, message in (("no_labels.npz", "no_labels.npz has no array 'labels'"),
                          ("channels.npz", r"channels.npz: array 'features' has shape \[2, 5, 3\]; the model takes \(N, T, 6\)"),
                          ("pickled.npy", "not a readable .npz"),
                          ("plain.npy", "one unnamed array"),
                          ("missing.npz", "does not exist")):
        with pytest.raises(RnnxError, match=message):
            quality(artifact, tmp_path / name)


def test_run_streams_a_data_file_and_prints_each_sequence_s_class(artifacts, motion_data):
    artifact = artifacts(MICRO, "host")
    done = subprocess.run([sys.executable, "-m", "rnnx", "run", str(artifact), "--data", str(motion_data)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    with np.load(motion_data) as data:
        model = build_model(MICRO)
        with torch.no_grad():
            classes = [model(torch.from_numpy(data["features"][i:i + 1, :n]))[0][0, -1].argmax().item()
                       for i, n in enumerate(data["lengths"])]
    rows = [line.split("│")[1:-1] for line in done.stdout.splitlines() if line.startswith("│")]
    assert [r[2].strip() for r in rows] == [model.cfg.labels[k] for k in classes]
    without = subprocess.run([sys.executable, "-m", "rnnx", "run", str(artifact)], capture_output=True, text=True,
                             timeout=300)
    assert without.returncode == 2 and "give --data FILE.npz" in without.stderr
