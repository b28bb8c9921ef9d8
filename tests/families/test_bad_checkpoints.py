"""A checkpoint rnnx cannot import is one line naming what is wrong, and exit code 2 — never a traceback."""
import json
import shutil
import subprocess
import sys

import pytest

from .checkpoints import save_checkpoint

pytest.importorskip("fla", reason="the tiny checkpoints are made with flash-linear-attention's config classes")


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return save_checkpoint("gated_deltanet", tmp_path_factory.mktemp("good") / "checkpoint")


def _copy(good, tmp_path):
    return shutil.copytree(good, tmp_path / "checkpoint")


def _export_error(checkpoint, tmp_path) -> str:
    result = subprocess.run([sys.executable, "-m", "rnnx", "export", str(checkpoint), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()
    return lines[0]


def _edit_config(checkpoint, **fields):
    config = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps(config | fields))


def _edit_tensors(checkpoint, edit):
    from safetensors.torch import load_file, save_file

    path = checkpoint / "model.safetensors"
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)


def test_unknown_model_type_lists_the_known_families(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    _edit_config(checkpoint, model_type="llama")
    message = _export_error(checkpoint, tmp_path)
    assert "model_type 'llama' is not a family rnnx imports; it imports" in message and "gated_deltanet" in message


def test_missing_tensor_is_named(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    _edit_tensors(checkpoint, lambda t: t.pop("model.layers.1.attn.k_proj.weight"))
    assert "tensor 'model.layers.1.attn.k_proj.weight' is missing" in _export_error(checkpoint, tmp_path)


def test_mis_shaped_tensor_is_named_with_both_shapes(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    _edit_tensors(checkpoint, lambda t: t.update({"model.layers.0.attn.o_norm.weight": t["model.layers.0.attn.o_norm.weight"][:7]}))
    message = _export_error(checkpoint, tmp_path)
    assert "model.safetensors: tensor 'model.layers.0.attn.o_norm.weight' has shape (7,)" in message
    assert "needs (32,)" in message


def test_unexpected_tensor_is_named(good, tmp_path):
    import torch

    checkpoint = _copy(good, tmp_path)
    _edit_tensors(checkpoint, lambda t: t.update({"model.layers.0.attn.extra.weight": torch.zeros(3)}))
    assert "unexpected tensor 'model.layers.0.attn.extra.weight'" in _export_error(checkpoint, tmp_path)


def test_corrupt_safetensors_is_named(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert f"{weights}: not a readable safetensors file" in _export_error(checkpoint, tmp_path)


def test_config_field_of_the_wrong_type_is_named(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    _edit_config(checkpoint, hidden_size="64")
    assert "field 'hidden_size' must be an integer, got str '64'" in _export_error(checkpoint, tmp_path)


def test_invalid_json_config_is_named_with_its_line(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    (checkpoint / "config.json").write_text('{\n  "model_type": "gated_deltanet",\n  oops\n}')
    assert "config.json: not valid JSON at line 3" in _export_error(checkpoint, tmp_path)


def test_unsupported_option_is_refused_by_name(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    _edit_config(checkpoint, attn={"layers": [1], "num_heads": 2})
    assert "field 'attn'" in _export_error(checkpoint, tmp_path)


def test_pickled_weights_are_refused_not_loaded(good, tmp_path):
    checkpoint = _copy(good, tmp_path)
    (checkpoint / "model.safetensors").rename(checkpoint / "pytorch_model.bin")
    assert "pytorch_model.bin is a pickle, which rnnx never loads" in _export_error(checkpoint, tmp_path)
