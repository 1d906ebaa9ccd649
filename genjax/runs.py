"""A training run read back from its workdir, for evaluation and sampling: the resolved config (config.json), the
experiment it defines (built through `genjax.experiment` from the data spec saved with it), its train state at one
checkpoint step, and its data source, opened only when a tool first asks for it (`Run.data`).

So restore.py, sample.py and encode.py work on a run whose dataset is not at hand. It restores only; training and
resuming belong to `train_loop`. `output_dir` is where every tool writes by default, named by what it holds.
"""

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

import ml_collections
from etils import epath

from genjax import checkpoint
from genjax import config_lib
from genjax import errors
from genjax import experiment
from genjax import workdirs
from genjax.data import sources


@dataclasses.dataclass(frozen=True)
class Run:
  workdir: str
  config: ml_collections.ConfigDict
  step: int
  experiment: experiment.Experiment
  state: Any

  @functools.cached_property
  def data(self) -> sources.DataSource:
    """The run's data source, opened (and prepared, if need be) on first use."""
    return sources.open_source(self.config.data, self.config.seed)


def load(workdir: str, step: int | None = None, overrides: Sequence[str] = (), devices=None) -> Run:
  """Reads the run in `workdir` at checkpoint `step` (the latest by default), without opening its data.

  `overrides` (command-line arguments such as "--config.data.data_dir=/data") change the saved config before
  anything is built, e.g. to point at data that has moved. Raises `UserError` for a workdir that is not a genjax
  run, has no checkpoint, or lacks `step`.
  """
  workdir = checkpoint.absolute_workdir(workdir)
  config = config_lib.override(workdirs.read_config(workdir), overrides)
  config_path = epath.Path(workdir) / workdirs.CONFIG_FILE
  checkpointer = checkpoint.Checkpointer(str(epath.Path(workdir) / "checkpoints"), keep=config.ckpt.keep)
  try:
    saved_steps = checkpointer.all_steps()
    if not saved_steps:
      raise errors.UserError(f"The run in {workdir!r} has no checkpoint yet; train it first (or wait for a save).")
    step = saved_steps[-1] if step is None else step
    if step not in saved_steps:
      raise errors.UserError(
          f"The run in {workdir!r} has no checkpoint at step {step}; it has: {', '.join(map(str, saved_steps))}."
      )
    try:
      built = experiment.build(config, workdirs.read_data_spec(workdir, config), devices, generated_data=False)
    except AttributeError as e:  # ml_collections' error for a key the config does not have.
      raise errors.UserError(
          f"{config_path} lacks a config key that this genjax reads ({config_lib.describe_config_error(e)}): it was "
          "written by an older genjax. Add the key with its default value (see the config file in configs/), or "
          "retrain."
      ) from e
    try:
      state = checkpointer.restore(step, built.restore_target)
    except checkpoint.DamagedCheckpoint as damaged:
      older = [saved for saved in saved_steps if saved < step]
      raise errors.UserError(
          f"The checkpoint at step {step} in {workdir!r} is damaged ({damaged.reason})."
          + (f" Pass --step={older[-1]} to use the one before." if older else "")
      ) from damaged
  finally:
    checkpointer.close()
  return Run(workdir, config, step, built, state)


def output_dir(
    run: Run, kind: str, inputs: Sequence[tuple[str, Sequence[str] | None]] = (), out_dir: str | None = None
) -> str:
  """Where a tool writes: `out_dir` when the user names one; else WORKDIR/<kind>/<step>/ for what the run makes of
  its own data, with a subfolder named by the inputs of your own it was given, `<flag>-<name>` (e.g.
  eval/4/clean_images-photos/, codes/4/images-digits/, export/4/from_images-a_b/), so that no output replaces
  another made from something else.

  `inputs`: (flag, paths) pairs of the inputs given; a path's name is its last component without suffix.
  """
  if out_dir:
    return os.path.abspath(os.path.expanduser(out_dir))
  parts = [
      f"{flag}-" + "_".join(os.path.splitext(os.path.basename(os.path.normpath(path)))[0] for path in paths)
      for flag, paths in inputs
      if paths
  ]
  return os.path.join(run.workdir, kind, str(run.step), *parts)
