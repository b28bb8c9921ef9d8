"""Export time and parity of every reference config in every flavor: the figures of the README's export table.

    python bench/export_report.py [--configs ref-tiny ...] [--stream 10000] [--out bench/results]

Writes export_report.json and export_report.md. Each row exports the config with `rnnx.export.export_model`
(timed; the first export also pays for importing the exporter) and runs `rnnx.verify.verify_export`: the
graphs in onnxruntime (the reference evaluator for `standard`) against PyTorch, including a stream of
`--stream` steps for drift (the reference evaluator streams `--stream / 10`: it is pure Python).
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

from rnnx.export import FLAVORS, export_model
from rnnx.models import CONFIGS
from rnnx.verify import verify_export
from report import write_results


def measure(config: str, flavor: str, stream: int, workdir: Path) -> dict:
    start = time.perf_counter()
    manifest = export_model(config, workdir / f"{config}-{flavor}", flavor=flavor)
    seconds = time.perf_counter() - start
    length = stream // 10 if flavor == "standard" else stream
    backend, checks = verify_export(workdir / f"{config}-{flavor}", stream=length)
    return {"config": config, "flavor": flavor, "export_s": round(seconds, 2), "backend": backend,
            "spellings": [o.spelling for o in manifest.ops], "state_bytes": manifest.state_bytes,
            "checks": [c.as_dict() for c in checks], "passed": all(c.passed for c in checks)}


def table(rows: list[dict]) -> str:
    lines = ["| config | flavor | export | backend | prefill | steps | prefill+steps | stream (length) | pass |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        errs = [f"{c['max_rel']:.1e}" for c in r["checks"]]
        stream = r["checks"][-1]["name"].split()[1]
        lines.append(f"| {r['config']} | {r['flavor']} | {r['export_s']:.1f} s | {r['backend']} | "
                     f"{' | '.join(errs[:3])} | {errs[3]} ({stream}) | {'yes' if r['passed'] else 'NO'} |")
    return "\n".join(lines) + ("\n\nWorst error over the logits and every state tensor, relative to that tensor's largest "
                                "reference value; a check passes at 1e-5 + 1e-5 · max|reference| (fp32).\n")




def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=[c for c in CONFIGS])
    parser.add_argument("--flavors", nargs="+", default=list(FLAVORS))
    parser.add_argument("--stream", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        rows = []
        for config in args.configs:
            for flavor in args.flavors:
                rows.append(measure(config, flavor, args.stream, Path(workdir)))
                print(table(rows[-1:]).splitlines()[2], flush=True)
    write_results(args.out, "export_report", {"cpu_count": os.cpu_count(), "rows": rows}, table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
