"""Lift a static function's memory out of it, so that calling it allocates nothing.

After memory planning (`StaticPlanBlockMemory`, `LowerAllocTensor`) a function's intermediates and outputs
are views (`alloc_tensor`) into a few storages (`alloc_storage`) that the VM allocates at every call, from
its pool once warm. For a function whose every allocation has a static size (the step graph), `lift_workspace`
moves all of them, and the reshapes of them, into a new function `<name>_workspace()` that returns the views
as a tuple, and gives the function a last parameter taking that tuple: the caller allocates the workspace
once and passes it to every call, so the call path allocates nothing, not even a tensor header (a test
counts the VM's allocations). It runs after `KillAfterLastUse`, whose kills it drops from such a function.

The outputs are workspace views too: each call overwrites the previous call's outputs, which the caller
copies out (`rnnx.runtime.Session` does). Functions with a dynamic size (the prefill graph, sized by T)
are left as they are: they allocate once per prompt, not per token.
"""
import tvm
from tvm import relax, tirx

from ..runtime.artifact import WORKSPACE_SUFFIX

_ALLOC_STORAGE = tvm.ir.Op.get("relax.memory.alloc_storage")
_ALLOC_TENSOR = tvm.ir.Op.get("relax.memory.alloc_tensor")
_RESHAPE = tvm.ir.Op.get("relax.reshape")
_KILLS = (tvm.ir.Op.get("relax.memory.kill_tensor"), tvm.ir.Op.get("relax.memory.kill_storage"))


def _is(value, *ops) -> bool:
    return isinstance(value, relax.Call) and any(value.op.same_as(op) for op in ops)


def _static(shape) -> bool:
    return isinstance(shape, relax.ShapeExpr) and all(isinstance(d, tirx.IntImm) for d in shape.values)


@tvm.transform.module_pass(opt_level=0, name="rnnx.LiftWorkspace")
def lift_workspace(mod: tvm.ir.IRModule, _ctx) -> tvm.ir.IRModule:
    mod = mod.clone()
    for gv, func in list(mod.functions_items()):
        lifted = _lift(gv.name_hint, func) if isinstance(func, relax.Function) else None
        if lifted is not None:
            mod[gv], mod[relax.GlobalVar(gv.name_hint + WORKSPACE_SUFFIX)] = lifted
    return mod


def _lift(name: str, func: relax.Function):
    bindings = [b for block in func.body.blocks for b in block.bindings]
    storages = [b for b in bindings if _is(b.value, _ALLOC_STORAGE)]
    tensors = [b for b in bindings if _is(b.value, _ALLOC_TENSOR)]
    if not tensors or not all(_static(b.value.args[0]) for b in storages) \
            or not all(_static(b.value.args[2]) for b in tensors):
        return None

    # The workspace: the storages, then every view of one (deduplicated), and every reshape of a view
    # (a view too: a step's reshapes would otherwise make a tensor header at every call).
    maker = [relax.VarBinding(relax.Var(b.var.name, b.var.ty), b.value) for b in storages]
    fresh = {b.var: nb.var for b, nb in zip(storages, maker)}   # main's var -> its workspace-side var
    entries, index = {}, {}                                      # workspace-side key -> position; var -> it
    for b in bindings:
        value = b.value
        if isinstance(value, relax.Var) and value in fresh:
            fresh[b.var] = fresh[value]  # an alias of a view
            continue
        if not (_is(value, _ALLOC_TENSOR) or _is(value, _RESHAPE) and value.args[0] in fresh and _static(value.args[1])):
            continue
        value = relax.Call(value.op, [fresh.get(a, a) for a in value.args], value.attrs, value.ty_args)
        key = str(value)  # equal text: the same view of the same storage
        if key not in entries:
            entries[key] = len(entries)
            maker.append(relax.VarBinding(relax.Var(b.var.name, b.var.ty), value))
        index[b.var] = entries[key]
        fresh[b.var] = maker[len(storages) + entries[key]].var
    views = maker[len(storages):]
    maker_fn = relax.Function([], relax.SeqExpr([relax.BindingBlock(maker)], relax.Tuple([v.var for v in views])),
                              relax.TupleType([v.var.ty for v in views]), is_pure=False).with_attrs(
        {"global_symbol": name + WORKSPACE_SUFFIX, "relax.force_pure": True})

    # The function: views come from the workspace parameter; storages and kills (nothing is freed early:
    # everything lives in the workspace) are gone. The parameter is typed as an opaque object: typed as
    # the tuple, every call would check each view's shape and dtype on entry.
    workspace = relax.Var("workspace", relax.ObjectType())
    blocks = []
    for old in func.body.blocks:
        kept = [relax.VarBinding(b.var, _view(workspace, index[b.var], b.var.ty)) if b.var in index else b
                for b in old.bindings if not _is(b.value, _ALLOC_STORAGE, *_KILLS)]
        blocks.append(type(old)(kept))
    lifted = relax.Function([*func.params, workspace], relax.SeqExpr(blocks, func.body.body), func.ret_ty,
                            func.is_pure, func.attrs)
    if "num_input" in func.attrs:
        lifted = lifted.with_attr("num_input", len(func.params) + 1)
    return lifted, maker_fn


def _view(workspace: relax.Var, i: int, ty) -> relax.Call:
    return relax.Call(relax.ExternFunc("vm.builtin.tuple_getitem"), [workspace, relax.prim_value(i)], None, [ty])
