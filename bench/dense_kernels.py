"""GFLOP/s of rnnx's dense CPU kernels against TVM's unscheduled ones, at the layer sizes of ref-tiny and ref-small.

Each kernel is the PrimFunc the compile pipeline makes for `x @ W` with W a constant [K, N]: legalized by
TVM, then either scheduled by `rnnx.compiler.schedules.schedule_dense` (W packed at compile time) or left
as TVM makes it. It is timed alone, called from Python in a loop, without the Relax VM around it. M = 1 is the step
graph's matrix-vector product; M = 4096 a 4096-token prefill (T symbolic, as in prefill.onnx). Scheduled
kernels are built for 1 core, also without weight packing (W read as [K, N]), and for all the machine's
cores; each figure is the best of several repeats, as the machine may be shared (the load average is
recorded).

Peak per core: FMA units x fp32 lanes x 2 flops x clock, measured rather than computed, as a VM's
/proc/cpuinfo shows only the nominal clock, below the one the core runs at: a loop of independent
register-only vector FMAs (no memory traffic) built by TVM for the same target. The clock it implies
assumes 2 FMA units per core.
torch.mm of 2048 x 2048 matrices on one thread (oneDNN/MKL) shows what a tuned library reaches.

Run from the repository root, with rnnx installed; a few minutes (each unscheduled M = 4096 kernel takes
seconds and is timed once):

    python bench/dense_kernels.py [--out bench/results]

Writes dense_kernels.json and dense_kernels.md to --out and prints the markdown table.
"""
import argparse
import os
import re
import time

import numpy as np
import torch
import tvm
from tvm import relax, tirx
from tvm.relax.backend.cpu_generic import pipeline as cpu
from tvm.script import tirx as T
from tvm.target.codegen import llvm_get_system_cpu

from rnnx.compiler.schedules import schedule_dense, vector_lanes
from rnnx.runtime.threads import set_threads
from report import write_results

SIZES = [(128, 512), (512, 128), (512, 2048), (2048, 512), (512, 256)]  # (K, N) of ref-tiny, ref-small layers
ROWS = [1, 4096]
FMA_UNITS = 2  # to turn the measured peak into a clock
MIN_REPEAT_S, REPEATS = 0.01, 15  # short repeats: on a shared machine some run undisturbed


def target(cores: int) -> tvm.target.Target:
    return tvm.target.Target({"kind": "llvm", "mcpu": llvm_get_system_cpu(), "num-cores": cores})


