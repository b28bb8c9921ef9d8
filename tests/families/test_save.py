"""`save_checkpoint` is the inverse of the import: what it writes, `import_checkpoint` reads back exactly, and for
a checkpoint of the source framework it writes back the framework's own tensors under their names."""
import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

import rnnx.models.families  # noqa: F401  (registers the families)
from rnnx.errors import RnnxError
from rnnx.models.checkpoint import save_checkpoint
from rnnx.models.family import FAMILIES, import_checkpoint

from .checkpoints import TINY, VOCAB
from .checkpoints import save_checkpoint as save_source_checkpoint


def _random_model(name: str):
    """The rnnx model of TINY's `name` with seeded random weights, and its config."""
    _, _, fields = TINY[name]
    family = FAMILIES[name.split("-")[0]]
    known = {f.name for f in dataclasses.fields(family.config)}  # keys rnnx ignores, as read_config does
    config = family.config(vocab_size=VOCAB, **{k: v for k, v in fields.items() if k in known})
    model = family.model(config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))
    return model, config


@pytest.mark.parametrize("name", sorted(TINY))
def test_save_then_import_round_trips_exactly(name, tmp_path):
    model, config = _random_model(name)
    save_checkpoint(model, config, tmp_path / "checkpoint")
    imported = import_checkpoint(tmp_path / "checkpoint")
    assert imported.cfg == config
    saved, loaded = model.state_dict(), imported.state_dict()
    assert saved.keys() == loaded.keys()
    for key, value in saved.items():
        assert torch.equal(value, loaded[key]), key
    if config.tie_word_embeddings:  # written once, and still one parameter after the import
        assert "lm_head.weight" not in load_file(tmp_path / "checkpoint" / "model.safetensors")
        assert imported.lm_head.weight is imported.get_submodule(imported.names[0]).embeddings.weight


@pytest.mark.parametrize("name", ["ref-micro", "ref-micro-motion"])
def test_rnnx_reference_models_round_trip(name, tmp_path):
    from rnnx.models.config import CONFIGS

    model = FAMILIES["rnnx"].model(CONFIGS[name])
    imported = import_checkpoint(save_checkpoint(model, CONFIGS[name], tmp_path / "checkpoint"))
    assert imported.cfg == CONFIGS[name]
    for (key, value), loaded in zip(model.state_dict().items(), imported.state_dict().values(), strict=True):
        assert torch.equal(value, loaded), key


def test_config_json_names_the_family(tmp_path):
    model, config = _random_model("gated_deltanet")
    written = json.loads((save_checkpoint(model, config, tmp_path / "checkpoint") / "config.json").read_text())
    assert written == dataclasses.asdict(config) | {"model_type": "gated_deltanet"}


def test_a_config_of_no_family_is_refused(tmp_path):
    model, config = _random_model("gated_deltanet")

    @dataclasses.dataclass(frozen=True)
    class Unknown:
        hidden_size: int = 64

    with pytest.raises(RnnxError, match="Unknown is not the config of a family"):
        save_checkpoint(model, Unknown(), tmp_path / "checkpoint")
    assert not (tmp_path / "checkpoint").exists()


def test_writes_back_the_source_frameworks_tensors(tmp_path):
    pytest.importorskip("fla", reason="the source framework flash-linear-attention is not installed")
    source = save_source_checkpoint("gated_deltanet", tmp_path / "source")
    model = import_checkpoint(source)
    save_checkpoint(model, model.cfg, tmp_path / "again")
    original = {}
    for path in sorted(source.glob("*.safetensors")):
        original.update(load_file(path))
    written = load_file(tmp_path / "again" / "model.safetensors")
    assert written.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(written[key], value), key
