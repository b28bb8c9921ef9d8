"""onnxruntime at its best: the `ort` export flavor (the linear-attention ops as onnxruntime's native
`com.microsoft` LinearAttention kernel; an op with no such spelling, like aaren, stays an `ai.rnnx` node
whose function body onnxruntime inlines), all graph optimisations, and IO binding with two sets of state
buffers used in turn, so a step reads the state the previous step wrote and copies nothing.
`prepare_quantized` is the same export through one of onnxruntime's own quantizers (ort_int8, ort_int4,
ort_int4_exact): what a user of onnxruntime would pick today."""
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort

LABEL = "onnxruntime"
THREADS = (1, 2)


def prepare(ctx) -> dict:
    flavor = "ort"  # onnxruntime's own LinearAttention kernel where it spells the op; the others stay functions
    return {"export": str(ctx.export(flavor)), "flavor": flavor, "initial_state": str(ctx.initial_state)}


def prepare_quantized(ctx, name: str, quantize) -> dict:
    """The `ort` export with each graph passed through `quantize(model: ModelProto) -> ModelProto`."""
    import onnx

    spec = prepare(ctx)
    source, out = Path(spec["export"]), ctx.workdir / f"export-{name}"
    out.mkdir(exist_ok=True)
    shutil.copyfile(source / "manifest.json", out / "manifest.json")
    for kind in ("prefill", "step"):
        onnx.save_model(quantize(onnx.load(source / f"{kind}.onnx")), out / f"{kind}.onnx")
    return spec | {"export": str(out)}


class Runner:
    def __init__(self, spec: dict, threads: int):
        export = Path(spec["export"])
        manifest = json.loads((export / "manifest.json").read_text())
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # the prefill graph's state defaults (initializers named like inputs) warn
        self.sessions = {kind: ort.InferenceSession(str(export / f"{kind}.onnx"), options,
                                                    providers=["CPUExecutionProvider"]) for kind in ("prefill", "step")}
        self.state_names = [(s["past"], s["present"]) for s in manifest["state"]]
        with np.load(spec["initial_state"]) as initial:
            self.initial = [initial[s["name"]] for s in manifest["state"]]
        self.buffers = [[ort.OrtValue.ortvalue_from_numpy(x.copy()) for x in self.initial] for _ in range(2)]
        self.token = np.zeros((1, 1), np.int64)  # the OrtValue below reads this array's memory
        vocab = manifest["graphs"]["step"]["outputs"][0]["shape"][-1]
        self.logits = ort.OrtValue.ortvalue_from_numpy(np.zeros((1, 1, vocab), np.float32))
        token = ort.OrtValue.ortvalue_from_numpy(self.token)
        self.step_bindings = [self._binding("step", token, src, 1 - src, self.logits) for src in (0, 1)]
        self.current = 0  # which buffer set holds the state now

    def _binding(self, kind: str, tokens, src: int, dst: int, logits=None):
        """Tokens and the state in buffer set `src` in; logits and the new state into buffer set `dst`."""
        binding = self.sessions[kind].io_binding()
        binding.bind_ortvalue_input("tokens", tokens)
        for (past, present), x, y in zip(self.state_names, self.buffers[src], self.buffers[dst]):
            binding.bind_ortvalue_input(past, x)
            binding.bind_ortvalue_output(present, y)
        if logits is None:
            binding.bind_output("logits", "cpu")
        else:
            binding.bind_ortvalue_output("logits", logits)
        return binding

    def reset(self) -> None:
        for buffer, x in zip(self.buffers[self.current], self.initial):
            buffer.update_inplace(x)

    def step(self, token: int) -> np.ndarray:
        self.token[0, 0] = token
        self.sessions["step"].run_with_iobinding(self.step_bindings[self.current])
        self.current = 1 - self.current
        return self.logits.numpy()

    def prefill(self, tokens: np.ndarray) -> np.ndarray:
        binding = self._binding("prefill", ort.OrtValue.ortvalue_from_numpy(tokens), self.current, 1 - self.current)
        self.sessions["prefill"].run_with_iobinding(binding)
        self.current = 1 - self.current
        return binding.get_outputs()[0].numpy()
