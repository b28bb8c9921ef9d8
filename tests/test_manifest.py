"""The typed manifests: what is wrong with an export's or an artifact's manifest is one line naming the field
or the file, exit code 2, before anything is loaded."""
import json
import subprocess
import sys

import pytest

from rnnx.errors import RnnxError
from rnnx.export import read_manifest
from rnnx.manifest import ArtifactManifest, ExportManifest, decode, to_json
from rnnx.runtime import Session
from rnnx.runtime.artifact import read_artifact


def _copy_with(source, tmp_path, edit, manifest="artifact.json"):
    """A copy of the directory `source` whose manifest JSON `edit` changed in place."""
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(source), str(copy)], check=True)
    data = json.loads((copy / manifest).read_text())
    edit(data)
    (copy / manifest).write_text(json.dumps(data))
    return copy


def test_manifests_round_trip_through_their_typed_definition(exports, artifacts):
    export, artifact = read_manifest(exports("ref-tiny")), read_artifact(artifacts("ref-tiny"))
    assert decode(ExportManifest, json.loads(to_json(export)), "manifest.json") == export
    assert artifact.export == export and artifact.packaging == "library" and artifact.signature.output_size == 256
    assert [s.owner for s in export.state] == ["decay_linear_attention"] * 2
    assert export.tokenizer is None and artifact.tokenizer is None  # a byte-level model
    written_before_tokenizers = {k: v for k, v in json.loads(to_json(export)).items() if k != "tokenizer"}
    assert decode(ExportManifest, written_before_tokenizers, "manifest.json") == export


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.pop("packaging"), "field packaging is missing"),
    (lambda m: m["target"].update(arch=64), "field target.arch must be a string, got 64"),
    (lambda m: m["export"]["state"][1].update(shape="x"), r"field export.state\[1\].shape must be a list of an integer"),
    (lambda m: m["export"]["state"][0].update(shape=[1, 4, 32, 16], bytes=8192),
     r"export.state\[0\] \(0\) is float32\[1, 4, 32, 16\], but the step graph's input past_0 is "
     r"float32\[1, 4, 32, 32\]"),
    (lambda m: m["export"]["state"][0].update(bytes=4), r"export.state\[0\].bytes is 4, but float32\[1, 4, 32, 32\] takes 16384"),
    (lambda m: m["files"].pop("step.so"), "libraries.step step.so is not listed with its sha256 in files"),
    (lambda m: m.update(tokenizer="export/tokenizer.json"),
     "tokenizer export/tokenizer.json is not listed with its sha256 in files"),
    (lambda m: m["files"].update({"../../etc/passwd": "0" * 64}), r"files lists ../../etc/passwd, which is outside"),
    (lambda m: m.update(format="rnnx-artifact/1"), "not an rnnx artifact manifest of format rnnx-artifact/3 "
                                                  r"\(it is rnnx-artifact/1: rebuild it with this rnnx\)"),
])
def test_a_bad_artifact_manifest_is_one_line_naming_the_field(artifacts, tmp_path, edit, message):
    copy = _copy_with(artifacts("ref-tiny"), tmp_path, edit)
    with pytest.raises(RnnxError, match=message):
        Session(copy)
    done = subprocess.run([sys.executable, "-m", "rnnx", "verify", str(copy)], capture_output=True, text=True)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_bad_export_manifest_is_one_line_naming_the_field(exports, tmp_path):
    copy = _copy_with(exports("ref-tiny"), tmp_path, lambda m: m["graphs"]["step"].pop("outputs"), "manifest.json")
    with pytest.raises(RnnxError, match="manifest.json: field graphs.step.outputs is missing"):
        read_manifest(copy)
    assert ArtifactManifest.FORMAT != ExportManifest.FORMAT


def test_an_export_manifest_naming_a_tokenizer_it_does_not_hash_is_refused(exports, tmp_path):
    copy = _copy_with(exports("ref-tiny"), tmp_path, lambda m: m.update(tokenizer="tokenizer.json"), "manifest.json")
    with pytest.raises(RnnxError, match="manifest.json: tokenizer tokenizer.json is not listed in files"):
        read_manifest(copy)


def test_an_export_records_its_weights_and_round_trips_them(exports):
    export = read_manifest(exports("ref-tiny"))
    assert decode(ExportManifest, json.loads(to_json(export)), "manifest.json") == export
    kinds = {w.module: (w.kind, w.op) for w in export.weights}
    assert kinds["embed"] == ("embedding", "Gather") and kinds["head"] == ("head", "MatMul")
    assert kinds["blocks.1.mlp_out"] == ("linear", "MatMul") and export.quantization is None
    assert all(set(w.initializers) == {"prefill", "step"} for w in export.weights)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["weights"][1]["columns"][0].update(stop=7),
     r"weights\[1\].columns \[\(0, 7\)\] do not cut blocks.0.mixer.proj's 512 outputs in order"),
    (lambda m: m["weights"][1]["columns"][0].update(role="gate"),
     r"weights\[1\].columns\[0\] \(heads\) has role 'gate', not one of projection, recurrence"),
    (lambda m: m["weights"][0].update(kind="table"), r"weights\[0\] \(embed\) must be a 2-D MatMul or Gather weight"),
    (lambda m: m["weights"][0]["initializers"].update(decode=["x"]),
     r"weights\[0\].initializers names graph 'decode', which graphs lacks"),
    (lambda m: m["weights"][2].update(shape="x"), r"field weights\[2\].shape must be a list of an integer"),
])
def test_a_bad_weights_record_is_one_line_naming_the_field(exports, tmp_path, edit, message):
    copy = _copy_with(exports("ref-tiny"), tmp_path, edit, "manifest.json")
    with pytest.raises(RnnxError, match=f"manifest.json: .*{message}"):
        read_manifest(copy)
