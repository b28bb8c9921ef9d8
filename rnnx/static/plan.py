"""The step's memory plan: every tensor the compiled step touches, placed at compile time in one of two
blobs, the arena (RAM: state, the step's input, intermediates, kernel scratch) or the constants (read-only:
weights, then the initial state), and the kernel calls in order.

It reads the finalized step module (after `rnnx.compiler.pipeline`): `main(input, *state, workspace)` is a
list of kernel calls whose arguments are its parameters, constants and workspace views, and
`main_workspace()` lays the views out in a few storages. Shape checks are dropped (every shape is static).
"""
from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax

from ..errors import RnnxError
from ..manifest import Signature
from ..runtime.artifact import WORKSPACE_SUFFIX

ALIGN = 64  # TVM's kAllocAlignment: the kernels may assume it of every buffer
_ALLOC_STORAGE = tvm.ir.Op.get("relax.vm.alloc_storage")
_ALLOC_TENSOR = tvm.ir.Op.get("relax.vm.alloc_tensor")
_NULL = tvm.ir.Op.get("relax.null_value")
_CHECKS = ("vm.builtin.check_tensor_info", "vm.builtin.match_shape")


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class Tensor:
    """`shape`/`dtype` at byte `offset` of the arena or the constants (`blob`: "arena" | "const")."""
    blob: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass
class StepPlan:
    """Offsets in bytes. Arena: [state | input, pool top | storages | kernel scratch pool]; constants:
    [weights | initial state laid out as in the arena's state region, so reset is one copy]. `input`: the
    step's, a token `(1, 1)` int64 or a feature vector `(1, 1, C)` float32; `outputs`: `(1, 1, N)` float32."""
    state: list[Tensor]
    input: Tensor
    outputs: Tensor
    storages: list[tuple[int, int]]                        # (offset, bytes) of each workspace storage
    calls: list[tuple[str, list[Tensor | int]]]            # kernel name, arguments (a tensor or an int64 scalar)
    constants: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (offset, value) in the constants
    weight_bytes: int = 0
    state_bytes: int = 0                                   # the state region (aligned tensors)
    pool_top_offset: int = 0
    pool_offset: int = 0
    pool_bytes: int = 0

    @property
    def arena_bytes(self) -> int:
        return self.pool_offset + self.pool_bytes

    @property
    def initial_state_offset(self) -> int:
        return aligned(self.weight_bytes)

    @property
    def const_bytes(self) -> int:
        return self.initial_state_offset + self.state_bytes


