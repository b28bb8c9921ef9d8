"""Recurrent form: write the token into slot `pos % W`, attend over the filled slots."""
import torch


def recurrent_sliding_window_attention(q, k, v, keys, values, pos, *, window: int, scale: float):
    """Shapes as `chunk_sliding_window_attention`; memory is the two `(B, H, W, D)` rings whatever T is."""
    B, T = q.shape[:2]
    keys, values, batch, o = keys.clone(), values.clone(), torch.arange(B, device=q.device), []
    for t in range(T):
        keys[batch, :, pos % window] = k[:, t].float()
        values[batch, :, pos % window] = v[:, t].float()
        pos = pos + 1
        s = scale * torch.einsum("bhd,bhwd->bhw", q[:, t].float(), keys)
        s = s.masked_fill((torch.arange(window, device=q.device) >= pos[:, None])[:, None], float("-inf"))
        o.append(torch.einsum("bhw,bhwd->bhd", s.softmax(-1), values))
    return torch.stack(o, 1).to(q.dtype), keys, values, pos
