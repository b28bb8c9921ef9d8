"""PyTorch eager at one thread: `model.step` with the rnnx custom ops in their recurrent form; prefill is
`model(tokens)` with the ops in their chunk form."""
import numpy as np
import torch

from rnnx.export.source import load_model

LABEL = "PyTorch eager"
THREADS = (1,)


def prepare(ctx) -> dict:
    return {"config": ctx.config, "seed": ctx.seed}


class Runner:
    def __init__(self, spec: dict, threads: int):
        torch.set_num_threads(threads)
        torch.set_grad_enabled(False)
        self.model = load_model(spec["config"], seed=spec["seed"])
        self.token = torch.zeros(1, dtype=torch.long)
        self.reset()

    def reset(self) -> None:
        self.state = self.model.initial_state(1)

    def step(self, token: int) -> torch.Tensor:
        self.token[0] = token
        logits, self.state = self.model.step(self.token, self.state)
        return logits

    def prefill(self, tokens: np.ndarray) -> torch.Tensor:
        logits, self.state = self.model(torch.from_numpy(tokens), self.state)
        return logits
