"""Byte-level text generation with a reference model in PyTorch: chunked prefill, then recurrent steps."""
import time
from dataclasses import dataclass

import torch

from .lm import LanguageModel


@dataclass
class Generation:
    prompt: bytes
    output: bytes
    prefill_tokens_per_s: float
    step_tokens_per_s: float


@torch.no_grad()
def generate(model: LanguageModel, prompt: bytes, tokens: int, temperature: float = 1.0, seed: int = 0) -> Generation:
    """Prefill `prompt` with the chunk form, then sample `tokens` bytes one recurrent step at a time
    (greedy when `temperature` is 0)."""
    if not prompt:
        raise ValueError("the prompt must contain at least one byte")
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    logits, state = model(torch.tensor([list(prompt)]))
    logits = logits[:, -1]
    prefilled = time.perf_counter()
    out = []
    for _ in range(tokens):
        if temperature == 0:
            token = logits.argmax(-1)
        else:
            token = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen)[:, 0]
        out.append(int(token))
        logits, state = model.step(token, state)
    done = time.perf_counter()
    return Generation(prompt, bytes(out), len(prompt) / (prefilled - start), tokens / max(done - prefilled, 1e-9))
