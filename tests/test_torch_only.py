"""The op library and the models need torch alone: the base install and `import rnnx.ops, rnnx.models`."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

BACKENDS = ("onnx", "onnxscript", "onnxruntime", "tvm")


def test_importing_the_ops_and_models_imports_no_backend():
    code = f"import sys, rnnx.ops, rnnx.models; print(*sorted(m for m in {BACKENDS!r} if m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert imported.split() == []


def test_base_dependencies_are_torch_only_and_the_compile_extra_has_the_backends():
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    name = lambda requirement: re.match(r"[A-Za-z0-9_.-]+", requirement).group().lower()  # noqa: E731
    base = {name(r) for r in project["dependencies"]}
    assert not {n for n in base if n.startswith(("onnx", "apache-tvm", "tvm"))}, base
    extras = project["optional-dependencies"]
    assert {"onnx", "onnxruntime", "onnxscript", "apache-tvm", "apache-tvm-ffi"} <= {name(r) for r in extras["compile"]}
    # the tests check imports against their source frameworks, and run the examples (aeon's datasets)
    assert "rnnx[compile,source,examples]" in extras["dev"]
