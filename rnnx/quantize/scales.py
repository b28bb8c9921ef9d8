"""Symmetric round-to-nearest quantization of one weight: int8 with a scale per channel, int4 with a scale per
block of `group` along K chosen by a small clipping search; and the int4 initializer, packed by onnx."""
import ml_dtypes  # onnx's own dependency: its numpy dtype for INT4 tensors
import numpy as np
from onnx import TensorProto, numpy_helper

INT4_MIN, INT4_MAX = -8, 7
# fractions of a block's absmax tried as its clipping range: clipping a few outliers buys a finer step for the
# rest; 7/8 maps a negative absmax onto -8 exactly
CLIP_RATIOS = (1.0, 0.95, 0.9, 0.875, 0.85, 0.8, 0.75)


def int8_channels(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """w `(K, N)` -> int8 values of w's shape and float32 scales, one per index along `axis` (`(N,)` for axis 1,
    an output channel of a MatMul's B; `(V,)` for axis 0, a row of an embedding table): `w ≈ q · scale`."""
    absmax = np.abs(w).max(axis=1 - axis)
    scale = np.where(absmax > 0, absmax / 127, 1).astype(np.float32)  # an all-zero channel: q = 0, any scale
    q = np.clip(np.rint(w / np.expand_dims(scale, 1 - axis)), -127, 127).astype(np.int8)
    return q, scale


def int4_blocks(w: np.ndarray, group: int) -> tuple[np.ndarray, np.ndarray]:
    """w `(K, N)`, K a multiple of `group` -> values in [-8, 7] as int8 `(K, N)` and float32 scales
    `(K / group, N)`, one per block of `group` rows of a column: `w[k, n] ≈ q[k, n] · scale[k // group, n]`.
    Each block keeps the clipping ratio of CLIP_RATIOS with the least squared error of its weights."""
    K, N = w.shape
    blocks = w.astype(np.float32).reshape(K // group, group, N)
    absmax = np.abs(blocks).max(axis=1, keepdims=True)
    best_q, best_scale, best_err = None, None, None
    for ratio in CLIP_RATIOS:
        scale = np.where(absmax > 0, absmax * ratio / INT4_MAX, 1).astype(np.float32)
        q = np.clip(np.rint(blocks / scale), INT4_MIN, INT4_MAX)
        err = ((q * scale - blocks) ** 2).sum(axis=1, keepdims=True)
        if best_err is None:
            best_q, best_scale, best_err = q, scale, err
            continue
        better = err < best_err
        best_q = np.where(better, q, best_q)
        best_scale, best_err = np.where(better, scale, best_scale), np.minimum(err, best_err)
    return best_q.reshape(K, N).astype(np.int8), best_scale[:, 0, :]


def int4_initializer(q: np.ndarray, name: str) -> TensorProto:
    """An INT4 initializer of the values `q` (int8 in [-8, 7]), two to a byte as ONNX packs them."""
    assert q.min(initial=0) >= INT4_MIN and q.max(initial=0) <= INT4_MAX
    tensor = numpy_helper.from_array(q.astype(ml_dtypes.int4), name)
    assert tensor.data_type == TensorProto.INT4
    return tensor
