"""The session's thread policy (rnnx/runtime/threads.py) on a step whose time depends on the thread count TVM's
pool uses, as a real one does: it keeps the faster count, falls back to one thread within a window when the
several-thread step stalls (busy cores), and goes back once a probe finds the cores free; TVM does not pin
threads under a session."""
import os
import time

import pytest
import tvm

from rnnx.runtime import threads as policy

pytestmark = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs at least 2 CPUs to choose from")


class Step:
    """Sleeps `seconds[n]` for the pool's thread count n (1 or several), times `stall` at several while `busy`."""

    def __init__(self, one: float, many: float, stall: float = 20.0):
        self.one, self.many, self.stall, self.busy = one, many, stall, False

    def __call__(self):
        n = tvm.get_global_func("runtime.NumThreads")()
        time.sleep(self.one if n == 1 else self.many * (self.stall if self.busy else 1))


def _steps(p: policy.ThreadPolicy, step: Step, n: int) -> None:
    for _ in range(n):
        start = time.perf_counter()
        step()
        p.observe(time.perf_counter() - start)


@pytest.mark.parametrize("one, many, chosen", [(0.004, 0.001, "many"), (0.001, 0.00098, 1)])
def test_it_keeps_several_threads_only_where_they_are_faster(one, many, chosen):
    p = policy.ThreadPolicy(Step(one, many))
    assert p.threads == (p.many if chosen == "many" else 1)


def test_busy_cores_send_the_step_to_one_thread_and_free_ones_bring_it_back(monkeypatch):
    monkeypatch.setattr(policy, "PROBE_EVERY", 40)
    step = Step(one=0.003, many=0.001)
    p = policy.ThreadPolicy(step)
    assert p.threads == p.many
    step.busy = True
    _steps(p, step, policy.STALLS)
    assert p.threads == 1  # within STALLS stalled steps
    _steps(p, step, 2 * (policy.PROBE_EVERY + policy.PROBE_STEPS))
    assert p.threads == 1  # probes of several threads still stall
    step.busy = False
    _steps(p, step, policy.PROBE_EVERY + policy.PROBE_STEPS)
    assert p.threads == p.many


def test_a_session_leaves_its_threads_free_to_move_between_cores(artifacts):
    from rnnx.runtime import Session

    allowed = os.sched_getaffinity(0)
    session = Session(artifacts("ref-tiny"), threads=2)
    session.step(1)
    assert os.environ["TVM_BIND_THREADS"] == "0" and os.sched_getaffinity(0) == allowed
