"""CPU schedules for the legalized PrimFuncs `schedule_dense` leaves: norms, gates, slices, activations.

TVM legalizes them as one loop nest per op, each writing a whole intermediate buffer, scalar and on one
core. `schedule_loops(target)` gives every such function (one with a root block) three things, each only
where the schedule primitives allow it:

* producers inlined into their consumers (slice -> squeeze -> sigmoid -> multiply becomes one loop nest
  and no intermediate buffer);
* the innermost loop of a spatial block vectorised, when its extent is static and a multiple of the lanes;
* the leading spatial loops fused and run in parallel when they span the tokens (a symbolic extent: the
  prefill graph); a step's loops are too short to pay for waking a thread.

In a ref-small prefill of 4K tokens these functions took 0.28 s of 1.3 s unscheduled.
"""
import tvm
from tvm import s_tir, tirx

from .schedules import SPATIAL, vector_lanes


def schedule_loops(target: tvm.target.Target) -> tvm.transform.Pass:
    lanes, cores = vector_lanes(target), int(target.attrs.get("num-cores", 1))

    @tvm.transform.module_pass(opt_level=0, name="rnnx.ScheduleLoops")
    def schedule(mod: tvm.ir.IRModule, _ctx) -> tvm.ir.IRModule:
        updates = {gv: _schedule(f, lanes, cores) for gv, f in mod.functions_items()
                   if isinstance(f, tirx.PrimFunc) and isinstance(f.body, s_tir.SBlockRealize)
                   and "tirx.is_scheduled" not in f.attrs}
        mod = mod.clone()
        for gv, func in updates.items():
            mod[gv] = func
        return mod

    return schedule


def _schedule(func: tirx.PrimFunc, lanes: int, cores: int) -> tirx.PrimFunc:
    sch = s_tir.Schedule(func)
    root = sch.get_sblock("root")
    for block in sch.get_child_blocks(root)[:-1]:
        try:
            sch.compute_inline(block)
        except s_tir.ScheduleError:
            pass  # a reduction, or read by more than one consumer: it keeps its loop nest
    for block in sch.get_child_blocks(root):
        try:
            _vectorize_and_parallelize(sch, block, lanes, cores)
        except s_tir.ScheduleError:
            pass
    return sch.mod["main"].with_attr("tirx.is_scheduled", True)


def _vectorize_and_parallelize(sch, block, lanes: int, cores: int) -> None:
    loops = sch.get_loops(block)
    kinds = [iv.iter_type for iv in sch.get(block).iter_vars]
    if len(loops) != len(kinds) or not loops:
        return  # not one loop per block axis, as legalization writes them
    leading = []
    for loop, kind in zip(loops[:-1], kinds[:-1]):
        if kind != SPATIAL:
            break
        leading.append(loop)
    inner = sch.get(loops[-1]).extent
    if kinds[-1] == SPATIAL and isinstance(inner, tirx.IntImm) and int(inner) % lanes == 0:
        _, vec = sch.split(loops[-1], [None, lanes])
        sch.vectorize(vec)
    if cores > 1 and leading and not all(isinstance(sch.get(loop).extent, tirx.IntImm) for loop in leading):
        sch.parallel(sch.fuse(*leading) if len(leading) > 1 else leading[0])

