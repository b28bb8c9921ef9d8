"""Text <-> token ids for generation (`rnnx run`): the model's own tokenizer, a Hugging Face `tokenizer.json`
that its export and artifact carry, or UTF-8 bytes for a byte-level model (vocab 256) without one.

Each tokenizer gives a streaming decoder: fed the generated ids one at a time, it returns the text they
complete, holding back a character still incomplete (its UTF-8 bytes, or a byte-level BPE's pieces, split
across tokens) so that it prints once, whole, and never as replacement characters that a later token would
have completed. `finish()` returns what is still held when generation stops mid-character, as U+FFFD like a
whole decode. The `tokenizers` library is imported only for a model that has a tokenizer file.
"""
import codecs
from pathlib import Path
from typing import Protocol

from .errors import RnnxError
from .manifest import Manifest

TOKENIZER_FILE = "tokenizer.json"  # its name in an export directory
BYTE_VOCAB = 256


class TextStream(Protocol):
    def step(self, token: int) -> str:
        """The text `token` completes: '' while a character is still incomplete."""

    def finish(self) -> str:
        """What is still held back at the end, decoded (an incomplete character as U+FFFD)."""


class Tokenizer(Protocol):
    name: str  # what it is, for messages: its file, or UTF-8 bytes

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def stream(self) -> TextStream: ...


class ByteTokenizer:
    """A byte-level model's: the prompt's UTF-8 bytes are its tokens; invalid bytes decode to U+FFFD."""
    name = "UTF-8 bytes"

    def encode(self, text: str) -> list[int]:
        return list(text.encode())

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode(errors="replace")

    def stream(self) -> TextStream:
        return _Utf8Stream()


class _Utf8Stream:
    def __init__(self):
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def step(self, token: int) -> str:
        return self._utf8.decode(bytes((token,)))

    def finish(self) -> str:
        return self._utf8.decode(b"", final=True)


class HuggingFaceTokenizer:
    """A `tokenizer.json` of the Hugging Face `tokenizers` library. Decoding skips special tokens (an
    end-of-text marker is not text) and ids the tokenizer does not have (a model's vocab may be padded)."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer as LibraryTokenizer

        self.path = Path(path)
        self.name = str(self.path)
        try:
            self._tokenizer = LibraryTokenizer.from_file(str(self.path))
        except Exception as e:  # tokenizers raises a bare Exception for a missing file and for bad JSON alike
            reason = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise RnnxError(f"cannot load tokenizer {self.path}: {reason}") from None

    @property
    def vocab_size(self) -> int:
        """1 + its largest token id (added tokens included): the logits a model needs for every token."""
        return 1 + max(self._tokenizer.get_vocab(with_added_tokens=True).values(), default=-1)

    def check_vocab(self, vocab: int) -> "HuggingFaceTokenizer":
        """Itself, if each of its tokens has a logit in a model of `vocab`."""
        if self.vocab_size > vocab:
            raise RnnxError(f"tokenizer {self.path} has a vocabulary of {self.vocab_size} tokens, more than the "
                            f"model's vocab of {vocab} (its logits' last dimension)")
        return self

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True)

    def stream(self) -> TextStream:
        return _DecodeStream(self._tokenizer)


class _DecodeStream:
    """`tokenizers.decoders.DecodeStream`, and the ids it still holds back (it returns None for them)."""

    def __init__(self, tokenizer):
        from tokenizers.decoders import DecodeStream

        self._tokenizer, self._stream, self._held = tokenizer, DecodeStream(skip_special_tokens=True), []

    def step(self, token: int) -> str:
        piece = self._stream.step(self._tokenizer, token)
        if piece is None:
            self._held.append(token)
            return ""
        self._held.clear()
        return piece

    def finish(self) -> str:
        # the held ids alone: exact for byte-level pieces, which decode without the text before them
        held, self._held = self._held, []
        return self._tokenizer.decode(held, skip_special_tokens=True) if held else ""


def byte_tokenizer(vocab: int, model: str) -> ByteTokenizer:
    """Bytes, for `model` (named in the message) if it is byte-level: a vocab of 256."""
    if vocab != BYTE_VOCAB:
        raise RnnxError(f"{model} has no {TOKENIZER_FILE} and a vocab of {vocab}, not the {BYTE_VOCAB} bytes of a "
                        f"byte-level model: export it with its tokenizer (rnnx export --tokenizer)")
    return ByteTokenizer()


def load_tokenizer(directory: Path, manifest: Manifest) -> Tokenizer:
    """The tokenizer of the export or artifact `directory` whose `manifest` was read with its hashes checked:
    the tokenizer file it lists, else bytes for a byte-level model."""
    sig = manifest.signature
    if sig.input != "tokens":
        raise RnnxError(f"{directory} is a model of {sig.input} ({sig.input_size} channels per step), not of text")
    if manifest.tokenizer is None:
        return byte_tokenizer(sig.input_size, str(directory))
    return HuggingFaceTokenizer(Path(directory) / manifest.tokenizer).check_vocab(sig.input_size)
