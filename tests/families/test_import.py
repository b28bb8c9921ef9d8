"""Every family imported from a tiny checkpoint: the export and the host artifact against the checkpoint run
by its own framework (fla under Triton's interpreter, transformers), and against rnnx's PyTorch model."""
import pytest

from rnnx.export import export_model
from rnnx.packaging import compile_export
from rnnx.verify import verify

from .checkpoints import TINY, save_checkpoint

pytest.importorskip("fla", reason="the source framework flash-linear-attention is not installed")


@pytest.fixture(scope="module", params=sorted(TINY))
def imported(request, tmp_path_factory):
    """(checkpoint, export) of one family."""
    root = tmp_path_factory.mktemp(request.param)
    checkpoint = save_checkpoint(request.param, root / "checkpoint")
    export_model(str(checkpoint), root / "export")
    return checkpoint, root / "export"


def _all_pass_and_against_source(checks) -> None:
    report = "\n".join(f"{c.name}: {c.max_abs:.2e} (rel {c.max_rel:.2e}) {'ok' if c.passed else 'FAIL'}" for c in checks)
    assert all(c.passed for c in checks), report
    assert any(" vs fla " in c.name or " vs transformers " in c.name for c in checks), report


def test_export_matches_source_framework(imported):
    _, export = imported
    _, checks = verify(export, prompt=12, steps=4, stream=24)
    _all_pass_and_against_source(checks)


def test_host_artifact_matches_source_framework(imported, tmp_path):
    _, export = imported
    compile_export(export, "host", tmp_path / "artifact")
    _, checks = verify(tmp_path / "artifact", prompt=12, steps=4, stream=24)
    _all_pass_and_against_source(checks)


def test_checkpoint_tokenizer_travels_into_the_artifact_and_run_prints_its_text(tmp_path):
    import subprocess
    import sys

    from rnnx.export import read_manifest
    from rnnx.tokenizer import HuggingFaceTokenizer

    from ..test_tokenizer import PROMPT, byte_level_bpe

    checkpoint = save_checkpoint("gated_deltanet", tmp_path / "checkpoint")
    byte_level_bpe(280).save(str(checkpoint / "tokenizer.json"))  # the tiny checkpoints' vocab is 300
    export_model(str(checkpoint), tmp_path / "export")
    assert read_manifest(tmp_path / "export").tokenizer == "tokenizer.json"
    compile_export(tmp_path / "export", "host", tmp_path / "artifact")
    result = subprocess.run([sys.executable, "-m", "rnnx", "run", str(tmp_path / "artifact"), "--prompt", PROMPT,
                             "--tokens", "12", "--temperature", "0"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    prompt_ids = HuggingFaceTokenizer(checkpoint / "tokenizer.json").encode(PROMPT)
    assert f"prompt of {len(prompt_ids)} tokens" in result.stdout and len(prompt_ids) < len(PROMPT.encode())
    assert "tokens/s" in result.stdout.splitlines()[-1]


def test_without_the_source_framework_verify_says_so_and_checks_against_pytorch(tmp_path, monkeypatch):
    import rnnx.verify.source as source

    checkpoint = save_checkpoint("gated_deltanet-tied", tmp_path / "checkpoint")
    export_model(str(checkpoint), tmp_path / "export")
    monkeypatch.setattr(source, "missing_framework", lambda family: f"{family.framework} not installed")
    notes = []
    _, checks = verify(tmp_path / "export", prompt=8, steps=2, stream=0, on_note=notes.append)
    assert notes == ["not checked against the checkpoint's own framework (fla not installed): against rnnx's "
                     "PyTorch model only"]
    assert checks and all(c.passed for c in checks) and not any(" vs fla " in c.name for c in checks)
