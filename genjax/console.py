"""What a person watching a genjax command sees on its console: genjax's own lines, real warnings, and progress on
long work; not the start-up narration of the libraries underneath.

Owns two things. `quiet_libraries` (called by every entry point through `cli.reporting_user_errors`) keeps other
libraries' INFO lines off the console (JAX's probe for a TPU on machines without one, TFDS's "Load dataset info",
matplotlib's font cache, TensorFlow's C++ start-up lines) and a few warnings that are advice, not problems.
`track` reports a loop of known length: a tqdm bar with its rate and ETA on a terminal, and on anything else (a
log file, a pipe, a batch system's output) one plain log line every `REPORT_EVERY_S` seconds, never carriage
returns and escape codes.
"""

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

import tqdm
from absl import logging as absl_logging

_GENJAX_PACKAGE = os.path.dirname(os.path.abspath(__file__))

# How often long work says how far it is when no progress bar can be drawn (and how often training prints a
# console line between its log steps): often enough that a stuck job is told from a slow one, rarely enough that a
# log file stays readable.
REPORT_EVERY_S = 30.0

_Item = TypeVar("_Item")

# Warnings that are advice rather than problems, by the start of their message.
_ADVICE = (
    "OpenCV is not installed",  # TFDS: PIL decodes the images instead, as genjax's readers do anyway.
    "Variant folder",  # TFDS, looking for a prepared dataset in a folder that genjax is about to prepare.
)


def quiet_libraries() -> None:
  """Keeps every library's INFO lines and its advice off the console, leaving genjax's own lines (from the genjax
  package and the entry point being run) and other libraries' real warnings and errors. Call before TensorFlow is
  imported (TFDS imports it when it prepares a dataset): its C++ start-up lines are filtered by an environment
  variable that it reads once."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # 1 drops INFO, keeps warnings and errors.
  # TensorFlow only encodes images here, when TFDS prepares a dataset, where oneDNN's float kernels do nothing; left
  # on, TF announces them in a line that TF_CPP_MIN_LOG_LEVEL does not reach.
  os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
  main_script = os.path.abspath(getattr(sys.modules["__main__"], "__file__", "") or "<none>")

  def keep(record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return not str(record.msg).startswith(_ADVICE)
    return record.pathname.startswith(_GENJAX_PACKAGE + os.sep) or os.path.abspath(record.pathname) == main_script

  absl_logging.get_absl_handler().addFilter(keep)


def duration(seconds: float) -> str:
  """`seconds` as H:MM:SS (hours beyond 24 included), as progress lines show times."""
  minutes, secs = divmod(int(round(seconds)), 60)
  return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def track(iterable: Iterable[_Item], total: int, description: str, unit: str = "batches") -> Iterator[_Item]:
  """The items of `iterable` (`total` of them), reporting progress: a tqdm bar with rate and ETA when stderr is a
  terminal; otherwise a log line "DESCRIPTION: done/total UNIT, ETA H:MM:SS" every `REPORT_EVERY_S` seconds (none
  for work shorter than that), the ETA at the pace of the items after the first (which pays for compilation).
  Time counts while the caller works on an item, so progress is what the caller has finished, provided each item's
  work is complete (fetched from the device) when it asks for the next."""
  if sys.stderr.isatty():
    yield from tqdm.tqdm(iterable, total=total, desc=description, unit=f" {unit}", leave=False, dynamic_ncols=True)
    return
  start = last_report = time.perf_counter()
  first_done = None
  for done, item in enumerate(iterable, 1):
    yield item
    now = time.perf_counter()
    first_done = first_done or now
    if now - last_report >= REPORT_EVERY_S and done < total:
      seconds_per_item = (now - first_done) / (done - 1) if done > 1 else now - start
      eta = duration(seconds_per_item * (total - done))
      absl_logging.info("%s: %d/%d %s, ETA %s.", description, done, total, unit, eta)
      last_report = now
