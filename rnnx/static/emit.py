"""Write the C bundle of a finalized step module (see the package docstring for what it holds)."""
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tvm

from ..errors import RnnxError
from ..manifest import Signature
from ..targets import Target, require
from .kernels import build_kernels, kernel_module, scratch_bytes
from .plan import ALIGN, StepPlan, Tensor, plan_step

RUNTIME_SOURCES = Path(__file__).parent / "runtime"
HEADER, MODEL, CONSTANTS_ASM, CONSTANTS, KERNELS = "rnnx_model.h", "rnnx_model.c", "rnnx_constants.S", \
    "constants.bin", "kernels.o"
SHIM = ("rnnx_ffi.h", "rnnx_runtime.c")
_DL_CODES = {"i": 0, "u": 1, "f": 2, "b": 6}  # DLDataTypeCode by numpy kind


def static_tvm_target(target: Target) -> tvm.target.Target:
    """The TVM target a static step is compiled for: the target's, on one core (the static runtime has no
    thread pool, so the schedules must not split kernels over cores)."""
    return tvm.target.Target(target.resolved() | {"num-cores": 1})


def emit_static_bundle(step_module: tvm.IRModule, signature: Signature, target: Target,
                       initial_state: list[np.ndarray], out: Path) -> dict:
    """Write the C bundle of `step_module` (the step graph after `rnnx.compiler.pipeline.pipeline` for
    `static_tvm_target(target)`, of a model with `signature`; `initial_state` in the order of its state
    parameters) into the existing directory `out`. Returns the sizes fixed at compile time, in bytes: arena
    (the one RAM buffer), weights, constants (weights + initial state, read-only), state (its region of the
    arena, each tensor aligned to 64 bytes), kernel scratch pool (inside the arena), kernel code; and the
    bundle's files."""
    out = Path(out)
    plan = plan_step(step_module, signature, initial_state)
    kernels = kernel_module(step_module)
    tvm_target = static_tvm_target(target)
    plan.pool_bytes = scratch_bytes(kernels, tvm_target)
    build_kernels(kernels, tvm_target, out / KERNELS)
    if b"TVMBackendParallelLaunch" in (out / KERNELS).read_bytes():
        raise RnnxError(f"the kernels for {target.name} use threads, which the static runtime does not have")
    (out / HEADER).write_text(_header(plan, signature))
    (out / MODEL).write_text(_model(plan, signature))
    _write_constants(plan, out / CONSTANTS)
    (out / CONSTANTS_ASM).write_text(_constants_asm(plan))
    for name in SHIM:
        shutil.copy(RUNTIME_SOURCES / name, out / name)
    return {"arena_bytes": plan.arena_bytes, "weight_bytes": plan.weight_bytes, "const_bytes": plan.const_bytes,
            "state_bytes": plan.state_bytes, "scratch_pool_bytes": plan.pool_bytes,
            "kernel_code_bytes": _text_bytes(target, out / KERNELS), "kernels": len(plan.calls),
            "files": sorted(p.name for p in out.iterdir())}


@dataclass(frozen=True)
class _StepInput:
    """How a kind of input (`Signature.input`) reaches the step: its C parameter, the #define of its size, what
    the header says of it, and the lines that put it into the arena (a token is held to the embedding table it
    indexes; features are trusted, as the header says)."""
    parameter: str
    size: str
    takes: str
    doc: str
    copy: tuple[str, ...]


_STEP_INPUTS = {
    "tokens": _StepInput(
        "int64_t token", "INPUT_TOKENS", "a token per step (of RNNX_INPUT_TOKENS, the vocabulary)",
        """/* Run one token; returns its {output} (RNNX_OUTPUTS floats inside the arena, overwritten by the next
   step), or NULL for a token outside [0, RNNX_INPUT_TOKENS) (the state is then unchanged) or if a kernel
   failed. */""",
        ("  if (token < 0 || token >= RNNX_INPUT_TOKENS) return NULL;  /* it would read outside the embedding table */",
         "  memcpy(rnnx_arena + RNNX_INPUT_OFFSET, &token, sizeof token);")),
    "features": _StepInput(
        "const float *features", "INPUT_FEATURES", "a vector of RNNX_INPUT_FEATURES floats per step",
        """/* Run one feature vector (RNNX_INPUT_FEATURES floats, copied in); returns its {output} (RNNX_OUTPUTS
   floats inside the arena, overwritten by the next step), or NULL if a kernel failed. The features are not
   checked: the caller gives finite values (a NaN or an infinity would stay in the recurrent state for good;
   rnnx's Python side refuses them before a step runs). */""",
        ("  memcpy(rnnx_arena + RNNX_INPUT_OFFSET, features, RNNX_INPUT_BYTES);",)),
}


