"""`profile_remote`: profile an artifact on a board over TVM RPC, by a server's address or through a tracker.

The board runs TVM's RPC server with `rnnx.board.memory` registered: `python -m rnnx.profile.board` where
the board has Python, or the native `bin/rnnx-rpc-server` of an artifact's bundle. The libraries are
uploaded and loaded there, the state and the step's workspace live there, and the steps are timed there
by `time_evaluator`, so the network adds nothing to the figures.
"""
import json
import socket
import struct
from pathlib import Path

import numpy as np
import tvm
from tvm import rpc as tvm_rpc
from tvm.rpc import base

from ..errors import RnnxError
from ..runtime.artifact import read_artifact
from ..runtime.checks import check_inputs, check_step_input, random_inputs
from ..runtime.session import VmSession
from ..targets import get_target
from . import MEMORY_SAMPLES, WARMUP, step_inputs
from .report import build_report

MEMORY_FUNCTION = "rnnx.board.memory"  # () -> JSON {"VmRSS": kB, "VmHWM": kB} of the process serving the session
ARCH_FUNCTION = "rnnx.board.arch"      # () -> the board's machine (uname -m); optional
_CLIENT = b"client:"                   # the handshake key of a client without a key (rpc.connect's)


def parse_address(address: str, what: str) -> tuple[str, int]:
    """"HOST:PORT" -> (host, port), or an error naming `what` (e.g. "--rpc")."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise RnnxError(f"{what} {address!r} is not HOST:PORT")
    return host, int(port)


def _reachable(host: str, port: int, what: str, timeout: float) -> socket.socket:
    # TVM's own connect retries for a minute before failing: find out at once
    try:
        return socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise RnnxError(f"cannot reach the {what} at {host}:{port}: {e.strerror or e}") from None


def _check_server(host: str, port: int, timeout: float) -> None:
    """Fail unless a TVM RPC server at host:port takes a session within `timeout`: a server serves one
    session at a time and leaves the next client waiting, unbounded, inside TVM's connect. The probe's
    session ends as it starts: the server serves it in a child that sees the socket closed."""
    with _reachable(host, port, "RPC server", timeout) as sock:
        try:
            sock.sendall(struct.pack("<ii", base.RPC_MAGIC, len(_CLIENT)) + _CLIENT)
            code = struct.unpack("<i", base.recvall(sock, 4))[0]
            if code == base.RPC_CODE_SUCCESS:  # read the server's key too: closing with unread data resets
                base.recvall(sock, struct.unpack("<i", base.recvall(sock, 4))[0])
        except TimeoutError:
            raise RnnxError(f"the RPC server at {host}:{port} took no session within {timeout:g} s: "
                            f"is it serving another?") from None
        except (OSError, RuntimeError) as e:
            raise RnnxError(f"{host}:{port} is not a TVM RPC server: {e}") from None
    if code != base.RPC_CODE_SUCCESS:
        raise RnnxError(f"{host}:{port} is not a TVM RPC server taking keyless sessions (answer {code})")


def connect(rpc: str | None = None, tracker: str | None = None, key: str | None = None,
            timeout: float = 30.0) -> tuple[tvm_rpc.RPCSession, str]:
    """An RPC session with a board, directly (`rpc`, HOST:PORT) or from a tracker's server for `key`, and the
    board's name for messages. `timeout` bounds reaching the server or tracker and waiting for a free
    server."""
    if (rpc is None) == (tracker is None):
        raise RnnxError("give exactly one of --rpc HOST:PORT and --tracker HOST:PORT")
    if rpc is not None:
        host, port = parse_address(rpc, "--rpc")
        _check_server(host, port, timeout)
        where = f"{host}:{port}"
        try:
            return tvm_rpc.connect(host, port), where
        except RuntimeError as e:  # TVM's errors, remote ones included, are RuntimeErrors
            raise RnnxError(f"cannot get a session with the RPC server at {where}: {_message(e)}") from None
    host, port = parse_address(tracker, "--tracker")
    _reachable(host, port, "RPC tracker", timeout).close()
    where = f"key {key} at tracker {host}:{port}"
    tracker_session = tvm_rpc.connect_tracker(host, port)
    keys = {s["key"].removeprefix("server:") for s in tracker_session.summary()["server_info"]}
    if key not in keys:
        raise RnnxError(f"no RPC server with key {key!r} at tracker {host}:{port} "
                        f"(keys there: {', '.join(sorted(keys)) or 'none'})")
    tracker_session._sock.settimeout(timeout)  # a request waits, unbounded, for a free server of its key
    try:
        return tracker_session.request(key, max_retry=1), where
    except RuntimeError as e:  # how TVM says that no server of the key took the session (busy or gone)
        raise RnnxError(f"cannot get a session for {where} within {timeout:g} s: {_message(e)}") from None


def _message(e: Exception) -> str:
    """The last non-empty line of a TVM error: TVM puts the message after its traceback."""
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


class RemoteSession(VmSession):
    """An artifact loaded on a board: its VMs, state tensors and the step's workspace live there; this
    object holds handles to them. Called with the board's tensors, `main` updates the state in place, as
    it does locally. The workspace `main_workspace` returns is a tuple, which comes back over RPC as an
    object that cannot be indexed but can be passed back to `main` as it is."""

    def __init__(self, artifact: Path, remote: tvm_rpc.RPCSession, where: str, threads: int | None = None):
        self.remote, self.where = remote, where
        target = read_artifact(artifact, check_files=False).target
        if _remote_function(remote, MEMORY_FUNCTION) is None:
            raise RnnxError(f"the RPC server at {where} has no {MEMORY_FUNCTION}: start the board side with "
                            f"`python -m rnnx.profile.board` or an artifact's bin/rnnx-rpc-server")
        board_arch = _remote_function(remote, ARCH_FUNCTION)  # without it, loading a foreign library fails below
        if board_arch is not None and (arch := board_arch()) != target.arch:
            raise RnnxError(f"artifact for target {target.name} ({target.arch}) cannot run on the "
                            f"{arch} board at {where}")
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise RnnxError(f"threads {threads!r} must be an integer >= 1")
            remote.get_function("runtime.config_threadpool")(1, threads)
        self.threads = threads or int(remote.get_function("runtime.NumThreads")())

        def load(lib: str):
            remote.upload(str(Path(artifact) / lib))
            try:
                return remote.load_module(lib)
            except RuntimeError as e:
                raise RnnxError(f"the board at {where} cannot load {lib}, compiled for {target.name} "
                                f"({target.arch}): {_message(e)}") from None

        super().__init__(artifact, remote.cpu(), load)
        self._workspace = {kind: workspace for kind, (_, workspace) in self._main.items()}

    def _set_input(self, value) -> None:
        self._input.copyfrom(check_step_input(value, self.signature, self.batch_size)[:, None])

    def stream(self, value, count: int) -> np.ndarray:
        """Step `count + 1` times on one input (time_evaluator's first call is its warm-up, untimed); returns
        the seconds of the last `count` steps, in order, `(count,)`, as the board measured them."""
        self._set_input(value)
        timer = self._vm["step"].time_evaluator("main", self.device, number=1, repeat=count)
        return np.array(timer(self._input, *self._state, *self._workspace["step"]).results)

    def step(self, value) -> np.ndarray:
        """One step on a token or feature vector; returns its outputs `(B, output_size)`, fetched from the board."""
        # `main` returns a tuple, which comes back over RPC as an object that cannot be indexed; the stateful
        # interface hands out the outputs one by one, but set_input copies its arguments, so the new state is
        # copied back. (VirtualMachine.get_outputs would do, but leaves a reference cycle that holds the
        # session, and so the board, until the garbage collector runs.)
        vm = self._vm["step"]
        self._set_input(value)
        vm.set_input("main", self._input, *self._state, *self._workspace["step"])
        vm.invoke_stateful("main")
        logits, *state = (vm["get_output"]("main", i) for i in range(vm["get_output_arity"]("main")))
        for buffer, value in zip(self._state, state, strict=True):
            buffer.copyfrom(value)
        return logits.numpy()[:, 0]

    def prefill_seconds(self, inputs: np.ndarray) -> float:
        """Seconds of one prefill of `inputs` (`(B, T)` tokens or `(B, T, C)` features) on the board, run after
        an untimed one from the state that one leaves; changes the state."""
        inputs = check_inputs(inputs, self.signature, self.batch_size)
        timer = self._vm["prefill"].time_evaluator("main", self.device, number=1, repeat=1)
        return timer(tvm.runtime.tensor(inputs, self.device), *self._state, *self._workspace["prefill"]).results[0]

    def memory(self) -> dict[str, int]:
        """{"VmRSS": kB, "VmHWM": kB} of the board's process serving this session."""
        return json.loads(self.remote.get_function(MEMORY_FUNCTION)())


def _remote_function(remote: tvm_rpc.RPCSession, name: str):
    try:
        return remote.get_function(name)
    except AttributeError:  # how TVM's RPC says the board has no such global function
        return None


def profile_remote(artifact: Path, rpc: str | None = None, tracker: str | None = None,
                   key: str | None = None, *, tokens: int = 1000, prefill_lengths=(1024,), seed: int = 0,
                   threads: int | None = None, timeout: float = 30.0) -> dict:
    """`profile_artifact`'s report, measured on a board: step latency over a stream (p50, p95, µs, and the
    series by position), prefill tokens/s at each length, and the serving process's resident memory after
    the warm-up, every few tokens of the stream, after it, and at its peak. `key` defaults to the
    artifact's target's RPC key. The stream runs in blocks of a few steps on one token (one
    `time_evaluator` call and a memory reading each); each block's first step is untimed."""
    manifest = read_artifact(artifact, check_files=False)  # the session checks the hashes
    key = key or get_target(manifest.target.name).rpc_key
    remote, where = connect(rpc, tracker, key, timeout)
    session = RemoteSession(artifact, remote, where, threads)
    rng = np.random.default_rng(seed)
    blocks = iter(step_inputs(session.signature, session.batch_size, tokens + 1, rng))
    session.stream(next(blocks), WARMUP - 1)
    rss_start = session.memory()["VmRSS"]
    block = -(-tokens // MEMORY_SAMPLES)
    position, positions, latencies, memory_tokens, rss = WARMUP, [], [], [WARMUP], [rss_start]
    while len(latencies) < tokens:
        count = min(block, tokens - len(latencies))
        latencies += list(session.stream(next(blocks), count))
        positions += range(position + 1, position + 1 + count)
        position += count + 1
        memory_tokens.append(position)
        rss.append(session.memory()["VmRSS"])
    prefill = {}
    for length in prefill_lengths:
        session.reset()
        prefill[length] = length / session.prefill_seconds(random_inputs(session.signature, session.batch_size,
                                                                          length, rng))
    board = session.memory()
    memory = {"state_bytes": session.state_bytes, "scratch_bytes": None,
              "rss_after_warmup_kb": rss_start, "rss_after_stream_kb": rss[-1], "peak_rss_kb": board["VmHWM"]}
    return build_report(artifact, session.manifest, machine=f"the board at {where}", threads=session.threads,
                        positions=np.array(positions), latencies_s=np.array(latencies), prefill=prefill,
                        memory=memory, memory_tokens=memory_tokens, memory_rss_kb=rss)
