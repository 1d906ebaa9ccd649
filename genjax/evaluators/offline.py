"""What experiments/evaluate.py and anomaly.py do, as a library: every offline evaluation (`evaluators.OFFLINE`)
that applies to a trained run, on its eval split or on a folder of clean images of your own, written to
WORKDIR/eval/<step>/ as metrics.json and summary.md (see `report`); and the anomaly scores of every test image with
how well they find the anomalies.

The evaluations choose themselves (`applies`); the command line only says which run, which step and which
options (`config.eval.<name>.*` overrides).
"""

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
from etils import epath

from genjax import errors
from genjax import evaluators
from genjax import pixels
from genjax import runs
from genjax.evaluators import report


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """What `evaluate` found: the metrics, and their table as summary.md shows it (Markdown)."""

  metrics: dict[str, float]
  table: str


def evaluate(
    run: runs.Run, seed: int, out_dir: str, clean_images: str | None = None, names: Sequence[str] = ()
) -> Evaluation:
  """Runs the offline evaluations `names` (by default every one that applies to `run`), writes its report under
  `out_dir` and returns what it found. A name that is unknown or cannot serve the run raises `UserError`.

  With `clean_images` (a folder), a restoration run is scored on those images instead of its eval split.
  """
  open_data = (lambda: _clean_images(run, clean_images)) if clean_images else (lambda: run.data)
  context = evaluators.Context(run.experiment, open_data, run.config.eval, seed)
  names = tuple(names) or evaluators.applicable(evaluators.OFFLINE, context)
  built = evaluators.build(names, context)
  metrics, _ = evaluators.run(built, run.state, run.step)
  protocol = {"step": run.step, "dataset": run.config.data.name}
  if run.experiment.spec.is_image:
    protocol["binarize"] = run.config.data.binarize
  for evaluator in built:
    protocol.update(evaluator.protocol)
  methods_table = any(getattr(evaluators.EVALUATORS[name], "compares_methods", False) for name in names)
  title = f"Evaluation of {run.workdir} at step {run.step}"
  report.write(out_dir, title, run.config.family, metrics, protocol, methods_table)
  return Evaluation(metrics, report.table(metrics, methods_table))


def _clean_images(run: runs.Run, folder: str):
  """The run's data with the images of `folder` as its eval split (unreadable files skipped with a warning)."""
  if run.experiment.trainer.restorer is None:
    raise errors.UserError(f"--clean_images applies to restoration runs; {run.workdir} is a {run.config.family!r} run.")
  folder = os.path.expanduser(folder)
  if not os.path.isdir(folder):
    raise errors.UserError(f"--clean_images={folder} is not a folder.")
  images, unreadable, colour = [], [], []
  for name in pixels.find_images(folder):
    try:
      images.append({"image": pixels.read_image(os.path.join(folder, name), 3)})
    except OSError as e:
      unreadable.append(f"{name} ({e})")
      continue
    if pixels.has_colour(os.path.join(folder, name)):
      colour.append(name)
  pixels.warn_unreadable(unreadable, folder)
  if run.config.data.channels == 1:
    pixels.warn_colour_read_as_grey(colour, len(images), f"the run in {run.workdir}")
  if not images:
    raise errors.UserError(f"--clean_images={folder} holds no readable images ({', '.join(pixels.IMAGE_SUFFIXES)}).")
  return dataclasses.replace(run.data, name=folder, eval=images)


def detect_anomalies(run: runs.Run, seed: int, out_dir: str) -> Evaluation:
  """experiments/anomaly.py: scores every test image of `run` with the "anomaly" evaluation (its options in
  `run.config.eval.anomaly`) and writes metrics.json, summary.md, scores.npz and the histograms and top images
  under `out_dir`. Returns what it found (AUROC and AUPRC of each score)."""
  detector = evaluators.create("anomaly", evaluators.Context(run.experiment, lambda: run.data, run.config.eval, seed))
  scores = detector.scores(run.state)
  metrics, images = detector.summarize(scores)
  protocol = {"step": run.step, "dataset": run.config.data.name, **detector.protocol}
  report.write(out_dir, f"Anomaly detection by {run.workdir} at step {run.step}", run.config.family, metrics, protocol)
  with epath.Path(out_dir, "scores.npz").open("wb") as f:
    np.savez(f, **scores)
  for name, image in images.items():
    pixels.save_png(os.path.join(out_dir, f"{name}.png"), image)
  return Evaluation(metrics, report.table(metrics))
