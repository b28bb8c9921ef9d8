"""A byte-level Gated DeltaNet (with its short convolutions) trained on the Python standard library's own
sources, end to end: train (plain PyTorch on rnnx's chunk forms) -> a checkpoint in flash-linear-attention's
layout -> export -> compile for the host, raspberry-pi-5 and cortex-m4f (where it fits) -> verify -> held-out
bits per byte on every backend -> profile -> `rnnx run` generating -> results.json.

    python examples/text/run.py [--quick] [--out DIR] [--checkpoint DIR]

--quick trains for seconds on a subset (the tests run it); --checkpoint skips training and deploys a checkpoint
this script wrote (examples/text/checkpoint/ is a full run's). See README.md beside this file.
"""
import argparse
import subprocess
import sys
import sysconfig
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

import rnnx.models.families  # noqa: F401  (registers the families)
from rnnx.errors import RnnxError
from rnnx.models.checkpoint import save_checkpoint
from rnnx.models.families.gated_deltanet.config import GatedDeltaNetConfig
from rnnx.models.family import FAMILIES

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pipeline  # noqa: E402

HERE = Path(__file__).resolve().parent
HELD_OUT_EVERY = 10  # a file is held out when crc32(its name) % 10 == 0: about a tenth, the same on every machine
CONFIG = GatedDeltaNetConfig(vocab_size=256, hidden_size=192, num_hidden_layers=3, num_heads=3, head_dim=64,
                             expand_v=1.0, hidden_ratio=2, tie_word_embeddings=True)
TINY = GatedDeltaNetConfig(vocab_size=256, hidden_size=64, num_hidden_layers=1, num_heads=1, head_dim=32,
                           expand_v=1.0, hidden_ratio=2, tie_word_embeddings=True)  # --quick's: seconds to compile
TARGETS = ("host", "raspberry-pi-5", "cortex-m4f")
PROMPT = "def "
TEMPERATURE = 0.7


@dataclass(frozen=True)
class Settings:
    """What --quick shrinks: the model, training (`steps` of `batch` random windows of `context` bytes of the first
    `train_bytes`, None for all), the held-out bytes scored on the host and on the emulated boards, the
    checks' sizes and the generated sample."""
    config: GatedDeltaNetConfig
    steps: int
    batch: int
    context: int
    lr: float
    train_bytes: int | None
    held_out_bytes: int
    board_bytes: int
    checks: pipeline.Checks
    sample_bytes: int


FULL = Settings(config=CONFIG, steps=1200, batch=16, context=256, lr=3e-3, train_bytes=None, held_out_bytes=65536,
                board_bytes=2048, checks=pipeline.Checks(prompt=64, steps=16, stream=256, profile_steps=1000,
                                                         prefill_length=1024), sample_bytes=400)
QUICK = Settings(config=TINY, steps=20, batch=4, context=128, lr=3e-3, train_bytes=1 << 18, held_out_bytes=2048,
                 board_bytes=256, checks=pipeline.Checks(prompt=16, steps=4, stream=16, profile_steps=50,
                                                         prefill_length=64), sample_bytes=40)


def corpus() -> tuple[bytes, str, dict]:
    """The top-level `*.py` modules of this Python's standard library, sorted by name, split by a stable hash of
    each file's name: (the training files' bytes, the held-out files' text, what identifies them)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(stdlib.glob("*.py"))
    if not files:
        raise RnnxError(f"{stdlib} holds no *.py modules: this Python's standard library sources are not installed")
    held_out = [f for f in files if zlib.crc32(f.name.encode()) % HELD_OUT_EVERY == 0]
    train = [f for f in files if f not in held_out]
    about = {"source": f"the top-level *.py modules of {stdlib}", "python": sys.version.split()[0],
             "split": f"held out: crc32(file name) % {HELD_OUT_EVERY} == 0", "train_files": len(train),
             "held_out_files": [f.name for f in held_out]}
    return b"".join(f.read_bytes() for f in train), "".join(f.read_text("utf-8") for f in held_out), about


def init_weights(model: torch.nn.Module) -> None:
    """fla's initialisation for training from scratch: matrices N(0, 0.02), the short convolutions as
    nn.Conv1d's default, the decay's `A_log = log U(0, 16)` and `dt_bias = softplus⁻¹(dt)`, dt log-uniform in
    [0.001, 0.1] (fla/layers/gated_deltanet.py)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rpartition(".")[2]
            if "conv1d" in name:
                bound = p.shape[-1] ** -0.5  # kaiming_uniform(a=√5) with fan_in = the kernel width
                p.uniform_(-bound, bound)
            elif p.dim() == 2:
                p.normal_(0.0, 0.02)
            elif leaf == "A_log":
                p.copy_(torch.empty_like(p).uniform_(1, 16).log())
            elif leaf == "dt_bias":
                dt = torch.empty_like(p).uniform_(torch.tensor(1e-3).log().item(), torch.tensor(0.1).log().item()).exp()
                p.copy_(dt + torch.log(-torch.expm1(-dt)))


