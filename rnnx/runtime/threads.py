"""How a session's steps use the CPUs: TVM's worker threads, chosen by measurement, and a real-time mode.

TVM's pool splits every parallel kernel into one fixed share per worker and waits for all of them, so a worker
that the OS has preempted for another process stalls the step for a time slice: on a board whose cores are busy,
a two-thread step can take milliseconds where a one-thread step takes microseconds. And a small model's step is
no faster on two threads than on one. So a session's default (`ThreadPolicy`) is measured, not "every CPU":

- at the start it times a few steps on one thread and on every CPU and keeps the faster (one thread when the
  others gain under 10%);
- with several threads, a step slower than STALL times their best median and than STALL_S (preemption costs a
  time slice, not microseconds) counts as stalled; when STALLS of the last WINDOW steps stall, the session runs
  on one thread;
- every PROBE_EVERY steps it tries the other count for PROBE_STEPS steps and keeps it if that count is the
  preferred one and ran within RECOVER times its best median; a probe on several threads that stalls ends at
  once, and the next waits twice as long (up to MAX_PROBE_EVERY steps).

TVM also pins its threads to cores (the calling thread to one core), which keeps the scheduler from moving a
step off a busy core: sessions unpin them (`TVM_BIND_THREADS=0`, unless the user set it).

`realtime=True` is for control loops: one thread, the calling thread pinned to the core it is on and raised to
SCHED_FIFO (needs CAP_SYS_NICE or an rtprio limit), so no other ordinary process preempts a step.
"""
import os
import statistics
import time
from collections import deque
from typing import Callable

import psutil
import tvm

from ..errors import RnnxError
from .checks import check_threads

_ASKED = os.environ.get("TVM_NUM_THREADS")  # the user's choice, before set_threads rewrites the variable
os.environ.setdefault("TVM_BIND_THREADS", "0")  # read by TVM each time it configures a pool

GAIN = 1.1           # several threads must be this much faster than one to be used
STALL, STALL_S, STALLS, WINDOW = 4.0, 2e-3, 2, 16  # a stall: over 4x the best median and 2 ms (a time slice's order)
PROBE_EVERY, MAX_PROBE_EVERY, PROBE_STEPS, RECOVER = 1024, 16384, 8, 1.5
ROUNDS, MEASURE_STEPS, MEASURE_S = 4, 8, 0.5  # the start's measurement: rounds of steps per count, at most 0.5 s


def cpus() -> int:
    return len(os.sched_getaffinity(0))


def set_threads(threads: int | None = None) -> int:
    """Use `threads` of TVM's workers (else $TVM_NUM_THREADS as it was at import, else every CPU we may run
    on) in the calling thread's pool and in every pool made from now on. TVM sizes a pool once, from
    $TVM_NUM_THREADS, and can then use fewer workers but not more, so the variable is set to the larger
    of the request and the CPU count. (In TVM 0.27 a pool told to use fewer workers does not always use
    more again when told: a process that needs both counts should ask for the larger one first.)"""
    if threads is None:
        threads = max(1, int(_ASKED)) if _ASKED else cpus()
    else:
        threads = check_threads(threads)
    os.environ["TVM_NUM_THREADS"] = str(max(threads, cpus()))
    tvm.get_global_func("runtime.config_threadpool")(1, threads)  # 1: all cores of the biggest kind
    return threads


def fixed_by_user() -> bool:
    return _ASKED is not None


def realtime() -> None:
    """Pin the calling thread to the core it runs on and give it SCHED_FIFO priority 1."""
    os.sched_setaffinity(0, {psutil.Process().cpu_num()})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        raise RnnxError("realtime=True needs SCHED_FIFO, which this process may not use: run it with "
                        "CAP_SYS_NICE or an rtprio limit (ulimit -r), or without realtime") from None


class ThreadPolicy:
    """Chooses the thread count of `step` (a callable running one step) as the module docstring says. Each
    count's `baseline` is the lowest median step time seen for it (at the start, in a window of WINDOW steps,
    or in a probe), so that a start under load is corrected once the cores are free."""

    def __init__(self, step: Callable[[], object]):
        self.many = cpus()
        self.baseline = self._measure(step, list(dict.fromkeys((self.many, 1))))  # many first: see set_threads
        self.threads = self._use(self.preferred)
        self.window: deque[float] = deque(maxlen=WINDOW)  # the current count's last steps
        self.stalls = deque(maxlen=WINDOW)                # whether each of them stalled
        self.since = 0                                    # steps since the last probe
        self.every = PROBE_EVERY                          # steps between probes: doubles while probes fail
        self.probe: list[float] | None = None             # while trying the other count: its steps' times

    @property
    def preferred(self) -> int:
        return self.many if self.baseline[self.many] * GAIN < self.baseline[1] else 1

    def _use(self, threads: int) -> int:
        set_threads(threads)
        self.threads = threads
        return threads

    def _stalled(self, seconds: float) -> bool:
        return self.threads == self.many and seconds > max(STALL * self.baseline[self.many], STALL_S)

    @staticmethod
    def _measure(step, counts: list[int]) -> dict[int, float]:
        """The median step time at each count, the counts taken in turns (ROUNDS of MEASURE_STEPS steps each,
        MEASURE_S seconds in all at most), so that a change in the machine's load meanwhile hits them alike."""
        times = {n: [] for n in counts}
        start = time.perf_counter()
        for _ in range(ROUNDS):
            for n in counts:
                set_threads(n)
                step()  # the first step after a change wakes the workers (and at the start faults in the weights)
                for _ in range(MEASURE_STEPS):
                    t = time.perf_counter()
                    step()
                    times[n].append(time.perf_counter() - t)
                    if time.perf_counter() - start > MEASURE_S:
                        break
        return {n: statistics.median(ts) for n, ts in times.items()}

    def observe(self, seconds: float) -> None:
        """Account for a step that took `seconds` at the current thread count."""
        if self.many == 1:
            return
        if self.probe is not None:
            self.probe.append(seconds)
            if self._stalled(seconds):  # the cores are still busy: back, and wait longer before the next try
                self._end_probe(keep=False)
                self.every = min(2 * self.every, MAX_PROBE_EVERY)
            elif len(self.probe) == PROBE_STEPS:
                median = statistics.median(self.probe)
                self.baseline[self.threads] = min(self.baseline[self.threads], median)
                keep = self.threads == self.preferred and median <= RECOVER * self.baseline[self.threads]
                self._end_probe(keep)
                self.every = PROBE_EVERY
            return
        self.window.append(seconds)
        self.stalls.append(self._stalled(seconds))
        self.since += 1
        if self.since % WINDOW == 0:
            self.baseline[self.threads] = min(self.baseline[self.threads], statistics.median(self.window))
        if sum(self.stalls) >= STALLS:
            self._use(1)  # the cores are busy: a worker's share waits for a time slice
            self._reset()
        elif self.since >= self.every:  # try the other count
            self._use(self.many if self.threads == 1 else 1)
            self.probe = []

    def _end_probe(self, keep: bool) -> None:
        if not keep:
            self._use(1 if self.threads == self.many else self.many)
        self.probe = None
        self._reset()

    def _reset(self) -> None:
        self.window.clear()
        self.stalls.clear()
        self.since = 0

    @property
    def prefill_threads(self) -> int:
        """A prefill's: every CPU, unless steps have fallen back to one thread because the cores are busy."""
        return self.threads if self.preferred == self.many else self.many
