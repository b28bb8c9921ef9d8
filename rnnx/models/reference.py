"""The reference models of DESIGN.md, with the token mixer chosen by their config: a byte-level causal
language model, or the same blocks over a stream of float vectors (sensor samples) giving class scores or a
forecast after every step."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RnnxError
from ..weights import EMBEDDING, HEAD
from .config import ModelConfig, get_config
from .layers import declare_kind
from .mixers import MIXERS


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.mixer_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mixer = MIXERS[cfg.mixer](cfg, layer)
        self.mlp_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp_in = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model, bias=False)
        self.mlp_out = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x, state, mode):
        y, state = self.mixer(self.mixer_norm(x), state, mode)
        x = x + y
        return x + self.mlp_out(F.silu(self.mlp_in(self.mlp_norm(x)))), state


class ReferenceModel(nn.Module):
    """The input (a byte embedding, or a linear map of each float vector), `layers` pre-norm blocks (mixer,
    MLP), a final RMSNorm and the head (next-byte logits, class scores or a forecast).

    State is a list with one entry per layer: that layer's op state (a tensor, or the op's NamedTuple).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.mixer not in MIXERS:
            raise RnnxError(f"model config {cfg.name}: mixer {cfg.mixer!r} is not one of {', '.join(MIXERS)}")
        self.cfg = cfg
        self.signature = cfg.signature
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model) if cfg.input_channels is None \
            else declare_kind(nn.Linear(cfg.input_channels, cfg.d_model), EMBEDDING)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.head = declare_kind(nn.Linear(cfg.d_model, self.signature.output_size,
                                           bias=cfg.input_channels is not None), HEAD)

    def initial_state(self, batch_size: int = 1) -> list:
        """The state before any token: one entry per layer."""
        return [b.mixer.initial_state(batch_size) for b in self.blocks]

    def forward(self, inputs: torch.Tensor, state: list | None = None, mode: str = "chunk"):
        """tokens `(B, T)` int64 or features `(B, T, C)` fp32 -> outputs `(B, T, output_size)` fp32 (logits,
        scores or forecast) and the state after the last step."""
        state = self.initial_state(inputs.shape[0]) if state is None else state
        x, new_state = self.embed(inputs), []
        for block, s in zip(self.blocks, state, strict=True):
            x, s = block(x, s, mode)
            new_state.append(s)
        return self.head(self.norm(x)), new_state

    def step(self, value: torch.Tensor, state: list):
        """token `(B,)` int64 or features `(B, C)` -> outputs `(B, output_size)` and the state after it: the
        recurrent form, O(1) memory."""
        out, state = self(value[:, None], state, mode="recurrent")
        return out[:, 0], state

    @torch.no_grad()
    def init_weights_(self, seed: int):
        """Seeded initialisation: a config name and a seed always give the same weights."""
        gen = torch.Generator().manual_seed(seed)
        std = 0.02
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and name == "embed":  # unit-variance features in, unit-variance out
                module.weight.normal_(0, module.in_features ** -0.5, generator=gen)
                module.bias.zero_()
            elif isinstance(module, nn.Linear):
                out_proj = name.endswith(("mixer.out", "mlp_out"))
                module.weight.normal_(0, std / math.sqrt(2 * self.cfg.layers) if out_proj else std, generator=gen)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0, 1, generator=gen)
            elif isinstance(module, nn.RMSNorm):
                module.weight.fill_(1)
        for block in self.blocks:
            block.mixer.init_(gen)
        return self


def build_model(config: str | ModelConfig, seed: int = 0) -> ReferenceModel:
    """A reference model by config name (or config), initialised from `seed`, in eval mode."""
    cfg = get_config(config) if isinstance(config, str) else config
    return ReferenceModel(cfg).init_weights_(seed).eval()
