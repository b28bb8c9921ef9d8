"""Lift a static function's memory out of it, so that calling it allocates nothing.

After memory planning (`StaticPlanBlockMemory`, `LowerAllocTensor`) a function's intermediates and outputs
are views (`alloc_tensor`) into a few storages (`alloc_storage`) that the VM allocates at every call, from
its pool once warm. For a function whose every allocation has a static size (the step graph), `lift_workspace`
moves all of them into a new function `<name>_workspace()` that returns the views as a tuple, and gives the
function a last parameter taking that tuple: the caller allocates the workspace once and passes it to every
call, so the call path holds no allocation at all (a test checks the compiled function's bindings).

The outputs are workspace views too: each call overwrites the previous call's outputs, which the caller
copies out (`rnnx.runtime.Session` does). Functions with a dynamic size (the prefill graph, sized by T)
are left as they are: they allocate once per prompt, not per token.
"""
import tvm
from tvm import relax, tirx

from ..runtime.artifact import WORKSPACE_SUFFIX

_ALLOC_STORAGE = tvm.ir.Op.get("relax.memory.alloc_storage")
_ALLOC_TENSOR = tvm.ir.Op.get("relax.memory.alloc_tensor")


def _is_alloc(value, op) -> bool:
    return isinstance(value, relax.Call) and value.op.same_as(op)


def _static(value: relax.Call) -> bool:
    shape = value.args[0] if value.op.same_as(_ALLOC_STORAGE) else value.args[2]
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
    allocs = [b for b in bindings if _is_alloc(b.value, _ALLOC_STORAGE) or _is_alloc(b.value, _ALLOC_TENSOR)]
    if not allocs or not all(_static(b.value) for b in allocs):
        return None
    views = [b for b in allocs if _is_alloc(b.value, _ALLOC_TENSOR)]
    workspace_ty = relax.TupleType([b.var.ty for b in views])

    # the workspace function: the same storages and views, returned as one tuple
    block = relax.BindingBlock([relax.VarBinding(relax.Var(b.var.name, b.var.ty), b.value) for b in allocs])
    fresh = {b.var: nb.var for b, nb in zip(allocs, block.bindings)}
    block = relax.BindingBlock([relax.VarBinding(nb.var, _substitute(nb.value, fresh)) for nb in block.bindings])
    maker = relax.Function([], relax.SeqExpr([block], relax.Tuple([fresh[b.var] for b in views])),
                           workspace_ty, is_pure=False).with_attrs(
        {"global_symbol": name + WORKSPACE_SUFFIX, "relax.force_pure": True})

    # the function: views come from the workspace parameter, storages are gone. The parameter is typed as an
    # opaque object: typed as the tuple, every call would check each view's shape and dtype on entry.
    workspace = relax.Var("workspace", relax.ObjectType())
    index = {b.var: i for i, b in enumerate(views)}
    blocks = []
    for old in func.body.blocks:
        kept = [relax.VarBinding(b.var, _view(workspace, index[b.var], b.var.ty)) if b.var in index else b
                for b in old.bindings if not _is_alloc(b.value, _ALLOC_STORAGE)]
        blocks.append(type(old)(kept))
    lifted = relax.Function([*func.params, workspace], relax.SeqExpr(blocks, func.body.body), func.ret_ty,
                            func.is_pure, func.attrs)
    if "num_input" in func.attrs:
        lifted = lifted.with_attr("num_input", len(func.params) + 1)
    return lifted, maker


def _view(workspace: relax.Var, i: int, ty) -> relax.Call:
    return relax.Call(relax.ExternFunc("vm.builtin.tuple_getitem"), [workspace, relax.prim_value(i)], None, [ty])


def _substitute(value: relax.Call, mapping: dict) -> relax.Call:
    return relax.Call(value.op, [mapping.get(a, a) for a in value.args], value.attrs, value.ty_args)
