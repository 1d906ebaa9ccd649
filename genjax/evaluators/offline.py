"""What experiments/evaluate.py does, as a library: every offline evaluation (`evaluators.OFFLINE`) that applies to a
trained run, on its eval split or on a folder of clean images of your own, written to WORKDIR/eval/<step>/ as
metrics.json and summary.md (see `report`).

The evaluations choose themselves (`applies`); the command line only says which run, which step and which
options (`config.eval.<name>.*` overrides).
"""

import dataclasses
import os

from absl import logging

from genjax import errors
from genjax import evaluators
from genjax import pixels
from genjax import runs
from genjax.evaluators import report


def evaluate(run: runs.Run, seed: int, clean_images: str | None = None) -> tuple[str, dict[str, float]]:
  """Runs every offline evaluation that applies to `run` and writes its report: `(directory, metrics)`.

  With `clean_images` (a folder), a restoration run is scored on those images instead of its eval split.
  """
  open_data = (lambda: _clean_images(run, clean_images)) if clean_images else (lambda: run.data)
  context = evaluators.Context(run.experiment, open_data, run.config.eval, seed)
  names = evaluators.applicable(evaluators.OFFLINE, context)
  built = evaluators.build(names, context)
  metrics, _ = evaluators.run(built, run.state, run.step)
  protocol = {"step": run.step, "dataset": run.config.data.name}
  if run.experiment.spec.is_image:
    protocol["binarize"] = run.config.data.binarize
  for evaluator in built:
    protocol.update(evaluator.protocol)
  directory = os.path.join(run.workdir, "eval", str(run.step))
  methods_table = any(getattr(evaluators.EVALUATORS[name], "compares_methods", False) for name in names)
  title = f"Evaluation of {run.workdir} at step {run.step}"
  report.write(directory, title, run.config.family, metrics, protocol, methods_table)
  return directory, metrics


def _clean_images(run: runs.Run, folder: str):
  """The run's data with the images of `folder` as its eval split (unreadable files skipped with a warning)."""
  if run.experiment.trainer.restorer is None:
    raise errors.UserError(f"--clean_images applies to restoration runs; {run.workdir} is a {run.config.family!r} run.")
  folder = os.path.expanduser(folder)
  if not os.path.isdir(folder):
    raise errors.UserError(f"--clean_images={folder} is not a folder.")
  images, unreadable = [], []
  for name in pixels.find_images(folder):
    try:
      images.append({"image": pixels.read_image(os.path.join(folder, name), 3)})
    except OSError as e:
      unreadable.append(f"{name} ({e})")
  if unreadable:
    logging.warning("Skipped %d unreadable files in %s:\n  %s", len(unreadable), folder, "\n  ".join(unreadable))
  if not images:
    raise errors.UserError(f"--clean_images={folder} holds no readable images ({', '.join(pixels.IMAGE_SUFFIXES)}).")
  return dataclasses.replace(run.data, name=folder, eval=images)
