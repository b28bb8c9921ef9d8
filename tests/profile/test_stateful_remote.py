"""The RPC session carries the whole state: a model's own conv buffer beside an rnnx op's state, stepped on a
real board server on loopback, ends where a local Session does."""
import torch

from rnnx.export import export_model
from rnnx.numerics import compare
from rnnx.packaging import compile_export
from rnnx.profile.rpc import RemoteSession, connect
from rnnx.runtime import Session
from tests.models.stateful import source


def test_a_model_with_its_own_state_steps_on_the_board_as_locally(board, tmp_path):
    export_model(source("conv_attention_lm"), tmp_path / "export")
    compile_export(tmp_path / "export", "host", tmp_path / "artifact")
    remote, where = connect(board, timeout=30)
    on_board, here = RemoteSession(tmp_path / "artifact", remote, where), Session(tmp_path / "artifact")
    on_board.stream(7, 5)  # the board's VM steps 6 times on the state in its memory, which only in place carries it
    for _ in range(6):
        here.step(7)
    assert compare(torch.tensor(on_board.step(8)), torch.tensor(here.step(8))).passed
    for name, value in here.state.items():
        assert compare(torch.tensor(on_board.state[name]), torch.tensor(value)).passed, name
    assert here.state["conv"].any()
