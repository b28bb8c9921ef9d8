"""Reference models: stepping token by token equals `forward`, and a seed fixes the weights."""
import numpy as np
import pytest
import torch

from rnnx.errors import RnnxError
from rnnx.models import EagerModel, Generation, build_model, get_config
from rnnx.numerics import compare
from rnnx.runtime.checks import random_inputs

from ..configs import TESTED_CONFIGS


@pytest.mark.parametrize("name", TESTED_CONFIGS)
def test_stepping_token_by_token_matches_forward(name):
    model = build_model(name)
    # spans two 64-token chunks and, for ref-tiny-swa, the window; tokens or float vectors as the model takes
    tokens = torch.from_numpy(random_inputs(model.signature, 2, 70, np.random.default_rng(0)))
    with torch.no_grad():
        logits, final = model(tokens)
        state, stepped = model.initial_state(2), []
        for t in range(tokens.shape[1]):
            out, state = model.step(tokens[:, t], state)
            stepped.append(out)
    assert compare(torch.stack(stepped, 1), logits).passed
    flat = lambda s: [x for layer in s for x in ((layer,) if isinstance(layer, torch.Tensor) else layer)]  # noqa: E731
    for a, e in zip(flat(state), flat(final), strict=True):
        assert compare(a, e).passed


@pytest.mark.parametrize("name", ["ref-tiny", "ref-aaren", "ref-tiny-swa"])
def test_forward_in_two_pieces_with_handed_state_matches_one_forward(name):
    model = build_model(name)
    tokens = torch.randint(0, 256, (1, 150))
    with torch.no_grad():
        whole, _ = model(tokens)
        first, state = model(tokens[:, :97])
        second, _ = model(tokens[:, 97:], state)
    assert compare(torch.cat([first, second], 1), whole).passed


def test_config_and_seed_fix_the_weights():
    a, b, c = build_model("ref-tiny", seed=3), build_model("ref-tiny", seed=3), build_model("ref-tiny", seed=4)
    torch.manual_seed(123)  # the global generator must not matter
    for (name, pa), pb, pc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.head.weight, c.head.weight)


def test_unknown_config_is_named():
    with pytest.raises(RnnxError, match="unknown model config 'ref-huge'; built-in configs: ref-tiny"):
        get_config("ref-huge")


def test_generation_is_reproducible():
    model = build_model("ref-tiny")
    first, second = (list(Generation(EagerModel(model), list(b"rnnx"), 16, seed=7)) for _ in range(2))
    assert first == second and len(first) == 16
    greedy = [list(Generation(EagerModel(model), list(b"rnnx"), 16, temperature=0)) for _ in range(2)]
    assert greedy[0] == greedy[1]
