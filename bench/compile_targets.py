"""Every reference config compiled for every target: time, what was built, and whether it runs under
emulation here. The figures of the README's targets table.

    python bench/compile_targets.py [--configs ref-tiny ...] [--targets raspberry-pi-5 ...] [--emulate]
                                    [--out bench/results]

Writes compile_targets.json and compile_targets.md. A microcontroller target refuses a model that does not
fit its memory; that refusal (with the sizes) is the expected result for the large configs and is
recorded as such. With --emulate, each artifact that has an emulator here also runs `rnnx verify
--emulate` (steps only, 40 tokens).
"""
import argparse
import shutil
import tempfile
import time
from pathlib import Path

from rnnx.packaging import compile_export
from rnnx.errors import RnnxError
from rnnx.export import export_model
from rnnx.targets import TARGETS
from rnnx.verify import verify_emulated
from report import write_results


def measure(export: Path, config: str, target: str, emulate: bool, workdir: Path) -> dict:
    row = {"config": config, "target": target}
    start = time.perf_counter()
    try:
        manifest = compile_export(export, target, workdir / f"{config}-{target}")
    except RnnxError as e:
        return row | {"result": "refused", "why": str(e), "compile_s": round(time.perf_counter() - start, 1)}
    row |= {"result": "compiled", "compile_s": round(time.perf_counter() - start, 1),
            "files": sorted(manifest.files), "bytes": sum((workdir / f"{config}-{target}" / f).stat().st_size
                                                        for f in manifest.files)}
    if emulate and TARGETS[target].emulator:
        _, checks = verify_emulated(workdir / f"{config}-{target}", prompt=32, steps=8)
        row |= {"emulated": all(c.passed for c in checks), "max_rel": max(c.max_rel for c in checks)}
    return row


def table(rows: list[dict]) -> str:
    lines = ["| config | target | result | compile | artifact bytes | emulated parity (max rel error) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        result = r["result"] if r["result"] == "compiled" else f"refused: {r['why']}"
        emulated = ("-" if "emulated" not in r else
                    f"{'yes' if r['emulated'] else 'NO'} ({r['max_rel']:.1e})")
        lines.append(f"| {r['config']} | {r['target']} | {result} | {r['compile_s']:.1f} s | "
                     f"{r.get('bytes', 0):,} | {emulated} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["ref-tiny", "ref-small", "ref-small-gdn", "ref-aaren", "ref-micro"])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--emulate", action="store_true")
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            export_model(config, Path(tmp) / config)
            for target in args.targets:
                rows.append(measure(Path(tmp) / config, config, target, args.emulate, Path(tmp)))
                print(rows[-1], flush=True)
                # artifacts of the large configs are ~170 MB each: keep the disk use to one at a time
                for path in Path(tmp).glob(f"{config}-*"):
                    shutil.rmtree(path)
    write_results(args.out, "compile_targets", {"rows": rows}, table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