def _header(plan: StepPlan, sig: Signature) -> str:
    step_input = _STEP_INPUTS[sig.input]
    sizes = [("ALIGN", ALIGN), (step_input.size, sig.input_size), ("OUTPUTS", plan.outputs.shape[-1]),
             ("ARENA_BYTES", plan.arena_bytes), ("WEIGHT_BYTES", plan.weight_bytes), ("CONST_BYTES", plan.const_bytes),
             ("STATE_BYTES", plan.state_bytes), ("INITIAL_STATE_OFFSET", plan.initial_state_offset),
             ("NUM_STATE", len(plan.state)), ("INPUT_OFFSET", plan.input.offset), ("INPUT_BYTES", plan.input.nbytes),
             ("OUTPUT_OFFSET", plan.outputs.offset), ("OUTPUT_BYTES", plan.outputs.nbytes),
             ("POOL_TOP_OFFSET", plan.pool_top_offset), ("POOL_OFFSET", plan.pool_offset),
             ("POOL_BYTES", plan.pool_bytes)]
    sizes += [(f"STATE_{i}_{k}", v) for i, t in enumerate(plan.state) for k, v in (("OFFSET", t.offset), ("BYTES", t.nbytes))]
    sizes += [(f"SCRATCH_{i}_{k}", v) for i, s in enumerate(plan.storages) for k, v in zip(("OFFSET", "BYTES"), s)]
    defines = "\n".join(f"#define RNNX_{k} {v}" for k, v in sizes)
    return f"""\
/* The recurrent step of an rnnx model as C, generated by rnnx; do not edit.
   It takes {step_input.takes} and gives {sig.output} (RNNX_OUTPUTS floats).
   All of the model's RAM is rnnx_arena (RNNX_ARENA_BYTES): the state, the step's input, the intermediates
   and the kernels' scratch, at the offsets below. The weights and the initial state are rnnx_constants, in
   read-only memory. Not reentrant: one model per program. */
#ifndef RNNX_MODEL_H
#define RNNX_MODEL_H
#include <stdint.h>

{defines}

extern uint8_t rnnx_arena[RNNX_ARENA_BYTES];
extern const uint8_t rnnx_constants[RNNX_CONST_BYTES];

/* Ready the model: the state before any step. Returns 0. */
int rnnx_model_init(void);
/* Back to the state before any step. */
void rnnx_model_reset(void);
{step_input.doc.format(output=sig.output)}
const float *rnnx_model_step({step_input.parameter});
/* State tensor i (0 <= i < RNNX_NUM_STATE) in the arena, RNNX_STATE_<i>_BYTES long; NULL for another i. */
void *rnnx_model_state(int i);
#endif
"""


