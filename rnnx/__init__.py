"""rnnx: efficient-attention models compiled into recurrent, constant-memory executables."""
__version__ = "0.1.0"
