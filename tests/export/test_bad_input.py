"""Each mistake a user can make gets one line naming what is wrong, exit code 2, and no partial output."""
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from rnnx.export import export_model


def rnnx(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rnnx", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def assert_user_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_config(tmp_path):
    assert_user_error(rnnx("export", "ref-nope", "-o", tmp_path / "x"), "unknown model 'ref-nope'")


def test_missing_factory_file_and_function(tmp_path):
    assert_user_error(rnnx("export", tmp_path / "none.py:make", "-o", tmp_path / "x"), "none.py does not exist")
    (tmp_path / "m.py").write_text("def other():\n    pass\n")
    assert_user_error(rnnx("export", f"{tmp_path / 'm.py'}:make", "-o", tmp_path / "x"), "has no function 'make'")


def test_model_file_that_raises_is_named_with_its_line(tmp_path):
    (tmp_path / "m.py").write_text("import torch\n\nwidth = 1 / 0\n")
    assert_user_error(rnnx("export", f"{tmp_path / 'm.py'}:make", "-o", tmp_path / "x"),
                      f"importing the model file raised ZeroDivisionError at {tmp_path / 'm.py'}:3: division by zero")
    (tmp_path / "m.py").write_text("def make():\n    return build()\n\n\n"
                                   "def build():\n    raise ValueError('no width')\n")
    assert_user_error(rnnx("export", f"{tmp_path / 'm.py'}:make", "-o", tmp_path / "x"),
                      f"make() raised ValueError at {tmp_path / 'm.py'}:6: no width")


def test_model_torch_export_cannot_trace_is_named_with_its_line(tmp_path):
    (tmp_path / "branchy.py").write_text(textwrap.dedent('''
        import torch
        from rnnx.models import build_model

        class Branchy(torch.nn.Module):
            def forward(self, x):
                return x + 1 if x.sum() > 0 else x - 1

        def make():
            model = build_model("ref-tiny")
            model.blocks[1].mlp_norm = torch.nn.Sequential(model.blocks[1].mlp_norm, Branchy())
            return model
    '''))
    assert_user_error(rnnx("export", f"{tmp_path / 'branchy.py'}:make", "-o", tmp_path / "x"),
                      f"cannot trace ReferenceModel with torch.export at {tmp_path / 'branchy.py'}:7: ",
                      "data-dependent")


def test_module_rnnx_cannot_export_is_named_with_its_op(tmp_path):
    (tmp_path / "weird.py").write_text(textwrap.dedent('''
        import torch
        from rnnx.models import build_model

        lib = torch.library.Library("mylab", "DEF")
        lib.define("mystery(Tensor x) -> Tensor")
        lib.impl("mystery", lambda x: x * 2, "CompositeExplicitAutograd")
        torch.library.register_fake("mylab::mystery", lambda x: torch.empty_like(x), lib=lib)

        class Mystery(torch.nn.Module):
            def forward(self, x):
                return torch.ops.mylab.mystery(x)

        def make():
            model = build_model("ref-tiny")
            model.blocks[1].mlp_norm = torch.nn.Sequential(model.blocks[1].mlp_norm, Mystery())
            return model
    '''))
    result = rnnx("export", f"{tmp_path / 'weird.py'}:make", "-o", tmp_path / "x")
    assert_user_error(result, "module blocks.1.mlp_norm.1", "Mystery", "op mylab::mystery has no ONNX translation")
    assert not (tmp_path / "x").exists()


def test_output_directory_that_cannot_be_written(tmp_path):
    assert_user_error(rnnx("export", "ref-tiny", "-o", tmp_path / "no" / "such" / "dir"), "does not exist")
    assert_user_error(rnnx("export", "ref-tiny", "-o", "/sys/rnnx-out"), "/sys is not writable")
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.txt").write_text("do not delete")
    assert_user_error(rnnx("export", "ref-tiny", "-o", tmp_path / "precious"), "refusing to overwrite")
    assert (tmp_path / "precious" / "thesis.txt").exists()


def test_corrupt_foreign_and_tampered_inputs_to_verify(tiny_export, tmp_path):
    assert_user_error(rnnx("verify", tiny_export / "prefill.onnx"), "is a file")
    assert_user_error(rnnx("verify", tmp_path), "is not an rnnx export: it has no manifest.json")
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for f in tiny_export.iterdir():
        (tampered / f.name).write_bytes(f.read_bytes())
    data = bytearray((tampered / "step.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "step.onnx").write_bytes(bytes(data))
    assert_user_error(rnnx("verify", tampered), "step.onnx does not match its sha256")
    (tampered / "manifest.json").write_text("{not json")
    assert_user_error(rnnx("verify", tampered), "manifest.json is not valid JSON")


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import onnx

    calls = []

    def save_then_fail(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_save(*args, **kwargs)

    real_save = onnx.save_model
    monkeypatch.setattr(onnx, "save_model", save_then_fail)
    with pytest.raises(OSError):
        export_model("ref-tiny", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_export_leaves_no_partial_directory(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "rnnx", "export", "ref-tiny", "-o", tmp_path / "out"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".tmp") or p.name == "out" for p in tmp_path.iterdir()):
        time.sleep(0.02)  # interrupt once the output is being written
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    assert [p.name for p in tmp_path.iterdir()] in ([], ["out"])
    if (tmp_path / "out").exists():  # finished before the signal landed: then it is whole
        assert rnnx("verify", tmp_path / "out", "--stream", "0").returncode == 0


def test_model_forward_that_raises_is_named_with_its_line_and_a_bug_of_ours_is_not(tmp_path):
    (tmp_path / "typo.py").write_text(textwrap.dedent('''
        import torch
        from rnnx.models import build_model

        class Typo(torch.nn.Module):
            def forward(self, x):
                return x + "1"

        def make():
            model = build_model("ref-tiny")
            model.blocks[0].mlp_norm = torch.nn.Sequential(model.blocks[0].mlp_norm, Typo())
            return model
    '''))
    assert_user_error(rnnx("export", f"{tmp_path / 'typo.py'}:make", "-o", tmp_path / "x"),
                      f"tracing ReferenceModel with torch.export raised TypeError at {tmp_path / 'typo.py'}:7: ")
