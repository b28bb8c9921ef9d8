"""`rnnx verify PATH --data FILE`: the model's task metric on real data, computed by the backend under test and
by PyTorch side by side — the check a user trusts more than a logit tolerance.

- A token model reads FILE as text (UTF-8), encoded with the model's tokenizer (bytes for a byte-level one), and
  streamed through prefills of `window` tokens that hand their state on: bits per byte of the text (bits per
  token too, where tokens are not bytes). FILE may be an `.npz` of `tokens` (int64, 1-D) instead.
- A feature model reads FILE as an `.npz` (no pickle) of `features` (float32, `(N, T, C)`), optionally `lengths`
  (`(N,)`, the valid prefix of each sequence), and `labels` (`(N,)`, class indices: a classifier's, judged by the
  scores after the last valid step) or `targets` (`(N, T, output_size)`: a forecaster's, judged by the MSE over
  the valid steps). Each sequence runs from the initial state.

The backend agrees with PyTorch within TASK_TOLERANCE; a quantized one (the manifest's `quantization`) is held
to its format's QUANTIZED_TASK_TOLERANCE against the fp32 model instead.
"""
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import RnnxError
from ..manifest import ExportManifest
from ..numerics import QUANTIZED_TASK_TOLERANCE, TASK_TOLERANCE
from ..runtime.checks import check_inputs


@dataclass
class Quality:
    metric: str
    values: dict[str, float]     # backend name -> the metric
    count: int                   # bytes, tokens or sequences scored
    passed: bool                 # the backend agrees with PyTorch (rnnx/numerics.py: TASK_TOLERANCE, or
                                 # QUANTIZED_TASK_TOLERANCE for a quantized model)
    detail: str = ""             # e.g. how many predictions differ
    rule: str = ""               # what `passed` required

    def as_dict(self) -> dict:
        return asdict(self)


def task_quality(data: Path, manifest: ExportManifest, backend, reference, tokenizer=None,
                 window: int = 1024) -> Quality:
    """The metric of `backend` and `reference` (PyTorch; runners as in `rnnx.verify.runners`) on `data`."""
    data = Path(data)
    if not data.is_file():
        raise RnnxError(f"data file {data} does not exist")
    sig = manifest.signature
    gate = QUANTIZED_TASK_TOLERANCE[manifest.quantization.format] if manifest.quantization is not None else None
    if sig.input == "tokens":
        return _text_quality(data, manifest, backend, reference, tokenizer, window, gate)
    x, lengths, arrays = read_sequences(data, sig)
    outputs = {r.name: [r.prefill(x[i:i + 1, :n])[0][0] for i, n in enumerate(lengths)] for r in (reference, backend)}
    if sig.output == "scores":
        labels = _field(arrays, "labels", data, (len(x),), "iu")
        if ((labels < 0) | (labels >= sig.output_size)).any():
            raise RnnxError(f"{data.name}: labels must be class indices in [0, {sig.output_size})")
        predicted = {name: np.array([o[-1].argmax() for o in outs]) for name, outs in outputs.items()}
        differ = int((predicted[backend.name] != predicted[reference.name]).sum())
        accuracy = {name: float((p == labels).mean()) for name, p in predicted.items()}
        if gate is None or gate["differ"] is not None:
            most = 0 if gate is None else gate["differ"]
            passed = differ <= most
            rule = f"every prediction equal to {reference.name}'s" if not most else \
                f"at most {most} prediction{'s' * (most > 1)} differing from {reference.name}'s"
        else:
            passed = accuracy[backend.name] >= accuracy[reference.name] - gate["accuracy"]
            rule = f"accuracy at most {gate['accuracy']:g} below {reference.name}'s"
        return Quality("accuracy", accuracy, len(x), passed,
                       f"{differ} of {len(x)} predictions differ from {reference.name}'s", rule)
    targets = _field(arrays, "targets", data, (*x.shape[:2], sig.output_size), "f")
    mse = {name: float(np.mean(np.concatenate([(o - targets[i, :len(o)]) ** 2 for i, o in enumerate(outs)])))
           for name, outs in outputs.items()}
    ref = mse[reference.name]
    most = TASK_TOLERANCE["mse"] if gate is None else gate["mse"]
    return Quality("mse", mse, len(x), abs(mse[backend.name] - ref) <= most * max(ref, 1e-12),
                   rule=f"within {most:g} of {reference.name}'s, relative")


