"""`rnnx.profile.rpc`: profiles through a real tracker and a real board server on loopback, giving the local
report's shape with sane figures, steps on the board that match a local Session, and clear errors."""
import platform

import numpy as np
import pytest
import torch

from rnnx.errors import RnnxError
from rnnx.numerics import compare
from rnnx.profile import profile_artifact
from rnnx.profile.rpc import RemoteSession, connect, profile_remote
from rnnx.runtime import Session

from .conftest import KEY, free_port

TOKENS = 200


def _check_report(report, tokens):
    assert 0 < report["step_us"]["p50"] <= report["step_us"]["p95"]
    assert all(rate > 0 for rate in report["prefill_tokens_per_s"].values())
    memory = report["memory"]
    assert 0 < memory["rss_after_warmup_kb"] <= memory["peak_rss_kb"]
    assert 0 < memory["rss_after_stream_kb"] <= memory["peak_rss_kb"]
    assert memory["state_bytes"] == 32768 and memory["library_bytes"] > 0  # ref-tiny: 2 layers of 4 × 32 × 32 fp32
    series = report["series"]
    assert len(series["position"]) == len(series["step_us"]) == report["tokens"] == tokens
    assert np.all(np.diff(series["position"]) > 0) and min(series["step_us"]) > 0
    assert len(series["memory_tokens"]) == len(series["rss_kb"]) == len(series["state_bytes_in_use"]) >= 2
    assert series["memory_tokens"][-1] > series["position"][-1] and min(series["rss_kb"]) > 0


@pytest.fixture(scope="module")
def local_report(artifact):
    return profile_artifact(artifact, tokens=TOKENS, prefill_lengths=(64,))


def test_local_report_has_series(local_report):
    _check_report(local_report, TOKENS)


def test_profile_through_tracker(artifact, tracker, local_report):
    report = profile_remote(artifact, tracker=tracker, key=KEY, tokens=TOKENS, prefill_lengths=(64, 128), timeout=30)
    _check_report(report, TOKENS)
    assert report.keys() == local_report.keys() and report["memory"].keys() == local_report["memory"].keys()
    assert KEY in report["machine"]


def test_profile_direct(artifact, board):
    report = profile_remote(artifact, board, tokens=TOKENS, prefill_lengths=(64,), threads=1, timeout=30)
    _check_report(report, TOKENS)
    assert report["threads"] == 1


def test_steps_on_the_board_match_a_local_session(artifact, board):
    remote, where = connect(board, timeout=30)
    on_board, here = RemoteSession(artifact, remote, where), Session(artifact)
    for token, count in ((7, 5), (200, 0), (3, 12)):
        on_board.stream(token, count) if count else None
        for _ in range(count + 1 if count else 0):
            here.step(token)
        expected = here.step(token + 1)
        assert compare(torch.tensor(on_board.step(token + 1)), torch.tensor(expected)).passed
    for name, value in here.state.items():
        assert compare(torch.tensor(on_board.state[name]), torch.tensor(value)).passed, name


def test_unreachable_server_and_tracker_name_the_address():
    port = free_port()
    with pytest.raises(RnnxError, match=f"127.0.0.1:{port}"):
        connect(f"127.0.0.1:{port}", timeout=5)
    with pytest.raises(RnnxError, match=f"tracker at 127.0.0.1:{port}"):
        connect(tracker=f"127.0.0.1:{port}", key=KEY, timeout=5)
    with pytest.raises(RnnxError, match="HOST:PORT"):
        connect("127.0.0.1", timeout=5)


def test_unknown_key_and_busy_server(tracker, board):
    with pytest.raises(RnnxError, match="no RPC server with key 'no-such-board'"):
        connect(tracker=tracker, key="no-such-board", timeout=5)
    held = connect(board, timeout=30)  # the server serves one session at a time
    with pytest.raises(RnnxError, match=f"{board} took no session within 2 s"):
        connect(board, timeout=2)
    del held
    connect(board, timeout=30)  # and serves the next once the first ends


def test_aarch64_artifact_through_its_native_server_under_qemu(artifact, aarch64_board):
    compiled, address = aarch64_board
    report = profile_remote(compiled, address, tokens=50, prefill_lengths=(16,), timeout=60)
    _check_report(report, 50)
    assert report["target"] == "raspberry-pi-5"
    remote, where = connect(address, timeout=60)
    on_board, here = RemoteSession(compiled, remote, where), Session(artifact)  # the same export, for this machine
    on_board.stream(11, 3)
    for _ in range(4):
        here.step(11)
    assert compare(torch.tensor(on_board.step(12)), torch.tensor(here.step(12))).passed
    for name, value in here.state.items():
        assert compare(torch.tensor(on_board.state[name]), torch.tensor(value)).passed, name
    del remote, on_board
    if platform.machine() != "aarch64":  # this machine's artifact on the aarch64 board
        with pytest.raises(RnnxError, match=rf"target host \({platform.machine()}\) cannot run on the aarch64 board"):
            RemoteSession(artifact, *connect(address, timeout=60))