def plan_step(mod: tvm.IRModule, signature: Signature, initial_state: list[np.ndarray]) -> StepPlan:
    """Place every tensor of the step `mod` (its `main` takes the signature's input for batch 1, one step: a
    token `(1, 1)` or a feature vector `(1, 1, C)`; the state in manifest order and the workspace). The kernel
    scratch pool is sized later (`StepPlan.pool_bytes`), once the kernels are lowered."""
    if "main" + WORKSPACE_SUFFIX not in [gv.name_hint for gv in mod.get_global_vars()]:
        raise RnnxError("the step graph has a dynamic shape: the static runtime needs every shape fixed")
    main = mod["main"]
    input_param, *state_params, workspace_param = main.params
    taken = ([int(d) for d in input_param.ty.shape], str(input_param.ty.dtype))
    if taken != (signature.input_shape(1, 1), signature.dtype) or len(state_params) != len(initial_state):
        raise RnnxError(f"the static runtime runs batch 1, one step at a time, on {signature.input} "
                        f"{signature.dtype}{signature.input_shape(1, 1)} and {len(initial_state)} state tensors: "
                        f"the step graph takes {taken[1]}{taken[0]} and {len(state_params)} state tensors")

    offset, env = 0, {}
    state = []
    for param, value in zip(state_params, initial_state):
        state.append(Tensor("arena", offset, tuple(int(d) for d in param.ty.shape), str(param.ty.dtype)))
        if (value.shape, str(value.dtype)) != (state[-1].shape, state[-1].dtype):
            raise RnnxError(f"initial state {value.dtype}{list(value.shape)} does not fit the step's state input "
                            f"{param.name}: {state[-1].dtype}{list(state[-1].shape)}")
        env[param] = state[-1]
        offset = aligned(offset + state[-1].nbytes)
    state_bytes = offset
    step_input = env[input_param] = Tensor("arena", offset, tuple(taken[0]), taken[1])
    pool_top = offset + -(-step_input.nbytes // 8) * 8  # the scratch pool's stack pointer (a uint64) follows it
    offset = aligned(pool_top + 8)
    views, storages, offset = _workspace(mod["main" + WORKSPACE_SUFFIX], offset)

    constants, const_end = {}, 0

    def argument(arg):
        nonlocal const_end
        if isinstance(arg, tvm.ir.expr.GenericConst) and isinstance(arg.value, tvm.runtime.Tensor):
            key = arg.__chandle__()  # one constant passed to several kernels is stored once
            if key not in constants:
                value = arg.value.numpy()
                constants[key] = (Tensor("const", const_end, value.shape, str(value.dtype)), value)
                const_end = aligned(const_end + value.nbytes)
            return constants[key][0]
        if isinstance(arg, tvm.tirx.IntImm):
            return int(arg)
        if isinstance(arg, relax.Var) and arg in env:
            return env[arg]
        if isinstance(arg, relax.Tuple):
            return tuple(argument(f) for f in arg.fields)
        raise RnnxError(f"the static runtime cannot pass {type(arg).__name__} {arg} to a kernel")

    calls = []
    for binding in (b for block in main.body.blocks for b in block.bindings):
        value = binding.value
        if isinstance(value, relax.Call) and isinstance(value.op, relax.GlobalVar):
            calls.append((value.op.name_hint, [argument(a) for a in value.args]))
        elif isinstance(value, relax.Call) and isinstance(value.op, relax.ExternFunc) \
                and value.op.global_symbol == "vm.builtin.tuple_getitem" and value.args[0].same_as(workspace_param):
            env[binding.var] = views[int(value.args[1])]
        elif isinstance(value, (relax.Tuple, relax.Var)):
            env[binding.var] = argument(value)
        elif not (isinstance(value, relax.Call) and (value.op.same_as(_NULL) or isinstance(value.op, relax.ExternFunc)
                                                     and value.op.global_symbol in _CHECKS)):
            raise RnnxError(f"the static runtime cannot run this binding of the step: {binding.var} = {value}")

    outputs, *state_out = argument(main.body.body)
    if state_out != state:  # the kernels update the state in place; anything else would need a copy per step
        raise RnnxError("the step graph does not update its state in place: the static runtime needs it to")
    plan = StepPlan(state, step_input, outputs, storages, calls, weight_bytes=const_end, state_bytes=state_bytes,
                    pool_top_offset=pool_top, pool_offset=offset)
    plan.constants = [(t.offset, v) for t, v in constants.values()]
    plan.constants += [(plan.initial_state_offset + t.offset, v) for t, v in zip(state, initial_state)]
    return plan


def _workspace(maker: relax.Function, offset: int) -> tuple[list[Tensor], list[tuple[int, int]], int]:
    """The views `main_workspace()` returns, placed from arena byte `offset`; its storages; the end offset."""
    env, storages = {}, []
    for binding in (b for block in maker.body.blocks for b in block.bindings):
        value = binding.value
        if isinstance(value, relax.Call) and value.op.same_as(_ALLOC_STORAGE):
            size = int(value.args[0].values[0])
            storages.append((offset, size))
            env[binding.var] = offset
            offset = aligned(offset + size)
        elif isinstance(value, relax.Call) and value.op.same_as(_ALLOC_TENSOR):
            storage, at, shape, dtype = value.args[:4]
            env[binding.var] = Tensor("arena", env[storage] + int(at), _shape(shape), str(dtype.value))
        elif isinstance(value, relax.Call) and isinstance(value.op, relax.ExternFunc) \
                and value.op.global_symbol == "vm.builtin.reshape":
            view = env[value.args[0]]
            env[binding.var] = Tensor("arena", view.offset, _shape(value.args[1]), view.dtype)
        elif not (isinstance(value, relax.Call) and value.op.same_as(_NULL)):
            raise RnnxError(f"the static runtime cannot lay out this workspace binding: {binding.var} = {value}")
    return [env[v] for v in maker.body.body.fields], storages, offset


def _shape(shape: relax.ShapeExpr) -> tuple[int, ...]:
    return tuple(int(d) for d in shape.values)
