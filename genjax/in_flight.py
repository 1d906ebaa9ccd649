"""How far the host may dispatch steps ahead of the devices.

JAX dispatches asynchronously: a jitted call returns before the devices have run it, so that the host prepares the
next step while they work. Unbounded, a loop without a wait runs many steps ahead. XLA's CPU client with several
devices (a simulated mesh) then fills its per-device queues (32 computations each) and its launch threads with
work that waits, blocking, on a step whose collective has participants that cannot launch any more: the run aborts
after 40 s ("Expected 8 threads to join the rendezvous, but only 7 of them arrived"), the more likely the busier
the machine. Two steps in flight keep every device busy (the next step is queued while one runs) and never get
there.
"""

import collections
from typing import Any

import jax

MAX_STEPS_IN_FLIGHT = 2


class StepsInFlight:
  """The outputs of the steps dispatched and perhaps not yet run; `dispatched(outputs)` after each step waits, when
  `MAX_STEPS_IN_FLIGHT` are in flight, for the oldest."""

  def __init__(self):
    self._outputs = collections.deque()

  def dispatched(self, outputs: Any) -> None:
    self._outputs.append(outputs)
    while len(self._outputs) >= MAX_STEPS_IN_FLIGHT:
      jax.block_until_ready(self._outputs.popleft())