def read_sequences(data: Path, sig) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A feature model's `.npz`: (features `(N, T, C)`, lengths `(N,)`, every array in the file)."""
    arrays = _read_npz(Path(data), required=("features",))
    features = arrays["features"]
    if features.ndim != 3 or features.shape[2] != sig.input_size:
        raise RnnxError(f"{Path(data).name}: array 'features' has shape {list(features.shape)}; the model takes "
                        f"(N, T, {sig.input_size})")
    x = check_inputs(features, sig, len(features), f"{Path(data).name}: features")
    lengths = arrays.get("lengths", np.full(len(x), x.shape[1]))
    if lengths.shape != (len(x),) or lengths.dtype.kind not in "iu" or (lengths < 1).any() or (lengths > x.shape[1]).any():
        raise RnnxError(f"{Path(data).name}: lengths must be {len(x)} integers in [1, {x.shape[1]}]")
    return x, lengths, arrays


def _text_quality(data: Path, manifest: ExportManifest, backend, reference, tokenizer, window: int,
                  gate: dict | None) -> Quality:
    if data.suffix == ".npz":
        tokens, n_bytes = _field(_read_npz(data, ("tokens",)), "tokens", data, None, "iu"), None
    else:
        try:
            text = data.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise RnnxError(f"{data}: not UTF-8 text (byte {e.start}): give a text file or an .npz of tokens") from None
        tokens, n_bytes = np.array(tokenizer.encode(text), np.int64), len(text.encode())
    tokens = check_inputs(tokens, manifest.signature, 1, f"{data.name}: tokens")[0]
    if len(tokens) < 2:
        raise RnnxError(f"{data.name} has {len(tokens)} tokens: at least 2 are needed to score a prediction")
    nats = {r.name: _stream_nats(r, tokens, window) for r in (reference, backend)}
    per = "byte" if n_bytes is not None else "token"
    count = n_bytes if n_bytes is not None else len(tokens) - 1
    bits = {name: float(v / np.log(2) / count) for name, v in nats.items()}
    metric = f"bits per {per}"
    delta, ref = bits[backend.name] - bits[reference.name], bits[reference.name]
    if gate is None:
        return Quality(metric, bits, count, abs(delta) <= TASK_TOLERANCE[metric],
                       rule=f"within {TASK_TOLERANCE[metric]:g} bits of {reference.name}'s")
    return Quality(metric, bits, count, delta <= gate["bits"] * ref,
                   rule=f"at most {gate['bits']:.1%} above {reference.name}'s (fp32)")


def _stream_nats(runner, tokens: np.ndarray, window: int) -> float:
    """Total cross-entropy (nats) of predicting tokens[1:], the text streamed in prefills of `window` tokens
    (0: one prefill of it all)."""
    window = window or len(tokens)
    total, state = 0.0, None
    for start in range(0, len(tokens) - 1, window):
        chunk = tokens[start:start + window + 1]  # one more: the next token each position predicts
        logits, state = runner.prefill(chunk[None, :-1], state)
        z = logits[0].astype(np.float64)
        z -= z.max(-1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
        total -= log_p[np.arange(len(chunk) - 1), chunk[1:]].sum()
        if len(chunk) <= window:  # the last: the state handed on would never be used
            break
    return total


def _read_npz(path: Path, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:  # a pickled array is refused by allow_pickle=False, as a ValueError
        raise RnnxError(f"{path}: not a readable .npz of plain arrays ({e})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a lone .npy array: its name is not known
        raise RnnxError(f"{path}: not a readable .npz of plain arrays (it holds one unnamed array)")
    with loaded as f:
        arrays = {k: f[k] for k in f.files}
    missing = [k for k in required if k not in arrays]
    if missing:
        raise RnnxError(f"{path.name} has no array {missing[0]!r} (it has {', '.join(arrays) or 'none'})")
    return arrays


def _field(arrays: dict, name: str, path: Path, shape, kinds: str) -> np.ndarray:
    if name not in arrays:
        raise RnnxError(f"{path.name} has no array {name!r} (it has {', '.join(arrays)})")
    a = arrays[name]
    if (shape is not None and a.shape != shape) or (shape is None and a.ndim != 1) or a.dtype.kind not in kinds:
        want = f"shape {list(shape)}" if shape is not None else "1-D"
        raise RnnxError(f"{path.name}: array {name!r} is {a.dtype}{list(a.shape)}; it must be {want}, "
                        f"{'integers' if kinds == 'iu' else 'floats'}")
    return a
