"""`python -m rnnx.verify.source_worker DIR`: run a checkpoint in its own framework for `rnnx.verify.source`,
one request at a time from stdin, replies on stdout (see there). Exits when stdin closes."""
import copy
import inspect
import os
import sys

import torch
from torch.utils import _pytree as pytree


def _load(directory: str):
    from ..models.checkpoint import read_checkpoint, read_config
    from ..models.family import family_of

    checkpoint = read_checkpoint(directory)
    family = family_of(checkpoint)
    if family.framework == "fla":
        if not torch.cuda.is_available():
            os.environ["TRITON_INTERPRET"] = "1"  # fla's kernels on CPU tensors (TOOLCHAIN-NOTES)
            import triton.runtime.autotuner as autotuner

            # the interpreter has no GPU to benchmark configs on: keep the first of each autotuner's
            prune = autotuner.Autotuner.prune_configs
            autotuner.Autotuner.prune_configs = lambda self, *a, **k: prune(self, *a, **k)[:1]
        import fla  # noqa: F401  (registers its model types with transformers' Auto classes)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **(family.source_options or {}))
    return model.eval(), family, read_config(family.config, checkpoint)


@torch.no_grad()
def main(directory: str) -> None:
    from .source import read_message, write_message

    model, family, cfg = _load(directory)
    caches = {}
    # transformers' own recurrent models (Mamba2) name their cache `cache`, in and out; the others (fla's)
    # `past_key_values`, which transformers' Mamba2 would swallow unused into its **kwargs
    key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # the framework's prints must not corrupt the replies
    while (request := read_message(stdin)) is not None:
        tensors, meta = request
        cache = copy.deepcopy(caches[meta["cache"]]) if meta["cache"] is not None else None
        out = model(input_ids=torch.from_numpy(tensors["tokens"]), **{key: cache}, use_cache=True)
        caches[meta["save"]] = getattr(out, key)
        state = pytree.tree_leaves(family.source_state(getattr(out, key), cfg))
        write_message(stdout, {"logits": out.logits.float().numpy(),
                               **{f"state_{i}": s.float().numpy() for i, s in enumerate(state)}})


if __name__ == "__main__":
    main(sys.argv[1])
