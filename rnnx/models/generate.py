"""Byte-level generation with any backend: chunked prefill of the prompt, then one recurrent step per byte."""
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .lm import LanguageModel


@dataclass
class Generation:
    prompt: bytes
    output: bytes
    prefill_tokens_per_s: float
    step_tokens_per_s: float


def generate_with(prefill: Callable, step: Callable, prompt: bytes, tokens: int, temperature: float = 1.0,
                  seed: int = 0) -> Generation:
    """`prefill(tokens (1, T)) -> logits (1, T, V)` and `step(token) -> logits (1, V)`, numpy; greedy when
    `temperature` is 0, else sampled with a seeded generator."""
    if not prompt:
        raise ValueError("the prompt must contain at least one byte")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    logits = prefill(np.array([list(prompt)], dtype=np.int64))[0, -1]
    prefilled = time.perf_counter()
    out = []
    for _ in range(tokens):
        if temperature == 0:
            token = int(logits.argmax())
        else:
            p = np.exp((logits - logits.max()) / temperature)
            token = int(rng.choice(len(p), p=p / p.sum()))
        out.append(token)
        logits = step(token)[0]
    done = time.perf_counter()
    return Generation(prompt, bytes(out), len(prompt) / (prefilled - start), tokens / max(done - prefilled, 1e-9))


@torch.no_grad()
def generate(model: LanguageModel, prompt: bytes, tokens: int, temperature: float = 1.0, seed: int = 0) -> Generation:
    """`generate_with` on a PyTorch model: its chunk form for the prompt, its recurrent form per byte."""
    state = None

    def prefill(x):
        nonlocal state
        logits, state = model(torch.from_numpy(x), state)
        return logits.numpy()

    def step(token):
        nonlocal state
        logits, state = model.step(torch.tensor([token]), state)
        return logits.numpy()

    return generate_with(prefill, step, prompt, tokens, temperature, seed)
