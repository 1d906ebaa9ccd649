"""How a training run learns that it should stop early: SIGTERM (what schedulers send before preempting) and a
first Ctrl-C ask for a checkpoint and a stop; a second Ctrl-C stops at once, with exit status 130 and no traceback.

In a multi-process run every process must stop at the same step. There SIGTERM is left to JAX's preemption service
(started by `jax.distributed.initialize`, whose own handler a Python one would replace), and its sync point agrees
on the step; a Ctrl-C reaches the processes of one terminal only, so at log steps the processes also share whether
any of them was asked to stop. Handlers can only be installed from the main thread; elsewhere (a
notebook's worker thread) none are.
"""

import os
import signal
import sys
import threading

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

# The exit status of a second Ctrl-C: the shell's convention for a process ended by SIGINT.
INTERRUPTED_EXIT_CODE = 130


class StopRequests:
  """Installs the handlers on creation; `requested(step, is_log_step)` says whether to checkpoint and stop."""

  def __init__(self):
    self._received = False
    self._multiprocess = jax.process_count() > 1
    self._previous_handlers = {}
    if threading.current_thread() is threading.main_thread():
      signums = (signal.SIGINT,) if self._multiprocess else (signal.SIGTERM, signal.SIGINT)
      self._previous_handlers = {signum: signal.signal(signum, self._on_signal) for signum in signums}

  def _on_signal(self, signum, frame):
    del frame
    self._received = True
    if signum == signal.SIGINT:
      logging.warning("Interrupted: saving a checkpoint after this step. Press Ctrl-C again to stop at once.")
      signal.signal(signal.SIGINT, _stop_at_once)

  def requested(self, step: int, is_log_step: bool) -> bool:
    if not self._multiprocess:
      return self._received
    if multihost_utils.reached_preemption_sync_point(step):
      return True
    # A collective, so only at log steps, where the processes synchronise anyway.
    return is_log_step and bool(np.any(multihost_utils.process_allgather(np.asarray(self._received))))

  def restore(self) -> None:
    for signum, handler in self._previous_handlers.items():
      signal.signal(signum, handler)


def _stop_at_once(signum, frame):
  del signum, frame
  print("genjax: stopped at once by a second Ctrl-C; the last completed checkpoint is intact.", file=sys.stderr)
  sys.stderr.flush()
  # Not an exception: it would unwind through a checkpoint being written, and print a traceback.
  os._exit(INTERRUPTED_EXIT_CODE)
