"""A model's tokenizer travels from the export into the artifact, hashed, and `rnnx run` encodes the prompt with
it and prints the generated text as it comes, characters whole; a byte-level model's text is its UTF-8 bytes."""
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from rnnx.errors import RnnxError
from rnnx.export import export_model, read_manifest
from rnnx.manifest import Signature
from rnnx.models import Generation
from rnnx.packaging import compile_export
from rnnx.runtime import Session
from rnnx.runtime.artifact import read_artifact
from rnnx.tokenizer import ByteTokenizer, HuggingFaceTokenizer, load_tokenizer

SENTENCES = ["the quick brown fox jumps over the lazy dog", "a café in Zürich serves crème brûlée",
             "日本語のテキストを読む", "the theory of the thing is the thing itself"]
PROMPT = "the café"


def rnnx(*args):
    return subprocess.run([sys.executable, "-m", "rnnx", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def byte_level_bpe(vocab_size: int) -> Tokenizer:
    """A GPT-2-style tokenizer (byte-level BPE) trained on SENTENCES, with one special token."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"], show_progress=False)
    tokenizer.train_from_iterator(SENTENCES, trainer)
    return tokenizer


@pytest.fixture(scope="module")
def bpe_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    byte_level_bpe(200).save(str(path))
    return path


@pytest.fixture(scope="module")
def bpe(bpe_file) -> Tokenizer:
    return Tokenizer.from_file(str(bpe_file))


@pytest.fixture(scope="module")
def tokenized_artifact(bpe_file, tmp_path_factory) -> Path:
    """ref-tiny exported with the BPE and compiled for host, once for this module."""
    root = tmp_path_factory.mktemp("ref-tiny-bpe")
    export_model("ref-tiny", root / "export", tokenizer=bpe_file)
    compile_export(root / "export", "host", root / "artifact")
    return root / "artifact"


def greedy(artifact: Path, prompt_ids: list[int], tokens: int) -> list[int]:
    return list(Generation(Session(artifact), prompt_ids, tokens, temperature=0))


def printed(result) -> tuple[str, str]:
    """`rnnx run`'s header line and the generated text it streamed (between the header and the speed line)."""
    assert result.returncode == 0, result.stderr
    header, rest = result.stdout.split("\n", 1)
    text, speed, end = rest.rsplit("\n", 2)
    assert end == "", result.stdout
    assert speed.startswith("prefill ") and speed.endswith(" tokens/s"), result.stdout
    return header, text


def test_the_export_and_the_artifact_carry_the_tokenizer_hashed(bpe_file, tokenized_artifact):
    export = read_manifest(tokenized_artifact / "export")
    artifact = read_artifact(tokenized_artifact)
    assert export.tokenizer == "tokenizer.json" and "tokenizer.json" in export.files
    assert artifact.tokenizer == "export/tokenizer.json" and "export/tokenizer.json" in artifact.files
    assert (tokenized_artifact / artifact.tokenizer).read_bytes() == bpe_file.read_bytes()
    assert isinstance(load_tokenizer(tokenized_artifact, artifact), HuggingFaceTokenizer)


def test_run_encodes_with_the_tokenizer_and_streams_its_decode(bpe, tokenized_artifact):
    prompt_ids = bpe.encode(PROMPT).ids
    assert len(prompt_ids) < len(PROMPT.encode())  # the merges make it fewer tokens than bytes
    header, text = printed(rnnx("run", tokenized_artifact, "--prompt", PROMPT, "--tokens", 40, "--temperature", 0))
    assert f"prompt of {len(prompt_ids)} tokens, {tokenized_artifact / 'export' / 'tokenizer.json'}" in header
    assert text == bpe.decode(greedy(tokenized_artifact, prompt_ids, 40))


def test_a_byte_level_run_prints_text(artifacts):
    prompt = "héllo wörld"
    header, text = printed(rnnx("run", artifacts("ref-tiny"), "--prompt", prompt, "--tokens", 40, "--temperature", 0))
    assert f"prompt of {len(prompt.encode())} tokens, UTF-8 bytes" in header
    assert text == bytes(greedy(artifacts("ref-tiny"), list(prompt.encode()), 40)).decode(errors="replace")


def test_a_character_split_across_tokens_prints_once(bpe_file, bpe):
    utf8 = ByteTokenizer().stream()
    assert [utf8.step(b) for b in "é日".encode() + b"\xff\xe6\x97"] == ["", "é", "", "", "日", "\ufffd", "", ""]
    assert utf8.finish() == "\ufffd"  # generation stopped mid-character

    [(pieces, _)] = pre_tokenizers.ByteLevel(add_prefix_space=False).pre_tokenize_str("日")
    byte_ids = [bpe.token_to_id(piece) for piece in pieces]  # one token per UTF-8 byte of 日
    assert len(byte_ids) == 3 and None not in byte_ids
    stream = HuggingFaceTokenizer(bpe_file).stream()
    assert [stream.step(i) for i in byte_ids] == ["", "", "日"]
    text = "a café in 日本"
    assert "".join(stream.step(i) for i in bpe.encode(text).ids) + stream.finish() == text
    assert [stream.step(i) for i in byte_ids[:2]] == ["", ""] and stream.finish() == "\ufffd"


def test_a_tokenizer_larger_than_the_models_vocab_is_one_line_and_exit_code_2(tmp_path):
    big = tmp_path / "big.json"
    Tokenizer(models.WordLevel({f"w{i}": i for i in range(300)}, unk_token="w0")).save(str(big))
    result = rnnx("export", "ref-tiny", "-o", tmp_path / "out", "--tokenizer", big)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"error: tokenizer {big} has a vocabulary of 300 tokens, more than the model's vocab of 256 (its logits' "
        "last dimension)"]
    assert not (tmp_path / "out").exists()


def test_a_tokenizer_that_does_not_load_is_refused_before_the_export(tmp_path):
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0"')
    with pytest.raises(RnnxError, match=f"cannot load tokenizer {tmp_path / 'tokenizer.json'}: "):
        export_model("ref-tiny", tmp_path / "out", tokenizer=tmp_path / "tokenizer.json")
    assert not (tmp_path / "out").exists()


def test_a_model_without_a_tokenizer_must_be_byte_level(tmp_path):
    with pytest.raises(RnnxError, match="has no tokenizer.json and a vocab of 32000, not the 256 bytes"):
        load_tokenizer(tmp_path, SimpleNamespace(tokenizer=None, signature=Signature("tokens", 32000, "logits", 32000)))


def test_a_tampered_tokenizer_is_refused(tokenized_artifact, tmp_path):
    copy = tmp_path / "artifact"
    shutil.copytree(tokenized_artifact, copy)
    with open(copy / "export" / "tokenizer.json", "a") as f:
        f.write(" ")  # still a tokenizer that loads: only its hash tells
    with pytest.raises(RnnxError, match="tokenizer.json does not match its sha256 in artifact.json"):
        Session(copy)
    result = rnnx("run", copy, "--prompt", PROMPT)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "tokenizer.json does not match its sha256" in result.stderr