def train(data: bytes, settings: Settings, seed: int) -> tuple[torch.nn.Module, dict]:
    """Next-byte cross-entropy (in nats) over random windows of `data`, the chunk form forward and backward."""
    torch.manual_seed(seed)
    model = FAMILIES["gated_deltanet"].model(settings.config)
    init_weights(model)
    stream = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    offsets = torch.arange(settings.context + 1)

    def loss_of_step(step: int) -> torch.Tensor:
        starts = torch.randint(0, len(stream) - settings.context - 1, (settings.batch, 1))
        windows = stream[starts + offsets].long()  # (batch, context + 1): the inputs and their next bytes
        logits, _ = model(windows[:, :-1], state=None, mode="chunk")
        return F.cross_entropy(logits.flatten(0, 1), windows[:, 1:].flatten())

    log = pipeline.fit(model, loss_of_step, steps=settings.steps, lr=settings.lr)
    return model, log | {"batch": settings.batch, "context": settings.context,
                         "bytes_seen": settings.steps * settings.batch * settings.context}


def head(text: str, n_bytes: int) -> str:
    """The first `n_bytes` of `text`'s UTF-8, cut back to a whole character."""
    return text.encode()[:n_bytes].decode("utf-8", "ignore")


def generate(artifact: Path, n_bytes: int, seed: int) -> dict:
    """What `rnnx run` prints after `PROMPT`, run as a user runs it."""
    command = ["rnnx", "run", str(artifact), "--prompt", PROMPT, "--tokens", str(n_bytes),
               "--temperature", str(TEMPERATURE), "--seed", str(seed), "--threads", str(pipeline.THREADS)]
    done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}")
    return {"command": " ".join(command), "stdout": done.stdout, "stderr": done.stderr.strip()}


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="seconds of training on a subset (for the tests)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="where everything is written")
    parser.add_argument("--checkpoint", type=Path, help="skip training: deploy this checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    train_bytes, held_out, about = corpus()
    train_bytes = train_bytes[:settings.train_bytes]
    results = pipeline.header("quick" if args.quick else "full", settings) | {
        "data": about | {"train_bytes": len(train_bytes), "held_out_bytes": len(held_out.encode())}}
    if args.checkpoint is None:
        checkpoint = out / "checkpoint"
        model, results["training"] = train(train_bytes, settings, args.seed)
        save_checkpoint(model, settings.config, checkpoint)
    else:
        checkpoint = args.checkpoint.resolve()
        results["training"] = {"skipped": f"deployed the checkpoint {checkpoint}"}
    results["checkpoint"] = {"path": str(checkpoint), "bytes": sum(f.stat().st_size for f in checkpoint.iterdir())}
    data = pipeline.write_data(out / "data" / "held_out.txt", head(held_out, settings.held_out_bytes))
    board_data = pipeline.write_data(out / "data" / "held_out_board.txt", head(held_out, settings.board_bytes))
    results |= pipeline.deploy(checkpoint, out, targets=TARGETS, data=data, board_data=board_data,
                               checks=settings.checks)
    results["sample"] = generate(out / "host", settings.sample_bytes, args.seed)
    print(results["sample"]["stdout"])
    path = pipeline.write_results(out, results)
    bpb = results["quality"]["onnxruntime"]["pytorch"]
    print(f"held-out bits per byte: PyTorch {bpb:.4f} (uniform: 8); every backend agrees: {results['passed']}; "
          f"{path}")
    return 0 if results["passed"] else 1


if __name__ == "__main__":
    pipeline.main(run)
