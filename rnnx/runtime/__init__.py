"""Run compiled artifacts: `Session(artifact).prefill(tokens)`, `.step(token)`, `.reset()`."""
from .session import Session

__all__ = ["Session"]
