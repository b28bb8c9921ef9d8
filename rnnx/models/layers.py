"""Building blocks of the imported families, each computing exactly what its source does (eps values and
activations as the source's fused kernels hard-code them), on rnnx ops and standard torch ops only."""
import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..weights import EMBEDDING, HEAD, PROJECTION, RECURRENCE


def declare_columns(linear: nn.Linear, parts: dict[str, int], recurrence=()) -> nn.Linear:
    """Name the output columns of `linear` (name -> size, in order) and mark those named in `recurrence` as
    driving the recurrence (a decay, forget gate, β or dt): the export records them (`rnnx.weights.Weight`) and
    `rnnx quantize` keeps them fp32. Names only: the parameters, and how a checkpoint loads them, are unchanged."""
    assert sum(parts.values()) == linear.out_features and set(recurrence) <= set(parts), (parts, recurrence)
    linear.columns = tuple((name, size, RECURRENCE if name in recurrence else PROJECTION)
                           for name, size in parts.items() if size)
    return linear


def declare_kind(module: nn.Module, kind: str) -> nn.Module:
    """Mark `module` as the model's output map (`HEAD`) or input map (`EMBEDDING`, for a linear map of feature
    vectors: an nn.Embedding is one anyway): `rnnx quantize` keeps them fp32 unless asked."""
    assert kind in (HEAD, EMBEDDING), kind
    module.weight_kind = kind
    return module


