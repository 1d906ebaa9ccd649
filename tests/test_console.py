"""Specification of what the console shows: progress on long work (a bar on a terminal, periodic plain lines in a
log file) and genjax's lines without other libraries' narration."""

import io
import logging as python_logging
import re

import pytest
from absl import logging

from genjax import console


def test_progress_off_a_terminal_is_a_plain_line_every_report_interval(monkeypatch):
  lines = []
  monkeypatch.setattr(logging, "info", lambda message, *args: lines.append(message % args))
  monkeypatch.setattr(console, "REPORT_EVERY_S", 0.0)
  assert list(console.track(iter("abc"), 3, "Drawing 3 samples")) == ["a", "b", "c"]
  assert len(lines) == 2
  assert all(re.fullmatch(r"Drawing 3 samples: [12]/3 batches, ETA \d+:\d\d:\d\d\.", line) for line in lines)
  lines.clear()
  monkeypatch.setattr(console, "REPORT_EVERY_S", 30.0)
  assert list(console.track(range(3), 3, "Quick work")) == [0, 1, 2] and lines == []  # Short work says nothing.


def test_progress_on_a_terminal_is_a_bar_with_an_eta(monkeypatch):
  terminal = io.StringIO()
  terminal.isatty = lambda: True
  monkeypatch.setattr("sys.stderr", terminal)
  assert list(console.track(range(3), 3, "Evaluating", "batches")) == [0, 1, 2]
  assert re.search(r"\rEvaluating: +\d+%\|.*\| \d/3 \[\d\d:\d\d<", terminal.getvalue())  # Elapsed<remaining.


def test_durations_read_as_hours_minutes_and_seconds():
  assert [console.duration(seconds) for seconds in (0, 59.6, 3600 + 62, 30 * 3600)] == [
      "0:00:00",
      "0:01:00",
      "1:01:02",
      "30:00:00",
  ]


@pytest.fixture
def console_filter():
  handler = logging.get_absl_handler()
  before = list(handler.filters)
  console.quiet_libraries()
  (added,) = [new for new in handler.filters if new not in before]
  yield added if callable(added) else added.filter
  handler.removeFilter(added)


def _record(pathname, level, message):
  return python_logging.LogRecord("absl", level, pathname, 1, message, (), None)


@pytest.mark.parametrize(
    "pathname, level, message, shown",
    [
        (console.__file__, python_logging.INFO, "step 1/4 | loss 1.0", True),
        ("/venv/jax/_src/xla_bridge.py", python_logging.INFO, "Unable to initialize backend 'tpu'", False),
        ("/venv/tensorflow_datasets/core/dataset_info.py", python_logging.INFO, "Load dataset info", False),
        ("/venv/matplotlib/font_manager.py", python_logging.INFO, "generated new fontManager", False),
        ("/venv/tensorflow_datasets/image_feature.py", python_logging.WARNING, "OpenCV is not installed", False),
        ("/venv/orbax/checkpoint/x.py", python_logging.WARNING, "A real problem", True),
        ("/venv/jax/_src/x.py", python_logging.ERROR, "A real error", True),
    ],
)
def test_the_console_shows_genjax_lines_and_real_warnings_only(console_filter, pathname, level, message, shown):
  assert bool(console_filter(_record(pathname, level, message))) == shown
