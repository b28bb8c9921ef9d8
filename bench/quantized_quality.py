"""The quantization gates on trained models: the task metric of each format (fp32, int8, int4, and both with int8
activations: int8-a8, int4-a8) on each backend
(onnxruntime on the export, rnnx on the host, the boards' own programs under qemu), next to the fp32 PyTorch
model's, and the KL of the host artifact's predictions from the fp32 export's along a long stream, by position.

    python bench/quantized_quality.py --model examples/text/checkpoint HELD_OUT.txt [BOARD_DATA] \\
        --model examples/motion/out/BasicMotions/checkpoint TEST.npz [BOARD.npz] [--stream 10000] [--out DIR]

Each `--model` is a checkpoint, the data `rnnx verify --data` scores it on and, optionally, a smaller file for
the emulated boards (the examples write both to their out/data/). Writes quantized_quality.json and .md to --out
and prints the table; gates: rnnx/numerics.py QUANTIZED_TASK_TOLERANCE and KL_FLAT_RATIO.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from report import write_results

from rnnx.errors import RnnxError
from rnnx.export import export_model
from rnnx.packaging import compile_export
from rnnx.quantize import quantize_export
from rnnx.verify import drift, quality

FORMATS = ("fp32", "int8", "int4", "int8-a8", "int4-a8")
BOARDS = ("raspberry-pi-5", "cortex-m4f")


def measure(checkpoint: str, data: Path, board_data: Path | None, stream: int, work: Path) -> dict:
    exports = {"fp32": work / "fp32"}
    export_model(checkpoint, exports["fp32"])
    result = {}
    for fmt in FORMATS:
        if fmt != "fp32":
            exports[fmt] = work / fmt
            weights, _, activations = fmt.partition("-a")
            quantize_export(exports["fp32"], exports[fmt], weights, activations="int8" if activations else None)
        rows = {"onnxruntime": quality(exports[fmt], data).as_dict()}
        host = work / f"{fmt}-host"
        compile_export(exports[fmt], "host", host)
        rows["host"] = quality(host, data).as_dict()
        for board in BOARDS if board_data is not None else ():
            try:
                compile_export(exports[fmt], board, work / f"{fmt}-{board}")
            except RnnxError as e:  # the fp32 weights exceed the board's flash: that is a finding
                rows[board] = {"skipped": str(e)}
                continue
            rows[board] = quality(work / f"{fmt}-{board}", board_data, emulate=True).as_dict()
        kl = drift(host, steps=stream) if fmt != "fp32" else None
        result[fmt] = {"quality": rows, "drift": kl.as_dict() if kl else None}
        print(f"{Path(checkpoint).name} {fmt}: " + ", ".join(
            f"{b} {r['values'][next(n for n in r['values'] if n != 'PyTorch')]:.5f}" if "values" in r else f"{b} skipped"
            for b, r in rows.items()) + (f"; KL mean {kl.mean:.2e} flat {kl.flat}" if kl else ""), flush=True)
    return result


def markdown(results: dict) -> str:
    lines = ["| model | format | backend | metric | value | fp32 PyTorch | change | gate |", "|---" * 8 + "|"]
    for model, formats in results["models"].items():
        for fmt, entry in formats.items():
            for backend, q in entry["quality"].items():
                if "skipped" in q:
                    lines.append(f"| {model} | {fmt} | {backend} | – | skipped: {q['skipped'][:120]} | | | |")
                    continue
                value = next(v for n, v in q["values"].items() if n != "PyTorch")
                ref = q["values"]["PyTorch"]
                change = f"{(value - ref) / ref:+.2%}" if q["metric"] != "accuracy" else f"{value - ref:+.3f}"
                lines.append(f"| {model} | {fmt} | {backend} | {q['metric']} | {value:.5f} | {ref:.5f} | {change} "
                             f"| {'pass' if q['passed'] else 'FAIL'} ({q['rule']}) |")
    lines += ["", "| model | format | KL(fp32 ‖ quantized) per step, by tenth of the stream (nats) | mean | flat |",
              "|---|---|---|---|---|"]
    for model, formats in results["models"].items():
        for fmt, entry in formats.items():
            if entry["drift"]:
                d = entry["drift"]
                lines.append(f"| {model} | {fmt} | {' '.join(f'{v:.2e}' for v in d['kl'])} | {d['mean']:.2e} | "
                             f"{'yes' if d['flat'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", action="append", required=True, metavar="CHECKPOINT DATA [BOARD_DATA]")
    parser.add_argument("--stream", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    results = {"command": " ".join(sys.argv), "stream": args.stream, "models": {}}
    start = time.perf_counter()
    for checkpoint, data, *board in args.model:
        with tempfile.TemporaryDirectory() as work:
            name = Path(checkpoint).parent.name if Path(checkpoint).name == "checkpoint" else Path(checkpoint).name
            results["models"][name] = measure(checkpoint, Path(data), Path(board[0]) if board else None,
                                              args.stream, Path(work))
    results["seconds"] = round(time.perf_counter() - start)
    write_results(args.out, "quantized_quality", results, markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
