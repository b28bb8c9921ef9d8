"""The aarch64 bundle against PyTorch: its native runner under qemu-aarch64, and its native RPC server under
qemu-aarch64 driven from here by TVM's Python RPC client, directly and through a real tracker (127.0.0.1)."""
import json
import re
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from rnnx.edge import tvm_runtime
from rnnx.errors import RnnxError
from rnnx.models import build_model
from rnnx.numerics import compare
from rnnx.packaging import run_program
from rnnx.targets import get_target

TARGET = get_target("raspberry-pi-5")
pytestmark = pytest.mark.skipif(
    not (shutil.which(TARGET.emulator[0]) and shutil.which(TARGET.toolchain.cxx)),
    reason=f"needs {TARGET.emulator[0]} and {TARGET.toolchain.cxx} (Debian: {' '.join(TARGET.needs())})")
TIMEOUT_S = 60


@pytest.fixture(scope="module")
def artifact(artifacts):
    return artifacts("ref-tiny", TARGET.name)


def _pytorch_logits(tokens: np.ndarray) -> torch.Tensor:
    """ref-tiny's logits `(T, vocab)` after each of `tokens` `(T,)`, from the initial state."""
    with torch.no_grad():
        logits, _ = build_model("ref-tiny", seed=0).forward(torch.from_numpy(tokens)[None])
    return logits[0].double()


def test_runner_under_qemu_matches_pytorch_stepping_and_after_prefill(artifact, tmp_path):
    moved = shutil.copytree(artifact, tmp_path / "elsewhere")  # the bundle finds its libraries wherever it is
    tokens = np.random.default_rng(0).integers(0, 256, 50)
    expected = _pytorch_logits(tokens)
    for prefill in (0, 20):
        logits, report = run_program(moved, tokens, prefill=prefill)
        assert logits.shape == (50, 256) and logits.dtype == np.float32
        assert compare(torch.from_numpy(logits), expected).passed, (prefill, compare(torch.from_numpy(logits), expected))
        assert report["steps"] == 50 - prefill and report["prefill_tokens"] == prefill
        assert report["step_us_p95"] >= report["step_us_p50"] > 0 and report["max_rss_kb"] > 0
        assert (report["prefill_tokens_per_s"] > 0) == (prefill > 0)


def test_bundle_is_aarch64_and_hashed_in_the_manifest(artifact):
    files = json.loads((artifact / "artifact.json").read_text())["files"]
    bundle = ["bin/rnnx-run", "bin/rnnx-rpc-server", "lib/libtvm_runtime.so", "lib/libtvm_ffi.so",
              "state.txt", "initial_state.bin"]
    assert set(bundle) <= set(files)
    for program in bundle[:4]:
        header = (artifact / program).read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    state = np.load(artifact / "initial_state.npz")
    assert (artifact / "initial_state.bin").read_bytes() == b"".join(state[k].tobytes() for k in state.files)


def test_runner_refuses_a_prefill_longer_than_the_tokens(artifact):
    with pytest.raises(RnnxError, match=re.escape("prefill 5 is out of range [0, 4]")):
        run_program(artifact, np.arange(4), prefill=5)


def test_missing_runtime_libraries_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNX_HOME", str(tmp_path))
    with pytest.raises(RnnxError, match="-m rnnx.edge.tvm_runtime aarch64"):
        tvm_runtime.locate("aarch64")
    with pytest.raises(RnnxError, match="no TVM runtime wheel for riscv64"):
        tvm_runtime.locate("riscv64")


# --- RPC ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Processes:
    """Processes started in their own process groups (a server's session children, the tracker's worker),
    each killed with its whole group at teardown."""

    def __init__(self):
        self.started = []

    def start(self, argv: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.started.append(process)
        return process

    def kill_all(self):
        for process in self.started:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def processes():
    started = _Processes()
    yield started
    started.kill_all()


def _first_line(process: subprocess.Popen) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(TIMEOUT_S), f"no output in {TIMEOUT_S}s: {process.args}"
    return process.stdout.readline()


def _native_server(processes, artifact, *args) -> int:
    """Start bin/rnnx-rpc-server under qemu-aarch64 on a free port; returns the port."""
    server = processes.start([*TARGET.emulator, str(artifact / "bin" / "rnnx-rpc-server"), "--port", "0", *args])
    line = _first_line(server)
    assert line.startswith("rnnx-rpc-server listening on 127.0.0.1:"), (line, server.stderr.read() if server.poll() else "")
    return int(line.rsplit(":", 1)[1])


def _until(condition, what: str):
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _profile_calls(remote, artifact) -> tuple[np.ndarray, dict, list[float]]:
    """What the profile client does on a board: upload and load the step, make a VM, remote state tensors,
    the step's workspace, one step, a timed stream of steps, the board's memory. The step returns a tuple,
    which comes back over RPC as an opaque handle: the workspace handle is passed back into `main` as is,
    and the logits are the remote `ffi.ArrayGetItem(result, 0)`."""
    import tvm
    from tvm import relax

    remote.upload(str(artifact / "step.so"))
    vm = relax.VirtualMachine(remote.load_module("step.so"), remote.cpu())
    with np.load(artifact / "initial_state.npz") as initial:
        state = [tvm.runtime.tensor(initial[name], remote.cpu()) for name in initial.files]
    token = tvm.runtime.tensor(np.full((1, 1), 5, np.int64), remote.cpu())
    workspace = vm["main_workspace"]()
    logits = remote.get_function("ffi.ArrayGetItem")(vm["main"](token, *state, workspace), 0).numpy()
    timed = vm.time_evaluator("main", remote.cpu(), number=1, repeat=5)(token, *state, workspace)
    memory = json.loads(remote.get_function("rnnx.board.memory")())
    return logits[0, 0], memory, list(timed.results)


def _check_profile_calls(remote, artifact):
    logits, memory, times = _profile_calls(remote, artifact)
    assert compare(torch.from_numpy(logits), _pytorch_logits(np.array([5]))[0]).passed
    assert len(times) == 5 and all(t > 0 for t in times)
    assert memory["VmHWM"] >= memory["VmRSS"] > 0


def test_native_rpc_server_under_qemu_runs_the_profile_calls(artifact, processes):
    from tvm import rpc

    port = _native_server(processes, artifact)
    _check_profile_calls(rpc.connect("127.0.0.1", port, session_timeout=TIMEOUT_S), artifact)
    with pytest.raises(Exception, match="cannot find server that matches key"):
        rpc.connect("127.0.0.1", port, key="another-board")


def test_native_rpc_server_under_qemu_through_a_tracker(artifact, processes):
    from tvm import rpc

    tracker_port = _free_port()
    processes.start([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1",
                     "--port", str(tracker_port), "--port-end", str(tracker_port + 1)])
    _until(lambda: _accepts("127.0.0.1", tracker_port), "the tracker")
    _native_server(processes, artifact, "--tracker", f"127.0.0.1:{tracker_port}", "--key", TARGET.rpc_key)
    tracker = rpc.connect_tracker("127.0.0.1", tracker_port)
    for _ in range(2):  # after a session the server offers itself to the tracker again
        _until(lambda: tracker.summary()["queue_info"].get(TARGET.rpc_key, {}).get("free"), "the server's offer")
        _check_profile_calls(tracker.request(TARGET.rpc_key, session_timeout=TIMEOUT_S), artifact)


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False
