"""Tiny checkpoints of every family, made at test time by the source framework's own config class and
`save_pretrained` (random init, nothing downloaded)."""
from pathlib import Path

import torch

# name -> (config class's module, class name, config fields); the vocabulary is not 256 on purpose
TINY = {
    "gated_deltanet": ("fla.models", "GatedDeltaNetConfig",
                       dict(hidden_size=64, num_hidden_layers=2, num_heads=2, head_dim=16, expand_v=2, num_v_heads=4)),
    "gated_deltanet-tied": ("fla.models", "GatedDeltaNetConfig",
                            dict(hidden_size=64, num_hidden_layers=2, num_heads=2, head_dim=16, tie_word_embeddings=True,
                                 allow_neg_eigval=True, output_gate_activation="sigmoid", use_short_conv=False)),
    # mamba2-130m's architecture scaled down (one group, tied embeddings)
    "mamba2": ("transformers", "Mamba2Config",
               dict(hidden_size=64, num_hidden_layers=2, expand=2, num_heads=8, head_dim=16, state_size=16, n_groups=1,
                    tie_word_embeddings=True)),
    "mamba2-groups": ("transformers", "Mamba2Config",
                      dict(hidden_size=64, num_hidden_layers=2, expand=2, num_heads=8, head_dim=16, state_size=16,
                           n_groups=2, use_bias=True, use_conv_bias=False, conv_kernel=3, chunk_size=8)),
    "gla": ("fla.models", "GLAConfig", dict(hidden_size=64, num_hidden_layers=2, num_heads=2)),
    "gla-conv": ("fla.models", "GLAConfig",
                 dict(hidden_size=64, num_hidden_layers=2, num_heads=4, num_kv_heads=2, expand_k=1, use_short_conv=True,
                      clamp_min=-0.04, use_output_gate=False, tie_word_embeddings=True)),
    "gla-unfused": ("fla.models", "GLAConfig", dict(hidden_size=64, num_hidden_layers=2, num_heads=2, fuse_norm=False)),
    # 3 layers: the lower bounds' softmax and cumsum across layers
    "hgrn2": ("fla.models", "HGRN2Config", dict(hidden_size=64, num_hidden_layers=3, expand_ratio=16)),
    "hgrn2-conv": ("fla.models", "HGRN2Config",
                   dict(hidden_size=64, num_hidden_layers=2, num_heads=2, expand_ratio=None, use_short_conv=True,
                        use_lower_bound=False, tie_word_embeddings=True)),
    "delta_net": ("fla.models", "DeltaNetConfig", dict(hidden_size=64, num_hidden_layers=2, num_heads=2)),
    "delta_net-elu": ("fla.models", "DeltaNetConfig",
                      dict(hidden_size=64, num_hidden_layers=2, num_heads=2, qk_activation="elu", qk_norm="sum",
                           use_gate=True, use_beta=False, allow_neg_eigval=True, tie_word_embeddings=True)),
    "delta_net-noconv": ("fla.models", "DeltaNetConfig",
                         dict(hidden_size=64, num_hidden_layers=2, num_heads=4, expand_v=2, qk_activation="relu",
                              use_short_conv=False)),
    "retnet": ("fla.models", "RetNetConfig", dict(hidden_size=64, num_hidden_layers=2, num_heads=2)),
    "retnet-gqa": ("fla.models", "RetNetConfig",
                   dict(hidden_size=64, num_hidden_layers=2, num_heads=4, num_kv_heads=2, fuse_norm=False)),
    "retnet-nogate": ("fla.models", "RetNetConfig",
                      dict(hidden_size=64, num_hidden_layers=2, num_heads=2, expand_k=0.5, use_output_gate=False,
                           tie_word_embeddings=True)),
}
VOCAB = 300


def save_checkpoint(name: str, directory: Path, seed: int = 0, **overrides) -> Path:
    """Write the tiny checkpoint `name` of TINY (fields overridden) into `directory`; returns it."""
    import importlib

    from transformers import AutoModelForCausalLM

    module, cls, fields = TINY[name]
    if module == "fla.models":
        import fla  # noqa: F401  (registers fla's model types with transformers)
    config = getattr(importlib.import_module(module), cls)(vocab_size=VOCAB, **(fields | overrides))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    # random but not degenerate: fla zero-initialises some gates and norms; constants (Mamba2's D, conv bias) too
    with torch.no_grad():
        for name_, p in model.named_parameters():
            if "norm" in name_.rsplit(".", 2)[-2] or (p.numel() > 1 and bool((p == p.flatten()[0]).all())):
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(directory)
    return directory
