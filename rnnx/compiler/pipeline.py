"""The compile pipeline: a short list of named pass lists. TVM's CPU pipeline applies no schedules to
dense layers, so rnnx's own go between legalization and lowering."""
import tvm
from tvm.relax.backend.cpu_generic import pipeline as cpu

from .schedules import schedule_dense


def stages(target: tvm.target.Target) -> dict[str, list]:
    return {
        "dispatch": cpu.library_dispatch_passes(target),
        "legalize": cpu.legalize_passes(target),
        "schedule": [schedule_dense(target)],
        "lower": cpu.dataflow_lower_passes(target),
        "finalize": cpu.finalize_passes(target),
    }


def pipeline(target: tvm.target.Target) -> tvm.transform.Pass:
    return tvm.transform.Sequential([p for passes in stages(target).values() for p in passes], name="rnnx_cpu")
