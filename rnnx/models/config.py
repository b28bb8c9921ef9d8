"""Configurations of the reference models (DESIGN.md, "Models we measure on"): byte-level language models,
and models over sensor streams that take a float vector per step and give class scores or a forecast."""
from dataclasses import dataclass

from ..errors import RnnxError
from ..manifest import Signature

BASIC_MOTIONS = ["badminton", "running", "standing", "walking"]  # aeon's BasicMotions: 6 channels, 4 activities


@dataclass(frozen=True)
class ModelConfig:
    name: str
    layers: int
    d_model: int
    heads: int
    head_dim: int
    mixer: str                  # the name of the rnnx op that mixes tokens
    mlp_ratio: int = 4
    vocab_size: int = 256       # bytes
    window: int = 64            # sliding_window_attention only
    chunk_size: int = 64
    norm_eps: float = 1e-6
    input_channels: int | None = None  # None: tokens in [0, vocab_size); else a float32 vector per step
    output: str = "logits"             # logits (of the next token) | scores (of `labels`) | forecast
    output_size: int | None = None     # vocab_size for a language model
    labels: list[str] | None = None    # the classes `scores` rank

    def __post_init__(self):
        problems = self.signature.problems()
        if problems or (self.input_channels is None) != (self.output == "logits"):
            raise RnnxError(f"model config {self.name}: " + (problems[0].removeprefix("signature.") if problems else
                            "a token model gives logits; a model of float vectors gives scores or a forecast"))

    @property
    def signature(self) -> Signature:
        if self.input_channels is None:
            return Signature("tokens", self.vocab_size, "logits", self.output_size or self.vocab_size)
        return Signature("features", self.input_channels, self.output, self.output_size or 0, self.labels)


CONFIGS = {c.name: c for c in (
    ModelConfig("ref-tiny", layers=2, d_model=128, heads=4, head_dim=32, mixer="decay_linear_attention"),
    ModelConfig("ref-small", layers=6, d_model=512, heads=8, head_dim=64, mixer="decay_linear_attention"),
    ModelConfig("ref-small-gdn", layers=6, d_model=512, heads=8, head_dim=64, mixer="gated_delta_rule"),
    ModelConfig("ref-aaren", layers=4, d_model=256, heads=4, head_dim=64, mixer="aaren"),
    # The softmax baseline: same shape as ref-tiny, a constant-size window cache instead of a linear state.
    ModelConfig("ref-tiny-swa", layers=2, d_model=128, heads=4, head_dim=32, mixer="sliding_window_attention"),
    # The plots' softmax baseline: ref-small's shape, W >= the plotted stream: full attention, a filling KV cache.
    ModelConfig("ref-small-softmax", layers=6, d_model=512, heads=8, head_dim=64, mixer="sliding_window_attention", window=8192),
    # Fits a Cortex-M4 with 256 KB RAM and 1 MB flash: 0.56 MB of fp32 weights, 16 KB of state.
    ModelConfig("ref-micro", layers=2, d_model=64, heads=2, head_dim=32, mixer="decay_linear_attention"),
    # Sensor-stream classifiers of BasicMotions' shape (6 channels, 4 classes, scored after every sample): Aaren
    # at the size of the Aaren paper's time-series classifiers (the Time Series Library's setting: 3 layers,
    # d_model 128, a 2x MLP), and a decay-linear one of ref-micro's size that fits a Cortex-M4.
    ModelConfig("ref-aaren-motion", layers=3, d_model=128, heads=4, head_dim=32, mixer="aaren", mlp_ratio=2,
                input_channels=6, output="scores", output_size=4, labels=BASIC_MOTIONS),
    ModelConfig("ref-micro-motion", layers=2, d_model=64, heads=2, head_dim=32, mixer="decay_linear_attention",
                input_channels=6, output="scores", output_size=4, labels=BASIC_MOTIONS),
)}


def get_config(name: str) -> ModelConfig:
    if name not in CONFIGS:
        raise RnnxError(f"unknown model config {name!r}; built-in configs: {', '.join(CONFIGS)}")
    return CONFIGS[name]
