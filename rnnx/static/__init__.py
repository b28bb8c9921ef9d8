"""The "static" runtime: the step graph as plain C over the compiled kernels, with one static arena planned
at compile time and no TVM runtime, heap or OS (the "runner" and "c-bundle" packagings of `rnnx.packaging`:
riscv64 and microcontrollers).

A C bundle (`emit_static_bundle`) is a directory a firmware build compiles as it is:

- `rnnx_model.h`: `int rnnx_model_init(void)`, `void rnnx_model_reset(void)`,
  `const float *rnnx_model_step(int64_t token)` for a token model (`RNNX_INPUT_TOKENS`, the vocabulary) or
  `const float *rnnx_model_step(const float *features)` for a feature model (`RNNX_INPUT_FEATURES` floats per
  step), each returning the outputs `(RNNX_OUTPUTS,)` (logits, scores or forecast), valid until the next step;
  `void *rnnx_model_state(int i)`; `#define`s of the input and output sizes, arena, weight, state and constant
  bytes and of every buffer's offset and size in the arena;
- `rnnx_model.c`: the step: static `const` DLTensors into the arena or the weights, the kernels called in order;
- `rnnx_runtime.c`, `rnnx_ffi.h`: the kernels' calling convention and a stack allocator inside the arena
  for the kernels' own scratch (`__TVMBackendAllocWorkspace`), sized at compile time;
- `kernels.o`: the TIR kernels compiled by TVM/LLVM for the target;
- `rnnx_constants.S` + `constants.bin`: the weights, then the initial state, as one aligned `.rodata` blob
  (`.incbin`: assemble with `-Wa,-I<bundle>` or from inside the bundle).

Sizes are fixed when the bundle is written: `arena_bytes` is the size of the one RAM buffer the model
uses (`rnnx_arena`), the recurrent state included.

Public functions:
- `emit_static_bundle(step_module, signature, target, initial_state, out) -> dict`
- `compile_bundle(target, export_dir, export, initial_state, out) -> dict` (an export's step -> `out/bundle/`)
- `bundle_objects(bundle_dir, cc, cflags, out_dir) -> [objects]` (the model's objects, for any link)
- `build_linux_runner(bundle_dir, target, out) -> Path`
- `run_runner(runner, inputs, emulator=()) -> (outputs, report)`
"""
from .build import BUNDLE_DIR, build_linux_runner, bundle_objects, compile_bundle, run_runner
from .emit import emit_static_bundle

__all__ = ["BUNDLE_DIR", "build_linux_runner", "bundle_objects", "compile_bundle", "emit_static_bundle", "run_runner"]
