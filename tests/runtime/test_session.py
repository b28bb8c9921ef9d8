"""`rnnx.runtime.Session`: in-place state, constant memory, save/load, reset, independence, load checks."""
import json
import platform
import shutil
import threading

import numpy as np
import pytest
import tvm
import tvm_ffi

from rnnx.packaging import compile_export
from rnnx.errors import RnnxError
from rnnx.export import export_model
from rnnx.runtime import Session


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    root = tmp_path_factory.mktemp("session")
    export_model("ref-aaren", root / "export")  # three state tensors per layer, one of them -inf at first
    compile_export(root / "export", "host", root / "artifact")
    return root / "artifact"


def _address(tensor) -> int:
    return np.from_dlpack(tensor).__array_interface__["data"][0]


def test_compiled_graphs_return_the_state_buffers_they_were_given(artifact):
    """The session reads the new state from the buffers it passed in: the graphs must write them in place."""
    session = Session(artifact)
    state = [_address(t) for t in session._state]
    for kind, tokens in (("step", session._input), ("prefill", tvm.runtime.tensor(np.arange(70)[None]))):
        main, workspace = session._main[kind]
        _, *present = main(tokens, *session._state, *workspace)
        assert [_address(t) for t in present] == state, kind


@pytest.fixture
def vm_allocations():
    """Counts of the Relax VM's storage and tensor allocations, by wrapping its builtins (restored after)."""
    counts = {}
    originals = {name: tvm.get_global_func(name) for name in ("vm.builtin.alloc_storage", "vm.builtin.alloc_tensor")}

    def counting(name, original):
        def wrapper(*args):
            counts[name] = counts.get(name, 0) + 1
            return original(*args)
        return wrapper

    for name, original in originals.items():
        tvm_ffi.register_global_func(name, counting(name, original), override=True)
    yield counts
    for name, original in originals.items():
        tvm_ffi.register_global_func(name, original, override=True)


def assert_steps_allocate_nothing(artifact, vm_allocations, tmp_path):
    """20 steps of a session of `artifact` allocate nothing that `vm_allocations` counts; its prefill does."""
    # a copy: a library loaded anew, whose compiled code looks the VM builtins up, finding the counting ones
    # (a library already loaded in this process has them cached)
    session = Session(shutil.copytree(artifact, tmp_path / "artifact"))
    session.step(1)
    after_first = dict(vm_allocations)
    for token in range(20):
        session.step(token)
    assert vm_allocations == after_first
    session.prefill(np.arange(70))  # the prefill (T is dynamic) allocates: the counter does see allocations
    assert vm_allocations != after_first


def test_a_step_allocates_nothing(artifact, vm_allocations, tmp_path):
    assert_steps_allocate_nothing(artifact, vm_allocations, tmp_path)


def test_resident_memory_stays_flat_over_a_long_stream(artifact):
    session = Session(artifact)
    rss = lambda: int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1])  # noqa: E731
    for token in range(1000):
        session.step(token % 256)
    start = rss()
    for token in range(20_000):
        session.step(token % 256)
    assert rss() - start < 1024, "resident memory grew by more than 1 MB over 20K steps"


def test_state_bytes_equals_the_manifest(artifact):
    session = Session(artifact)
    manifest = json.loads((artifact / "artifact.json").read_text())
    assert session.state_bytes == manifest["export"]["state_bytes"] == sum(v.nbytes for v in session.state.values())


def test_reset_and_save_load_state(artifact, tmp_path):
    session = Session(artifact)
    first = session.prefill(np.arange(20))
    session.save_state(tmp_path / "s.npz")
    after = session.step(5)
    session.reset()
    assert np.array_equal(session.prefill(np.arange(20)), first)
    session.reset()
    session.load_state(tmp_path / "s.npz")
    assert np.array_equal(session.step(5), after)
    np.savez(tmp_path / "bad.npz", **{k: v[..., :1] for k, v in session.state.items()})
    with pytest.raises(RnnxError, match="the artifact needs float32"):
        session.load_state(tmp_path / "bad.npz")


def test_sessions_in_threads_do_not_interfere(artifact):
    streams = [np.arange(300) % 256, (np.arange(300) * 7 + 3) % 256]
    expected = []
    for stream in streams:
        session = Session(artifact)
        expected.append([session.step(t) for t in stream])
    results = [None, None]

    def worker(i):
        session = Session(artifact)
        results[i] = [session.step(t) for t in streams[i]]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_loading_checks_hashes_and_target(artifact, tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in artifact.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / "step.so").read_bytes())
    data[-100] ^= 0xFF
    (copy / "step.so").write_bytes(bytes(data))
    with pytest.raises(RnnxError, match="step.so does not match its sha256"):
        Session(copy)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(RnnxError, match=r"artifact for target host \(x86_64\) cannot run on this aarch64 machine"):
        Session(artifact)


def test_step_hands_out_logits_the_next_step_does_not_overwrite(artifact):
    session = Session(artifact)
    first = session.step(1)
    kept = first.copy()
    session.step(2)
    np.testing.assert_array_equal(first, kept)


@pytest.mark.parametrize("token, message", [
    (-1, r"token -1 is out of range \[0, 256\)"), (256, r"token 256 is out of range \[0, 256\)"),
    (300, "token 300 is out of range"), (10**6, "token 1000000 is out of range"),
    (3.7, r"token must be integers in \[0, 256\), got 3.7"), ("a", "token must be integers .* got 'a'"),
    (np.array([1, 2]), r"a step takes one token per sequence, \(1,\); got shape \[2\]"),
])
def test_step_refuses_what_is_not_a_token_before_any_kernel_runs(artifact, token, message):
    session = Session(artifact)
    before = session.state
    with pytest.raises(RnnxError, match=message):
        session.step(token)
    assert all(np.array_equal(before[k], v) for k, v in session.state.items())  # nothing ran


@pytest.mark.parametrize("tokens, message", [
    ([3, -1, 4], "token -1 is out of range"), ([[1, 300]], "token 300 is out of range"),
    ([1.0, 2.0], "tokens must be integers .* got 1.0"), ("hello", "tokens must be integers .* got 'hello'"),
    ([], "tokens are empty"), (np.zeros((1, 0), np.int64), "tokens are empty"),
    (np.zeros((2, 5), np.int64), r"tokens have shape \[2, 5\]; the artifact was compiled for batch 1"),
])
def test_prefill_refuses_what_is_not_a_prompt(artifact, tokens, message):
    session = Session(artifact)
    with pytest.raises(RnnxError, match=message):
        session.prefill(tokens)


@pytest.mark.parametrize("threads", [0, -1, 10_000, 1.5])
def test_threads_must_be_between_one_and_the_cpus(artifact, threads):
    with pytest.raises(RnnxError, match=r"threads .* is out of range \[1, \d+\]"):
        Session(artifact, threads=threads)


def test_state_of_the_wrong_shape_or_dtype_is_refused_naming_the_tensor(artifact, tmp_path):
    session = Session(artifact)
    values = list(session.state.values())
    with pytest.raises(RnnxError, match=r"state tensor 0_running_max must be float32\[1, 4\], got float32\[4\]"):
        session.set_state([values[0][0], *values[1:]])
    np.savez(tmp_path / "bad.npz", **(session.state | {"1_numerator": np.zeros(3, np.int64)}))
    with pytest.raises(RnnxError, match=r"1_numerator is int64\[3\], the artifact needs float32\[1, 4, 64\]"):
        session.load_state(tmp_path / "bad.npz")
