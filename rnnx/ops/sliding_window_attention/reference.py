"""fp64 reference: for each token, softmax attention over an explicit list of the last W tokens."""
import torch


def reference_sliding_window_attention(q, k, v, keys, values, pos, *, window: int, scale: float):
    """Shapes as `chunk_sliding_window_attention`; computes and returns fp64."""
    B, T, H, _ = q.shape
    q, k, v, keys, values = (x.double() for x in (q, k, v, keys, values))
    o = torch.zeros(v.shape, dtype=torch.float64)
    new_keys, new_values = keys.clone(), values.clone()
    for b in range(B):
        p0 = int(pos[b])
        past = range(max(0, p0 - window), p0)
        hist_k = [keys[b, :, p % window] for p in past] + list(k[b].unbind(0))     # each (H, Dk)
        hist_v = [values[b, :, p % window] for p in past] + list(v[b].unbind(0))
        for t in range(T):
            end = len(past) + t + 1
            ks, vs = torch.stack(hist_k[max(0, end - window):end], 1), torch.stack(hist_v[max(0, end - window):end], 1)
            weights = torch.softmax(scale * torch.einsum("hd,hwd->hw", q[b, t], ks), -1)
            o[b, t] = torch.einsum("hw,hwd->hd", weights, vs)
        for p in range(max(0, p0 + T - window), p0 + T):
            new_keys[b, :, p % window] = hist_k[p - p0 + len(past)]
            new_values[b, :, p % window] = hist_v[p - p0 + len(past)]
    return o, new_keys, new_values, pos + T
