"""The activations the conv applies after its bias: SiLU (Mamba-2, Gated DeltaNet) or none."""
import torch.nn.functional as F

ACTIVATIONS = ("silu", "none")


def activate(y, activation: str):
    return F.silu(y) if activation == "silu" else y