def dense_kernel(M: int, K: int, N: int, tgt: tvm.target.Target | None, pack: bool):
    """The PrimFunc the pipeline makes for x @ W (scheduled for `tgt`, or unscheduled when None) and the
    weight it is called with (packed when `pack`), as numpy."""
    w = np.random.default_rng(0).standard_normal((K, N), dtype="float32")
    x = relax.Var("x", relax.TensorType((1, tirx.Var("T", "int64") if M > 1 else 1, K), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            out = bb.emit_output(relax.op.matmul(x, relax.const(w)))
        bb.emit_func_output(out)
    build_target = tgt or target(1)
    with build_target:
        passes = cpu.legalize_passes(build_target) + ([schedule_dense(tgt, pack)] if tgt else [])
        mod = tvm.transform.Sequential(passes)(bb.get())
    call = next(b.value for b in mod["main"].body.blocks[0].bindings if isinstance(b.value, relax.Call))
    func, weight = mod[call.args[0]], call.args[1].fields[1].value.numpy()
    lib = tvm.compile(tvm.IRModule({"main": func.with_attr("global_symbol", "main")}), target=build_target)
    return lib.mod, weight, w


def gflops(M: int, K: int, N: int, tgt: tvm.target.Target | None, pack: bool = True) -> float:
    """GFLOP/s of one kernel called from Python in a loop (as the runtime calls it; TVM's time_evaluator
    misreports parallel matrix-vector kernels), with TVM's pool sized to the target's cores."""
    set_threads(int((tgt or target(1)).attrs["num-cores"]))
    lib, weight, w = dense_kernel(M, K, N, tgt, pack)
    dev = tvm.cpu()
    x = np.random.default_rng(1).standard_normal((1, M, K), dtype="float32")
    args = [tvm.runtime.tensor(a, dev) for a in (x, weight, np.zeros((1, M, N), "float32"))]
    start = time.perf_counter()
    lib["main"](*args)
    once = time.perf_counter() - start
    ref = x[0].astype(np.float64) @ w
    assert np.abs(args[2].numpy()[0] - ref).max() <= 1e-5 * np.abs(ref).max(), (M, K, N, tgt)
    if once > 1.0:  # a slow unscheduled kernel: its first run is measurement enough
        return 2 * M * K * N / once / 1e9
    number, call = max(1, int(MIN_REPEAT_S / once)), lib["main"]
    seconds = min(_seconds(lambda: [call(*args) for _ in range(number)]) / number for _ in range(REPEATS))
    return 2 * M * K * N / seconds / 1e9


def fma_peak_gflops(tgt: tvm.target.Target, n: int = 2_000_000) -> float:
    """One core's fp32 FMA throughput: `chains` independent vector accumulators, all in registers (16 fill
    half of AVX-512's 32 registers; 12 leave room in AVX2's 16), enough to cover the FMA latency."""
    lanes = vector_lanes(tgt)
    chains = 16 if lanes == 16 else 12

    @T.prim_func(s_tir=True)
    def fma_loop(out: T.Buffer((chains, lanes), "float32"), n: T.int64, a: T.float32, b: T.float32):
        acc = T.sblock_alloc_buffer((chains, lanes), scope="local")
        for j, l in T.grid(chains, lanes):
            with T.sblock("init"):
                vj, vl = T.axis.remap("SS", [j, l])
                acc[vj, vl] = T.float32(0)
        for _ in range(n):
            for j in T.unroll(chains):
                for l in T.vectorized(lanes):
                    with T.sblock("fma"):
                        vj, vl = T.axis.remap("SS", [j, l])
                        acc[vj, vl] = acc[vj, vl] * a + b
        for j, l in T.grid(chains, lanes):
            with T.sblock("out"):
                vj, vl = T.axis.remap("SS", [j, l])
                out[vj, vl] = acc[vj, vl]

    lib = tvm.compile(tvm.IRModule({"main": fma_loop.with_attr("global_symbol", "main")}), target=tgt).mod
    out = tvm.runtime.tensor(np.zeros((chains, lanes), "float32"))
    seconds = min(lib.time_evaluator("main", tvm.cpu(), number=1, repeat=3 * REPEATS)(out, n, 0.5, 0.5).results)
    return 2 * chains * lanes * n / seconds / 1e9


def torch_gflops(n: int = 2048) -> float:
    torch.set_num_threads(1)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(REPEATS))
    return 2 * n**3 / best / 1e9


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def machine(cores: int) -> dict:
    info = open("/proc/cpuinfo").read()
    lanes, per_core = vector_lanes(target(1)), fma_peak_gflops(target(1))
    return dict(cpu=re.search(r"model name\s*:\s*(.*)", info).group(1), mcpu=llvm_get_system_cpu(), cores=cores,
                nominal_ghz=float(re.search(r"cpu MHz\s*:\s*([\d.]+)", info).group(1)) / 1000, fp32_lanes=lanes,
                peak_gflops_per_core=per_core, implied_ghz=per_core / (FMA_UNITS * lanes * 2),
                tvm=tvm.__version__, torch_mm_1_thread_gflops=torch_gflops())




def table(rows: list[dict], m: dict) -> str:
    cores, core_peak = m["cores"], m["peak_gflops_per_core"]
    lines = [f"| K x N | M | unscheduled | scheduled, W [K, N], 1 core | scheduled, 1 core | % of core peak "
             f"| scheduled, {cores} cores | % of peak |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['K']} x {r['N']} | {r['M']} | {r['unscheduled']:.2f} | {r['scheduled_1_core_unpacked']:.1f} | "
                     f"{r['scheduled_1_core']:.1f} | "
                     f"{100 * r['scheduled_1_core'] / core_peak:.0f}% | {r['scheduled_all_cores']:.1f} | "
                     f"{100 * r['scheduled_all_cores'] / (core_peak * cores):.0f}% |")
    lines.append(f"\nGFLOP/s, best of {REPEATS} repeats. Peak per core {core_peak:.0f} GFLOP/s, measured (register-only "
                 f"FMA loop; = {FMA_UNITS} FMA units x {m['fp32_lanes']} lanes x 2 x {m['implied_ghz']:.1f} GHz, "
                 f"nominal {m['nominal_ghz']:.1f} GHz); torch.mm 2048^3 on 1 thread: {m['torch_mm_1_thread_gflops']:.0f} "
                 f"GFLOP/s. M = 1 reads 2 bytes of weight per flop: it is bound by "
                 f"bandwidth (L2 for the small layers, L3 for the 4 MB ones), not by the FMA units. Load average "
                 f"before/after: {m['load_average'][0]:.1f} / {m['load_average'][1]:.1f} (other work on the machine "
                 f"slows the {cores}-core figures most).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args()
    cores = os.cpu_count()
    load_before = os.getloadavg()
    m = machine(cores)
    shapes = [(M, K, N) for M in ROWS for K, N in SIZES]
    # every all-cores figure first: once TVM's pool has been told to use one worker, it does not always
    # use more again (see rnnx.runtime.threads.set_threads)
    all_cores = {shape: gflops(*shape, target(cores)) for shape in shapes}
    rows = []
    for M, K, N in shapes:
        row = dict(K=K, N=N, M=M, unscheduled=gflops(M, K, N, None),
                   scheduled_1_core_unpacked=gflops(M, K, N, target(1), pack=False),
                   scheduled_1_core=gflops(M, K, N, target(1)), scheduled_all_cores=all_cores[M, K, N])
        print(f"K={K:5d} N={N:5d} M={M:5d}: " + ", ".join(f"{k} {v:.2f}" for k, v in list(row.items())[3:]),
              flush=True)
        rows.append(row)
    m["load_average"] = [load_before[0], os.getloadavg()[0]]
    text = table(rows, m)
    report = dict(machine=m, unit="GFLOP/s", results=rows)
    write_results(args.out, "dense_kernels", report, text)
    print(text)


if __name__ == "__main__":
    main()
