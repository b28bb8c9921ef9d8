"""A checkpoint directory with random weights from a config.json, for benchmarks at a real model's shape
(e.g. bench/mamba2_130m_config.json) without downloading its weights:

    python bench/make_checkpoint.py bench/mamba2_130m_config.json /tmp/mamba2-130m [--seed 0]

The config is read by the framework that defines its `model_type` (the one rnnx checks the family against:
transformers, or fla once imported), the model is built by that framework's own initialisation, seeded, and
written with `save_pretrained` (config.json and model.safetensors, fp32)."""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rnnx.models import families  # noqa: E402,F401  (registers every family)
from rnnx.models.family import FAMILIES  # noqa: E402


def make_checkpoint(config_json: Path, out: Path, seed: int = 0) -> Path:
    model_type = json.loads(config_json.read_text()).get("model_type")
    if model_type not in FAMILIES:
        raise SystemExit(f"{config_json}: model_type {model_type!r} is not a family rnnx imports "
                         f"({', '.join(sorted(FAMILIES))})")
    if FAMILIES[model_type].framework == "fla":
        import fla  # noqa: F401  (registers fla's model types with transformers)
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config = CONFIG_MAPPING[model_type].from_json_file(str(config_json))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    print(f"{out}: {model_type}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="a config.json")
    parser.add_argument("out", type=Path, help="the checkpoint directory to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_checkpoint(args.config, args.out, args.seed)
