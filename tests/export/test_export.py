"""`rnnx export` and `rnnx verify`: every reference config in every flavor, and long streams."""
import json

import onnx
import pytest

from rnnx.export import FLAVORS, export_model, read_manifest
from rnnx.manifest import OpUse, Value
from rnnx.export.onnx_ops import register_schemas
from rnnx.verify import verify_export

from ..configs import TESTED_CONFIGS


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Exports made once per (config, flavor) and shared by the tests of this module."""
    made = {}

    def get(config, flavor):
        if (config, flavor) not in made:
            out = tmp_path_factory.mktemp("exports") / f"{config}-{flavor}"
            export_model(config, out, flavor=flavor)
            made[config, flavor] = out
        return made[config, flavor]
    return get


@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize("config", TESTED_CONFIGS)
def test_export_passes_the_full_checker_and_verifies_against_pytorch(exports, config, flavor):
    out = exports(config, flavor)
    manifest = read_manifest(out)
    register_schemas()
    for graph in manifest.graphs.values():
        onnx.checker.check_model(onnx.load(out / graph.file), full_check=True)
    _, checks = verify_export(out, prompt=40, steps=8, stream=64)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_manifest_describes_graphs_state_ops_and_files(exports):
    manifest = read_manifest(exports("ref-aaren", "portable"))
    assert set(manifest.graphs) == {"prefill", "step"} and set(manifest.files) == {"prefill.onnx", "step.onnx"}
    assert manifest.graphs["prefill"].inputs[0] == Value(name="tokens", dtype="int64", shape=[1, "T"])
    assert manifest.graphs["step"].inputs[0].shape == [1, 1]
    assert [s.name for s in manifest.state[:3]] == ["0_running_max", "0_denominator", "0_numerator"]
    assert manifest.state_bytes == sum(s.bytes for s in manifest.state) == 4 * (4 + 4 + 4 * 64) * 4
    assert manifest.ops == [OpUse(name="aaren", domain="ai.rnnx", version=1, spelling="ai.rnnx::aaren")]
    assert manifest.model.config["name"] == "ref-aaren"


def test_every_attribute_is_written_on_every_rnnx_node(exports):
    model = onnx.load(exports("ref-tiny-swa", "portable") / "prefill.onnx")
    nodes = [n for n in model.graph.node if n.domain == "ai.rnnx"]
    assert len(nodes) == 2
    assert all({a.name for a in n.attribute} == {"window", "scale", "mode", "chunk_size"} for n in nodes)
    assert [f.name for f in model.functions] == ["sliding_window_attention"]


@pytest.mark.parametrize("flavor", ["portable", "ort"])
@pytest.mark.parametrize("config", ["ref-tiny", "ref-aaren", "ref-tiny-swa"])
def test_step_graph_streams_10k_tokens_matching_pytorch_forward(exports, config, flavor):
    _, checks = verify_export(exports(config, flavor), prompt=8, steps=2, stream=10_000)
    stream = checks[-1]
    assert stream.name.startswith("stream 10000") and stream.passed, stream


def test_verify_fails_with_exit_code_when_the_numbers_differ(exports, tmp_path):
    """A manifest naming another seed makes PyTorch build other weights: verify must notice."""
    out = exports("ref-tiny", "portable")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["model"]["seed"] = 1
    copy = tmp_path / "other-seed"
    copy.mkdir()
    for name in manifest["files"]:
        (copy / name).write_bytes((out / name).read_bytes())
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _, checks = verify_export(copy, prompt=8, steps=2, stream=0)
    assert not any(c.passed for c in checks[:2])
