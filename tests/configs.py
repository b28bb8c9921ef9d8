"""The built-in configs that the export, model and compile tests run through."""
from rnnx.models import CONFIGS

# ref-small-softmax is ref-tiny-swa's op at ref-small's size with a 192 MiB KV cache (W = 8192), the
# baseline of the profile plots: it adds no kernel the tests do not already cover, and at that size it
# would add four minutes to every run. Its `rnnx verify` is run by hand (README, "Profiling").
TESTED_CONFIGS = sorted(c for c in CONFIGS if c != "ref-small-softmax")
