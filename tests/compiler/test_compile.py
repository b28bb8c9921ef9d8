"""`rnnx compile`: every reference config and every export flavor compiles for the host and verifies."""
import json
import subprocess
import sys

import onnx
import pytest

from rnnx.errors import RnnxError
from rnnx.export import export_model
from rnnx.targets import TARGETS
from rnnx.verify import verify

from ..configs import TESTED_CONFIGS


@pytest.mark.parametrize("config", TESTED_CONFIGS)
def test_compiled_artifact_verifies_against_pytorch_and_onnxruntime(artifacts, config):
    _, checks = verify(artifacts(config), prompt=70, steps=8, stream=200)
    assert len(checks) == 7 and all(c.passed for c in checks), [c for c in checks if not c.passed]


@pytest.mark.parametrize("flavor", ["standard", "ort"])
def test_linear_attention_spellings_compile_to_the_same_kernels(artifacts, flavor):
    _, checks = verify(artifacts("ref-small-gdn" if flavor == "standard" else "ref-tiny", flavor=flavor),
                       prompt=70, steps=8, stream=64)
    assert all(c.passed for c in checks[:4]), checks  # against PyTorch (the reference evaluator is slow)


def test_x86_64_avx2_target_runs_here(artifacts):
    _, checks = verify(artifacts("ref-tiny", target="x86-64-avx2"), prompt=20, steps=4, stream=0)
    assert all(c.passed for c in checks)


def test_artifact_manifest_records_target_versions_state_and_hashes(artifacts):
    manifest = json.loads((artifacts("ref-aaren") / "artifact.json").read_text())
    assert manifest["target"]["name"] == "host" and manifest["tvm_version"]
    assert set(manifest["files"]) == {"prefill.so", "step.so", "initial_state.npz"}
    assert manifest["export"]["state_bytes"] == sum(s["bytes"] for s in manifest["export"]["state"])


def test_node_rnnx_cannot_lower_is_named(tmp_path):
    export_model("ref-tiny", tmp_path / "export")
    model = onnx.load(tmp_path / "export" / "step.onnx")
    node = next(n for n in model.graph.node if n.op_type == "Sigmoid")
    node.domain, node.op_type = "com.example", "Mystery"
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    from rnnx.compiler.importer import import_onnx
    with pytest.raises(RnnxError, match="cannot compile nodes of op com.example::Mystery"):
        import_onnx(model)


def test_unknown_target_and_bad_export_are_one_line_errors(tmp_path):
    run = lambda *a: subprocess.run([sys.executable, "-m", "rnnx", *map(str, a)], capture_output=True, text=True)  # noqa: E731
    result = run("compile", tmp_path, "--target", "pdp-11", "-o", tmp_path / "a")
    assert result.returncode == 2 and "is not an rnnx export" in result.stderr
    export_model("ref-tiny", tmp_path / "export")
    result = run("compile", tmp_path / "export", "--target", "pdp-11", "-o", tmp_path / "a")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: unknown target 'pdp-11'; targets: {', '.join(TARGETS)}"]
