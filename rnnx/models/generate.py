"""Generation with any backend: chunked prefill of the prompt's token ids, then one recurrent step per token.
Token ids in, token ids out: the caller's tokenizer turns text into the prompt and the ids into text."""
import time
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from ..errors import RnnxError
from .reference import ReferenceModel


class Steps(Protocol):
    """What generation runs (numpy in and out): a compiled `Session`, or `EagerModel` for PyTorch."""
    def prefill(self, tokens: np.ndarray) -> np.ndarray:
        """tokens `(1, T)` int64 -> logits `(1, T, vocab)`, the state then after the last token."""

    def step(self, token: int) -> np.ndarray:
        """One token -> logits `(1, vocab)`, the state then after it."""


class EagerModel:
    """A PyTorch model as `Steps`: its chunk form for the prompt, its recurrent form per token, the state
    kept between calls."""

    def __init__(self, model: ReferenceModel):
        self.model, self.state = model, None

    @torch.no_grad()
    def prefill(self, tokens: np.ndarray) -> np.ndarray:
        logits, self.state = self.model(torch.from_numpy(tokens), self.state)
        return logits.numpy()

    @torch.no_grad()
    def step(self, token: int) -> np.ndarray:
        logits, self.state = self.model.step(torch.tensor([token]), self.state)
        return logits.numpy()


class Generation:
    """The `tokens` ids `model` generates after `prompt`, from its current state: greedy when `temperature`
    is 0, else sampled with a generator seeded by `seed`. Iterating it (once) yields each id as soon as it is
    chosen; the step that feeds it back runs when the next is asked for. The speeds time the model's calls
    alone, not what the caller does between tokens (decoding, printing)."""

    def __init__(self, model: Steps, prompt: Sequence[int], tokens: int, temperature: float = 1.0, seed: int = 0):
        if not prompt:
            raise RnnxError("the prompt has no tokens: generation prefills at least one")
        self.prompt_tokens, self.steps = len(prompt), 0
        self.prefill_s = self.step_s = 0.0
        self._ids = self._generate(model, np.array([prompt], dtype=np.int64), tokens, temperature, seed)

    def __iter__(self) -> Iterator[int]:
        return self._ids

    @property
    def prefill_tokens_per_s(self) -> float:
        return self.prompt_tokens / max(self.prefill_s, 1e-9)

    @property
    def step_tokens_per_s(self) -> float:
        return self.steps / max(self.step_s, 1e-9)

    def _generate(self, model: Steps, prompt: np.ndarray, tokens: int, temperature: float,
                  seed: int) -> Iterator[int]:
        rng = np.random.default_rng(seed)
        start = time.perf_counter()
        logits = model.prefill(prompt)[0, -1]
        self.prefill_s = time.perf_counter() - start
        for _ in range(tokens):
            if temperature == 0:
                token = int(logits.argmax())
            else:
                p = np.exp((logits - logits.max()) / temperature)
                token = int(rng.choice(len(p), p=p / p.sum()))
            yield token
            start = time.perf_counter()
            logits = model.step(token)[0]
            self.step_s += time.perf_counter() - start
            self.steps += 1