def _model(plan: StepPlan, sig: Signature) -> str:
    tensors = {}  # Tensor -> its C name
    shapes = {}   # shape -> its C name

    def tensor(t: Tensor) -> str:
        if t not in tensors:
            tensors[t] = f"tensor_{len(tensors)}"
            if t.shape and t.shape not in shapes:
                shapes[t.shape] = f"shape_{len(shapes)}"
        return tensors[t]

    def argument(a) -> str:
        return f"{{kTVMFFIInt, 0, {{.v_int64 = {a}}}}}" if isinstance(a, int) else f"TENSOR({tensor(a)})"

    # building the argument lists names every tensor and shape, which are declared before them
    args = [f"static const TVMFFIAny args_{i}[] = {{{', '.join(argument(a) for a in call)}}};"
            for i, (_, call) in enumerate(plan.calls)]
    steps = [f"  {{__tvm_ffi_{kernel}, args_{i}, {len(call)}}}," for i, (kernel, call) in enumerate(plan.calls)]
    kernels = sorted({kernel for kernel, _ in plan.calls})
    step_input = _STEP_INPUTS[sig.input]
    lines = [
        "/* The step: the compiled kernels called in order on static tensors (generated by rnnx; do not edit). */",
        "#include <stddef.h>", "#include <string.h>", '#include "rnnx_ffi.h"', '#include "rnnx_model.h"', "",
        "uint8_t rnnx_arena[RNNX_ARENA_BYTES] __attribute__((aligned(RNNX_ALIGN)));", "",
        *(f"int __tvm_ffi_{k}(void *self, const TVMFFIAny *args, int32_t num_args, TVMFFIAny *result);" for k in kernels),
        "",
        *(f"static const int64_t {name}[] = {{{', '.join(map(str, shape))}}};" for shape, name in shapes.items()),
        "",
        "#define ARENA(offset) ((void *)(rnnx_arena + (offset)))",
        "#define CONST(offset) ((void *)(rnnx_constants + (offset)))",
        *(f"static const DLTensor {name} = {{{'ARENA' if t.blob == 'arena' else 'CONST'}({t.offset}), {{kDLCPU, 0}}, "
          f"{len(t.shape)}, {{{_DL_CODES[np.dtype(t.dtype).kind]}, {np.dtype(t.dtype).itemsize * 8}, 1}}, "
          f"{'(int64_t *)' + shapes[t.shape] if t.shape else 'NULL'}, NULL, 0}};" for t, name in tensors.items()),
        "",
        "#define TENSOR(t) {kTVMFFIDLTensorPtr, 0, {.v_ptr = (void *)&(t)}}",
        *args,
        "",
        "static const struct { TVMFFISafeCallType kernel; const TVMFFIAny *args; int32_t num_args; } steps[] = {",
        *steps,
        "};",
        "",
        "void rnnx_model_reset(void) {",
        "  memcpy(rnnx_arena, rnnx_constants + RNNX_INITIAL_STATE_OFFSET, RNNX_STATE_BYTES);",
        "}",
        "",
        "int rnnx_model_init(void) {",
        "  memset(rnnx_arena + RNNX_POOL_TOP_OFFSET, 0, sizeof(uint64_t));  /* the scratch pool is empty */",
        "  rnnx_model_reset();",
        "  return 0;",
        "}",
        "",
        f"const float *rnnx_model_step({step_input.parameter}) {{",
        "  TVMFFIAny result;",
        *step_input.copy,
        "  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {",
        "    result.type_index = kTVMFFINone;",
        "    if (steps[i].kernel(NULL, steps[i].args, steps[i].num_args, &result) != 0) return NULL;",
        "  }",
        "  return (const float *)(rnnx_arena + RNNX_OUTPUT_OFFSET);",
        "}",
        "",
        "void *rnnx_model_state(int i) {",
        f"  static const uint32_t offset[] = {{{', '.join(str(t.offset) for t in plan.state)}}};",
        "  return i >= 0 && i < RNNX_NUM_STATE ? rnnx_arena + offset[i] : NULL;",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _write_constants(plan: StepPlan, path: Path) -> None:
    blob = np.zeros(plan.const_bytes, np.uint8)
    for offset, value in plan.constants:
        value = np.ascontiguousarray(value)
        blob[offset:offset + value.nbytes] = value.reshape(-1).view(np.uint8)
    blob.tofile(path)


def _constants_asm(plan: StepPlan) -> str:
    # .incbin keeps an 82 MB model out of the C compiler; the section is read-only (flash on a microcontroller)
    return f"""\
/* The model's constants: weights, then the initial state (generated by rnnx; do not edit).
   Assemble with the bundle as an include directory (-Wa,-I<bundle>) or from inside it. */
  .section .rodata.rnnx_constants, "a"
  .balign {ALIGN}
  .global rnnx_constants
  .type rnnx_constants, %object
  .size rnnx_constants, {plan.const_bytes}
rnnx_constants:
  .incbin "{CONSTANTS}"
  .section .note.GNU-stack, "", %progbits
"""


def target_tool(target: Target, tool: str) -> str:
    """The path of binutils' `tool` (nm, size, objdump) for the target's objects."""
    if target.toolchain:
        return target.toolchain.require(target.toolchain.cc.removesuffix("gcc") + tool)
    return require(tool, "apt-get install binutils")


def run_tool(target: Target, tool: str, *args) -> str:
    """The output of binutils' `tool` for the target's objects, run on `args`."""
    return subprocess.run([target_tool(target, tool), *map(str, args)], capture_output=True, text=True,
                          check=True).stdout


def _text_bytes(target: Target, obj: Path) -> int:
    """Code bytes of an object, by binutils' `size` (text and read-only data)."""
    return int(run_tool(target, "size", obj).splitlines()[1].split()[0])
