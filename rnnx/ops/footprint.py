"""Record every tensor an op builds, to show which forms stay linear in T."""
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from .registry import OPS


@dataclass
class Footprint(TorchDispatchMode):
    """While active, records the shape of every tensor produced by an aten op."""

    shapes: list[tuple[int, ...]] = field(default_factory=list)

    def __post_init__(self):
        super().__init__()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "rnnx":  # look inside rnnx's custom ops: run their kernel under this mode
            with self:
                return OPS[func._opname].kernel(*args)
        out = func(*args, **(kwargs or {}))
        self.shapes += [tuple(t.shape) for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        return out

    @property
    def largest(self) -> int:
        """Elements in the largest tensor produced."""
        return max((torch.Size(s).numel() for s in self.shapes), default=0)

    def square(self, T: int) -> list[tuple[int, ...]]:
        """Shapes with two dimensions of at least T: a T x T (or larger) tensor."""
        return [s for s in self.shapes if sum(d >= T for d in s) >= 2]
