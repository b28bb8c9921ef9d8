"""Each example's --quick run, as a user runs it (its own process): it exits 0 and its results.json holds the task
metric of every backend, equal to PyTorch's, and passed verify checks for every target it compiled."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).parent.parent / "examples"
BOARDS = ("rnnx on host", "rnnx on raspberry-pi-5, emulated")


def quick(name: str, out: Path) -> dict:
    done = subprocess.run([sys.executable, str(EXAMPLES / name / "run.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def assert_deployed(results: dict) -> None:
    assert results["passed"]
    for backend in ("onnxruntime", *BOARDS):
        assert results["quality"][backend]["passed"], backend
    for target, info in results["targets"].items():
        assert "skipped" in info or info["verify"]["passed"], target


def test_motion_quick_predicts_the_same_class_on_every_backend(tmp_path):
    results = quick("motion", tmp_path)["datasets"]["BasicMotions"]
    assert_deployed(results)
    quality = results["quality"]
    assert {q["metric"] for q in quality.values()} == {"accuracy"}
    assert quality["onnxruntime"]["value"] == quality["rnnx on host"]["value"] == quality["onnxruntime"]["pytorch"]
    assert quality["rnnx on cortex-m4f, emulated"]["passed"]  # the firmware on the emulated board
    assert results["targets"]["cortex-m4f"]["profile"]["flash_bytes"] <= 1 << 20
    assert results["data"]["chance_accuracy"] == 0.25
    with np.load(tmp_path / "BasicMotions" / "data" / "test.npz") as test:  # what `rnnx verify --data` reads
        assert test["features"].shape == (40, 100, 6)


def test_text_quick_scores_held_out_bytes_alike_in_pytorch_and_compiled(tmp_path):
    results = quick("text", tmp_path)
    assert_deployed(results)
    quality = results["quality"]
    assert {q["metric"] for q in quality.values()} == {"bits per byte"}
    assert quality["rnnx on host"]["value"] == pytest.approx(quality["onnxruntime"]["pytorch"], abs=1e-3)
    assert quality["rnnx on host"]["value"] < 8  # a uniform byte's; twenty steps already learn the bytes' frequencies
    assert results["sample"]["stdout"]  # `rnnx run` generated from the trained artifact
    assert (tmp_path / "checkpoint" / "config.json").is_file()


def test_forecast_quick_gives_one_mse_on_every_backend(tmp_path):
    results = quick("forecast", tmp_path)
    assert_deployed(results)
    quality = results["quality"]
    assert {q["metric"] for q in quality.values()} == {"mse"}
    assert quality["rnnx on cortex-m4f, emulated"]["passed"]
    assert set(results["data"]["baseline_mse"]) == {"persistence", "training_mean"}
