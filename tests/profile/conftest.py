"""A real TVM RPC tracker and rnnx board servers on 127.0.0.1, on free ports, stopped at teardown."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest


KEY = "rnnx-test"
STARTUP_S = 60


@pytest.fixture(scope="module")
def artifact(artifacts):
    return artifacts("ref-tiny")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], ready) -> subprocess.Popen:
    # a session of its own: TVM's tracker and server each run in a worker process that outlives a killed parent
    process = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.monotonic() + STARTUP_S
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"{' '.join(args)} did not start: {process.communicate()[0]}")
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen) -> None:
    """Kill `process` and its workers: the group `_start` made, whose id is its pid."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _tracker_has(port: int, key: str) -> bool:
    from tvm import rpc

    summary = rpc.connect_tracker("127.0.0.1", port).summary()
    return any(s["key"] == f"server:{key}" for s in summary["server_info"])


@pytest.fixture(scope="module")
def tracker():
    """HOST:PORT of a tracker with one board server registered under KEY."""
    port, board_port = free_port(), free_port()
    tracker = _start(["tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1),
                      "--silent"], lambda: _listening(port))
    board = _start(["rnnx.profile.board", "--host", "127.0.0.1", "--port", str(board_port),
                    "--tracker", f"127.0.0.1:{port}", "--key", KEY], lambda: _tracker_has(port, KEY))
    yield f"127.0.0.1:{port}"
    _stop(board)
    _stop(tracker)


@pytest.fixture(scope="module")
def board():
    """HOST:PORT of a board server taking sessions directly."""
    port = free_port()
    board = _start(["rnnx.profile.board", "--host", "127.0.0.1", "--port", str(port)], lambda: _listening(port))
    yield f"127.0.0.1:{port}"
    _stop(board)


@pytest.fixture(scope="module")
def aarch64_board(artifacts):
    """(the aarch64 artifact of ref-tiny, HOST:PORT of its own bin/rnnx-rpc-server running under qemu-aarch64)."""
    import selectors
    import shutil

    from rnnx.targets import get_target

    target = get_target("raspberry-pi-5")
    if not (shutil.which(target.emulator[0]) and shutil.which(target.toolchain.cxx)):
        pytest.skip(f"needs {target.emulator[0]} and {target.toolchain.cxx} (Debian: {' '.join(target.needs())})")
    compiled = artifacts("ref-tiny", target.name)
    server = subprocess.Popen([*target.emulator, str(compiled / "bin" / "rnnx-rpc-server"), "--host", "127.0.0.1",
                               "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    with selectors.DefaultSelector() as selector:  # its first line names the port it took
        selector.register(server.stdout, selectors.EVENT_READ)
        line = server.stdout.readline() if selector.select(STARTUP_S) else ""
    if not line.startswith("rnnx-rpc-server listening on 127.0.0.1:"):
        _stop(server)
        pytest.fail(f"bin/rnnx-rpc-server did not start under qemu-aarch64: {line!r}")
    yield compiled, line.split()[-1]
    _stop(server)
