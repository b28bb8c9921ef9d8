"""User models whose own torch code carries state, for `rnnx export tests/models/stateful.py:FACTORY`.

- `conv_lm`: a byte-level model with no rnnx op: embedding, a depthwise causal conv that keeps its last
  K - 1 inputs as state, an MLP and a head.
- `conv_attention_lm`: the same conv buffer feeding `rnnx.ops.decay_linear_attention` in the same block,
  so one layer holds a model-owned state tensor beside an op-owned one.
- `short_conv_attention_lm`: Gated DeltaNet's layout with rnnx's ops only: q, k, v projected, each channel
  through `rnnx.ops.causal_conv1d`, then `rnnx.ops.decay_linear_attention`; both states are op-owned.
- `growing_cache_lm`: a cache of every input so far, one token longer after each step: state the runtimes
  cannot carry, which the compiler refuses.

Both follow the factory contract of `rnnx.export.source`: `initial_state(batch_size)` and
`forward(tokens, state, mode)` returning `(logits, state after the last token)` for the prefill (`mode="chunk"`,
T tokens) and the step (`mode="recurrent"`, T = 1). Seeded weights; at d_model 64 both fit a Cortex-M4 with
256 KB of RAM and 1 MB of flash, like the built-in ref-micro.
"""
import torch
import torch.nn.functional as F
from torch import nn

from rnnx import ops

VOCAB, D_MODEL, KERNEL, HEADS, HEAD_DIM = 256, 64, 4, 2, 32


class CausalConv(nn.Module):
    """Depthwise causal conv over time; its state is the last K - 1 inputs `(B, K - 1, d)`, oldest first."""

    def __init__(self, d: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.empty(d, 1, kernel))

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.kernel - 1, self.weight.shape[0])

    def forward(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        window = torch.cat([state, x], dim=1)  # (B, K - 1 + T, d): the past inputs, then this call's
        y = F.conv1d(window.transpose(1, 2), self.weight, groups=self.weight.shape[0]).transpose(1, 2)
        return y, window[:, -(self.kernel - 1):]


class ConvLM(nn.Module):
    """Embedding -> causal conv (residual) -> 4x MLP (residual) -> RMSNorm -> head. State: `{"conv": ...}`."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.conv = CausalConv(D_MODEL, KERNEL)
        self.mlp_norm = nn.RMSNorm(D_MODEL, eps=1e-6)
        self.mlp_in = nn.Linear(D_MODEL, 4 * D_MODEL, bias=False)
        self.mlp_out = nn.Linear(4 * D_MODEL, D_MODEL, bias=False)
        self.norm = nn.RMSNorm(D_MODEL, eps=1e-6)
        self.head = nn.Linear(D_MODEL, VOCAB, bias=False)

    def initial_state(self, batch_size: int = 1) -> dict:
        return {"conv": self.conv.initial_state(batch_size)}

    def mix(self, x, state, mode):
        y, conv = self.conv(x, state["conv"])
        return y, {"conv": conv}

    def forward(self, tokens: torch.Tensor, state: dict | None = None, mode: str = "chunk"):
        state = self.initial_state(tokens.shape[0]) if state is None else state
        x = self.embed(tokens)
        y, state = self.mix(x, state, mode)
        x = x + y
        x = x + self.mlp_out(F.silu(self.mlp_in(self.mlp_norm(x))))
        return self.head(self.norm(x)), state


class ConvAttentionLM(ConvLM):
    """ConvLM whose mixer feeds the conv's output to a decay linear attention: a model-owned conv buffer
    and an op-owned attention state in one block. State: `{"conv": ..., "attention": ...}`."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(D_MODEL, 3 * HEADS * HEAD_DIM, bias=False)
        self.out = nn.Linear(HEADS * HEAD_DIM, D_MODEL, bias=False)
        self.register_buffer("decay", ops.transnormer_decay(HEADS, 0, 1), persistent=False)

    def initial_state(self, batch_size: int = 1) -> dict:
        return {"conv": self.conv.initial_state(batch_size),
                "attention": torch.zeros(batch_size, HEADS, HEAD_DIM, HEAD_DIM)}

    def mix(self, x, state, mode):
        y, conv = self.conv(x, state["conv"])
        q, k, v = self.proj(F.silu(y)).unflatten(-1, (3, HEADS, HEAD_DIM)).unbind(2)
        o, attention = ops.decay_linear_attention(F.silu(q), F.silu(k), v, self.decay, state=state["attention"],
                                                  mode=mode)
        return self.out(o.flatten(-2)), {"conv": conv, "attention": attention}


class ShortConvolution(nn.Module):
    """fla's ShortConvolution on rnnx's op: a depthwise causal conv with bias and SiLU; its state is the last
    K - 1 inputs `(B, d, K - 1)`, owned by the op."""

    def __init__(self, d: int, kernel: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d, kernel))
        self.bias = nn.Parameter(torch.empty(d))

    def initial_state(self, batch_size: int) -> torch.Tensor:
        d, kernel = self.weight.shape
        return torch.zeros(batch_size, d, kernel - 1)

    def forward(self, x: torch.Tensor, state: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        return ops.causal_conv1d(x, self.weight, self.bias, activation="silu", state=state, mode=mode)


class ShortConvAttentionLM(ConvAttentionLM):
    """ConvAttentionLM with the conv after the projection, on q, k and v (Gated DeltaNet's order), as rnnx's
    causal_conv1d. State: `{"conv": (B, 3 · heads · head_dim, K - 1), "attention": ...}`."""

    def __init__(self):
        super().__init__()
        self.conv = ShortConvolution(3 * HEADS * HEAD_DIM, KERNEL)

    def mix(self, x, state, mode):
        qkv, conv = self.conv(self.proj(x), state["conv"], mode)
        q, k, v = qkv.unflatten(-1, (3, HEADS, HEAD_DIM)).unbind(2)
        o, attention = ops.decay_linear_attention(q, k, v, self.decay, state=state["attention"], mode=mode)
        return self.out(o.flatten(-2)), {"conv": conv, "attention": attention}


class GrowingCacheLM(nn.Module):
    """Attends (uniformly) over a cache of every embedded input so far: its present outgrows its past."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.head = nn.Linear(D_MODEL, VOCAB, bias=False)

    def initial_state(self, batch_size: int = 1) -> dict:
        return {"cache": torch.zeros(batch_size, 2, D_MODEL)}

    def forward(self, tokens: torch.Tensor, state: dict | None = None, mode: str = "chunk"):
        state = self.initial_state(tokens.shape[0]) if state is None else state
        x = self.embed(tokens)
        cache = torch.cat([state["cache"], x], dim=1)
        return self.head(x + cache.mean(1, keepdim=True)), {"cache": cache}


@torch.no_grad()
def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.fill_(1)
        elif name == "embed.weight":
            p.normal_(0, 1, generator=gen)
        elif name == "conv.weight":
            p.normal_(0, 0.5, generator=gen)  # large enough that the past inputs visibly move the logits
        else:
            p.normal_(0, p.shape[-1] ** -0.5, generator=gen)
    return model.eval()


def conv_lm() -> nn.Module:
    return _seeded(ConvLM())


def conv_attention_lm() -> nn.Module:
    return _seeded(ConvAttentionLM())


def short_conv_attention_lm() -> nn.Module:
    return _seeded(ShortConvAttentionLM())


def growing_cache_lm() -> nn.Module:
    return _seeded(GrowingCacheLM())


def source(factory: str) -> str:
    """What `rnnx export` takes for one of this file's factories: `path/to/stateful.py:factory`."""
    return f"{__file__}:{factory}"
