"""Parity of every imported family against its own framework: the figures of the README's families table.

    python bench/import_parity.py [--families gated_deltanet ...] [--targets host raspberry-pi-5 riscv64]
                                  [--prompt 16] [--steps 8] [--stream 64] [--out bench/results]

For each tiny checkpoint of tests/families/checkpoints.py (random weights, made with the framework's own
config class): `rnnx export`, then `rnnx verify` of the export and of the artifact compiled for each
target (boards under their emulators), each against the checkpoint run by fla (Triton's interpreter) or
transformers. Writes import_parity.json and import_parity.md: per family and stage, the largest error
relative to the logits' scale over the checks against the source (prefill, steps, stream).
"""
import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny checkpoints

from report import write_results  # noqa: E402
from tests.families.checkpoints import TINY, save_checkpoint  # noqa: E402

from rnnx.export import export_model  # noqa: E402
from rnnx.packaging import compile_export  # noqa: E402
from rnnx.verify import verify, verify_emulated  # noqa: E402

EMULATED = {"raspberry-pi-5", "riscv64", "cortex-m4f", "cortex-m7", "cortex-m55"}


def against_source(checks) -> dict:
    source = [c for c in checks if " vs fla " in c.name or " vs transformers " in c.name]
    return {"max_rel": max(c.max_rel for c in source), "max_abs": max(c.max_abs for c in source),
            "passed": all(c.passed for c in checks), "checks": [c.as_dict() for c in checks]}


def measure(family: str, targets: list[str], args, workdir: Path) -> dict:
    export = workdir / "export"
    export_model(str(save_checkpoint(family, workdir / "checkpoint")), export)
    rows = {"export": against_source(verify(export, prompt=args.prompt, steps=args.steps, stream=args.stream)[1])}
    for target in targets:
        artifact = workdir / target
        compile_export(export, target, artifact)
        _, checks = (verify_emulated(artifact, prompt=args.prompt, steps=args.steps) if target in EMULATED else
                     verify(artifact, prompt=args.prompt, steps=args.steps, stream=args.stream))
        rows[target] = against_source(checks)
        print(f"{family} {target}: max rel {rows[target]['max_rel']:.1e}", flush=True)
    return rows


def markdown(results: dict, stages: list[str]) -> str:
    lines = ["| family | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
    for family, rows in results["families"].items():
        lines.append(f"| {family} | " + " | ".join(
            f"{rows[s]['max_rel']:.1e}" + ("" if rows[s]["passed"] else " FAIL") for s in stages) + " |")
    return "\n".join(lines) + ("\n\nLargest |error| / max |source logits| over prefill, steps and the stream "
                               "(emulated targets: steps from the start and prefill + steps), against the "
                               "checkpoint in its own framework; tolerance 1e-5 (rnnx/numerics.py).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=sorted(TINY), default=sorted(TINY))
    parser.add_argument("--targets", nargs="+", default=["host", "raspberry-pi-5", "riscv64"])
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--stream", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    results = {"args": vars(args) | {"out": str(args.out)}, "families": {}}
    with tempfile.TemporaryDirectory(prefix="import_parity.") as scratch:
        for family in args.families:
            (Path(scratch) / family).mkdir()
            results["families"][family] = measure(family, args.targets, args, Path(scratch) / family)
            # after each family, so that a long run that fails late keeps what it measured
            table = markdown(results, ["export", *args.targets])
            write_results(args.out, "import_parity", results, table)
    print(table)


if __name__ == "__main__":
    main()
