"""The floor of a step: the bytes it must move (every weight a step reads, and the state read and written)
over the read bandwidth of this machine, measured with all cores on a buffer the size of the weights."""
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

TRIALS, TRIAL_S = 5, 0.2


def step_bytes(config: str, seed: int = 0) -> dict:
    """A step reads all weights but the embedding, of which it reads one row (all of it when the LM head
    shares it)."""
    from torch import nn

    from rnnx.export.graphs import flat_state
    from rnnx.export.source import load_model

    model = load_model(config, seed=seed)
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    embedding = next(m.weight for m in model.modules() if isinstance(m, nn.Embedding))
    if not any(m.weight is embedding for m in model.modules() if isinstance(m, nn.Linear)):
        tensors[id(embedding)] = embedding[0]
    weights = sum(t.numel() * t.element_size() for t in tensors.values())
    state = sum(s.numel() * s.element_size() for s in flat_state(model, 1)[1])
    return {"weights": weights, "state": state, "total": weights + 2 * state}


def read_bandwidth(nbytes: int) -> float:
    """Bytes per second: each core reads its share of a float32 buffer over and over with `x.max()` and with
    `dot(x, x)` (pure streaming reads, vectorised; numpy's sum is slower, its pairwise order limits it;
    both release the GIL, so the threads run in parallel); the best of a few trials, as a floor should be."""
    cores = os.cpu_count()
    buffer = np.ones(max(nbytes // 4, cores), np.float32)
    parts, size = np.array_split(buffer, cores), buffer.nbytes
    repeats = max(1, int(TRIAL_S * 20e9 / size))  # about TRIAL_S at 20 GB/s

    best = 0.0
    with ThreadPoolExecutor(cores) as pool:
        for read in (np.max, lambda x: np.dot(x, x)):
            def work(part):
                for _ in range(repeats):
                    read(part)

            list(pool.map(work, parts))  # warm the caches and the threads
            for _ in range(TRIALS):
                start = time.perf_counter()
                list(pool.map(work, parts))
                best = max(best, repeats * size / (time.perf_counter() - start))
    return best


def cache_level(nbytes: int) -> str:
    """The smallest data cache that holds the buffer, counting every instance (each core reads its own
    share), from `lscpu -C`; "DRAM" if none does."""
    table = subprocess.run(["lscpu", "-C=NAME,ALL-SIZE,TYPE", "-B"], capture_output=True, text=True).stdout
    for name, size, kind in (line.split() for line in table.splitlines()[1:]):
        if kind in ("Data", "Unified") and int(size) >= nbytes:
            return f"{name} ({_binary(int(size))} in all)"
    return "DRAM"


def _binary(n: int) -> str:
    return f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n / 2**10:g} KiB"