class FusedLinear(nn.Linear):
    """Several projections of one input as one matrix-vector product: the source's modules named in `parts`
    (name, output size), concatenated (`load_weights` reads them so). `split` cuts the output into theirs.
    The parts named in `recurrence` drive the recurrence (`declare_columns`)."""

    def __init__(self, in_features: int, parts: dict[str, int], bias: bool = False, recurrence=()):
        super().__init__(in_features, sum(parts.values()), bias=bias)
        self.parts = tuple(parts.items())
        declare_columns(self, parts, recurrence)

    def split(self, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return y.split([size for _, size in self.parts], dim=-1)


class ShortConvolution(nn.Module):
    """fla's `ShortConvolution` and Mamba-2's `conv1d`: a causal depthwise convolution over the last
    `kernel_size` inputs, optional bias, SiLU. `weight` is the source's `(D, 1, W)`; `parts` fuses several
    (depthwise, so channel-concatenation is exact). State: the last W-1 inputs `(B, D, W-1)`."""

    def __init__(self, hidden_size: int, kernel_size: int, bias: bool = False, activation: str | None = "silu",
                 parts: dict[str, int] | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden_size, 1, kernel_size))
        self.bias = nn.Parameter(torch.zeros(hidden_size)) if bias else None
        if not bias:
            self.register_buffer("zero_bias", torch.zeros(hidden_size), persistent=False)
        self.activation = "silu" if activation in ("silu", "swish") else "none"
        if parts is not None:
            self.parts = tuple(parts.items())

    def initial_state(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.weight.shape[0], self.weight.shape[2] - 1)

    def forward(self, x, state, mode):
        """x `(B, T, D)` -> `(B, T, D)` and the state after it."""
        bias = self.bias if self.bias is not None else self.zero_bias
        return ops.causal_conv1d(x, self.weight[:, 0], bias, activation=self.activation, state=state, mode=mode)


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """fla's `l2norm` (and its kernels' `use_qk_l2norm_in_kernel`): `x / sqrt(Σx² + eps)`, not F.normalize's
    `x / max(‖x‖, eps)`."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)


def repeat_heads(t: torch.Tensor, repeats: int) -> torch.Tensor:
    """`(B, T, H, D)` -> `(B, T, H·repeats, D)`, head h serving heads h·repeats .. h·repeats + repeats-1 (grouped
    value heads: fla's kernels read q/k head `hv // repeats`). A Gather: TVM's ONNX Expand cannot take a
    symbolic length, which repeat_interleave exports to."""
    if repeats == 1:
        return t
    return t.index_select(2, torch.arange(t.shape[2] * repeats, device=t.device) // repeats)


def gate(g: torch.Tensor, activation: str) -> torch.Tensor:
    return torch.sigmoid(g) if activation == "sigmoid" else F.silu(g)


class GatedRMSNorm(nn.Module):
    """fla's `FusedRMSNormGated` over the last dimension: `rmsnorm(x) · weight · act(g)`, act SiLU (swish)
    or sigmoid; the output norm of Gated DeltaNet, RetNet, GLA and HGRN2 per head."""

    def __init__(self, hidden_size: int, eps: float, activation: str = "swish"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps, self.activation = eps, activation

    def forward(self, x, g):
        return F.rms_norm(x, x.shape[-1:], self.weight, self.eps) * gate(g, self.activation)


class OutputNorm(GatedRMSNorm):
    """The per-head output norm of fla's RetNet and GLA: `rmsnorm(o) · weight · swish(g)` with use_output_gate,
    else `rmsnorm(o) · weight`. Layers hold it under fla's name for it (`name_in(cfg)`): `g_norm_swish_gate`
    fused, `g_norm` with fuse_norm false or no gate (the same product)."""

    def __init__(self, cfg, dim: int):
        super().__init__(dim, cfg.norm_eps)

    @staticmethod
    def name_in(cfg) -> str:
        return "g_norm_swish_gate" if cfg.use_output_gate and cfg.fuse_norm else "g_norm"

    def forward(self, o, g=None):
        """o `(B, T, H, Dv)`, g `(B, T, H·Dv)` or None without the gate."""
        if g is None:
            return F.rms_norm(o, o.shape[-1:], self.weight, self.eps)
        return super().forward(o, g.unflatten(-1, o.shape[-2:]))


class DeltaRuleLayer(nn.Module):
    """The frame fla's delta-rule layers (DeltaNet, Gated DeltaNet) put around their recurrence, from the config's
    hidden_size, use_short_conv, conv_size, use_gate and norm_eps. In: the q, k, v projections of x as one product,
    through their short convolutions (`q_conv1d`, `k_conv1d`, `v_conv1d` fused) when use_short_conv; SiLU on v
    always, on q and k when `qk_silu` (fla's convs apply it, or the layer itself without them). Out: a per-head
    RMSNorm `o_norm`, gated by `act(g)` (FusedRMSNormGated) when use_gate, then `o_proj`. `heads` is
    (H, HV, Dk, Dv): H query/key heads, HV value heads. State: `{"conv": (B, 2·H·Dk + HV·Dv, W-1)}` with
    use_short_conv, then `"recurrent": (B, HV, Dk, Dv)`."""

    def __init__(self, cfg, heads: tuple[int, int, int, int], qk_silu: bool = True, gate_activation: str = "swish"):
        super().__init__()
        H, HV, Dk, Dv = heads
        self.cfg, self.shape, self.qk_silu = cfg, heads, qk_silu
        qkv = {"q_proj": H * Dk, "k_proj": H * Dk, "v_proj": HV * Dv}
        self.qkv_proj = FusedLinear(cfg.hidden_size, qkv)
        if cfg.use_short_conv:  # one activation for the fused conv: v's SiLU follows it when q, k have none
            self.conv1d = ShortConvolution(sum(qkv.values()), cfg.conv_size, bias=False,
                                           activation="silu" if qk_silu else None,
                                           parts={"q_conv1d": H * Dk, "k_conv1d": H * Dk, "v_conv1d": HV * Dv})
        self.o_norm = GatedRMSNorm(Dv, cfg.norm_eps, gate_activation) if cfg.use_gate \
            else nn.RMSNorm(Dv, eps=cfg.norm_eps)
        self.o_proj = nn.Linear(HV * Dv, cfg.hidden_size, bias=False)

    def initial_state(self, batch_size: int) -> dict:
        H, HV, Dk, Dv = self.shape
        state = {"recurrent": torch.zeros(batch_size, HV, Dk, Dv)}
        return ({"conv": self.conv1d.initial_state(batch_size)} | state) if self.cfg.use_short_conv else state

    def qkv(self, x, state, mode):
        """x `(B, T, hidden)` -> q, k `(B, T, H, Dk)`, v `(B, T, HV, Dv)` and the conv state (None without)."""
        H, HV, Dk, Dv = self.shape
        qkv, conv = self.qkv_proj(x), None
        if self.cfg.use_short_conv:
            qkv, conv = self.conv1d(qkv, state["conv"], mode)
        elif self.qk_silu:
            qkv = F.silu(qkv)
        q, k, v = qkv.split([H * Dk, H * Dk, HV * Dv], -1)
        if not self.qk_silu:
            v = F.silu(v)
        return q.unflatten(-1, (H, Dk)), k.unflatten(-1, (H, Dk)), v.unflatten(-1, (HV, Dv)), conv

    def output(self, o, g, conv, recurrent):
        """o `(B, T, HV, Dv)`, g `(B, T, HV·Dv)` (None without use_gate) -> `(B, T, hidden)` and the state."""
        o = self.o_norm(o, g.unflatten(-1, o.shape[-2:])) if self.cfg.use_gate else self.o_norm(o)
        state = {"recurrent": recurrent}
        return self.o_proj(o.flatten(-2)), ({"conv": conv} | state) if conv is not None else state


class GatedMLP(nn.Module):
    """fla's `GatedMLP` (SwiGLU): `down(silu(gate(x)) · up(x))`, gate and up as one product."""

    def __init__(self, hidden_size: int, hidden_ratio: int | None, intermediate_size: int | None):
        super().__init__()
        if intermediate_size is None:  # fla's rule: 2/3 of hidden_ratio x hidden, rounded up to 256
            intermediate_size = 256 * -(-int(hidden_size * (hidden_ratio or 4) * 2 / 3) // 256)
        self.gate_up = FusedLinear(hidden_size, {"gate_proj": intermediate_size, "up_proj": intermediate_size})
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)

    def forward(self, x):
        g, u = self.gate_up.split(self.gate_up(x))
        return self.down_proj(F.silu(g) * u)


class FlaBlock(nn.Module):
    def __init__(self, cfg, attn: nn.Module):
        super().__init__()
        self.attn_norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.attn = attn
        self.mlp_norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.mlp = GatedMLP(cfg.hidden_size, cfg.hidden_ratio, cfg.intermediate_size)

    def initial_state(self, batch_size: int):
        return self.attn.initial_state(batch_size)

    def forward(self, x, state, mode, **inputs):
        y, state = self.attn(self.attn_norm(x), state, mode, **inputs)
        x = x + y
        return x + self.mlp(self.mlp_norm(x)), state


class FlaBackbone(nn.Module):
    def __init__(self, cfg, attention):
        super().__init__()
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(FlaBlock(cfg, attention(cfg, i)) for i in range(cfg.num_hidden_layers))
        self.norm = nn.RMSNorm(cfg.hidden_size, eps=cfg.norm_eps)


class CausalLM(nn.Module):
    """A recurrent causal LM under the checkpoint's module names: the backbone (named `backbone_name`) holds
    `embeddings`, the blocks `layers` (each `block(x, state, mode) -> (x, state)` with
    `initial_state(batch_size)`) and a final norm (named `final_norm`); then `lm_head`, tied to the embeddings
    when the config says. A backbone with parameters of its own that its blocks read (HGRN2's lower bounds)
    has `layer_inputs()`: one dict of keyword arguments per block. State: a list with each layer's."""

    def __init__(self, cfg, backbone_name: str, backbone: nn.Module, final_norm: str):
        super().__init__()
        self.cfg, self.names = cfg, (backbone_name, final_norm)
        self.add_module(backbone_name, backbone)
        self.lm_head = declare_kind(nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False), HEAD)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = backbone.embeddings.weight

    def initial_state(self, batch_size: int = 1) -> list:
        return [layer.initial_state(batch_size) for layer in getattr(self, self.names[0]).layers]

    def forward(self, tokens: torch.Tensor, state: list | None = None, mode: str = "chunk"):
        """tokens `(B, T)` int64 -> logits `(B, T, vocab)` fp32 and the state after the last token."""
        backbone = getattr(self, self.names[0])
        state = self.initial_state(tokens.shape[0]) if state is None else state
        x, new_state = backbone.embeddings(tokens), []
        inputs = backbone.layer_inputs() if hasattr(backbone, "layer_inputs") else [{}] * len(backbone.layers)
        for layer, s, kwargs in zip(backbone.layers, state, inputs, strict=True):
            x, s = layer(x, s, mode, **kwargs)
            new_state.append(s)
        return self.lm_head(getattr(backbone, self.names[1])(x)), new_state

    def step(self, token: torch.Tensor, state: list):
        logits, state = self(token[:, None], state, mode="recurrent")
        return logits[:, 0], state


class FlaForCausalLM(CausalLM):
    """The causal LM every fla family shares (`FLAForCausalLM`): `model.embeddings`, pre-norm blocks of
    `attention(cfg, layer)` and a SwiGLU MLP, a final RMSNorm `model.norm`, the LM head; `backbone` is
    FlaBackbone or a family's subclass of it. State: a list with each layer's attention state."""

    def __init__(self, cfg, attention, backbone=FlaBackbone):
        super().__init__(cfg, "model", backbone(cfg, attention), "norm")
