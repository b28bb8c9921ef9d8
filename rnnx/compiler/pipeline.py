"""The compile pipeline: a short list of named pass lists, TVM's CPU pipeline with rnnx's additions.

- legalize: constant subexpressions folded first (the transpose of a tied LM head, which shares its matrix
  with the embedding and so reaches us as `MatMul(x, Transpose(W))`: folded, it is a plain [K, N] weight the
  dense schedules match); `exp` and `sigmoid` as vectorisable arithmetic (`fast_math`) instead of libm calls;
- schedule: TVM's CPU pipeline schedules nothing, so rnnx's dense schedules (`schedules`) and loop
  schedules for everything else (`loop_schedules`) go between legalization and lowering;
- finalize: once memory is planned, a static function's allocations move out of it (`workspace`), so
  that a step allocates nothing.
"""
import tvm
from tvm import relax
from tvm.relax.backend.cpu_generic import pipeline as cpu

from .fast_math import FAST_MATH
from .loop_schedules import schedule_loops
from .schedules import schedule_dense
from .workspace import lift_workspace


def stages(target: tvm.target.Target) -> dict[str, list]:
    return {
        "dispatch": cpu.library_dispatch_passes(target),
        "legalize": [relax.transform.FoldConstant(), relax.transform.LegalizeOps(FAST_MATH),
                     *cpu.legalize_passes(target)[1:]],
        "schedule": [schedule_dense(target), schedule_loops(target)],
        "lower": cpu.dataflow_lower_passes(target),
        "finalize": _after("KillAfterLastUse", cpu.finalize_passes(target), lift_workspace),
    }


def pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    return tvm.transform.Sequential([p for passes in stages(target).values() for p in passes], name="rnnx_cpu")


def _after(name: str, passes: list, extra: tvm.transform.Pass) -> list:
    at = [p.info.name for p in passes].index(name) + 1
    return [*passes[:at], extra, *passes[at:]]
