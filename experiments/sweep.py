r"""Ablation sweeps: every point of a config's `get_sweep(name)` trained as its own run, by local workers, on an
Optuna storage that many machines can share; then tables and plots of the results.

  python experiments/sweep.py run --config=configs/toy2d.py --sweep=losses --sweep_dir=/tmp/genjax/sweeps/toy2d --workers=2
  python experiments/sweep.py report --sweep_dir=/tmp/genjax/sweeps/toy2d --metric=modes_covered,high_quality_fraction

`--config.x.y=v` arguments apply to every point (a shorter run for a trial of the sweep itself, say).

run: queues every point once, then --workers workers train waiting trials until none is left, each trial a
separate experiments/train.py in `<sweep_dir>/<point>` (with its log beside it). Stopping the command (or losing a
machine) and running it again resumes: finished trials are kept, interrupted ones continue from their checkpoints
(a trial whose worker has not been heard of for --stale_after_s is taken to be interrupted). A failed trial is
recorded with its error; the others go on. The storage is a journal file in --sweep_dir (no server; on a shared
file system it serves many machines) or --storage=postgresql://USER:PASSWORD@HOST/DB (needs psycopg2).

report: writes results.csv (one row per point: overrides, final values of each --metric and the best of the
first, step, status, wall time), summary.md (mean +- std over seeds for each setting of the other keys, best
first), plot_<key>.png for each swept key, and TensorBoard HParams events (`tensorboard --logdir=SWEEP_DIR`).
"""

import os

from absl import flags

from genjax import cli

_CONFIG = flags.DEFINE_string("config", None, "The config file (with its :argument), as for train.py.")
_SWEEP = flags.DEFINE_string("sweep", None, "The name of the sweep in the config file's get_sweep(name).")
_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "Where the trials' workdirs and the journal storage live.")
_STORAGE = flags.DEFINE_string("storage", None, "An Optuna database URL instead of the journal file in --sweep_dir.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Trials run at once by this command.", lower_bound=1)
_STALE_AFTER_S = flags.DEFINE_float("stale_after_s", 120.0, "A running trial unheard of this long is interrupted.")
_METRICS = flags.DEFINE_list(
    "metric", ["loss"], "report: the eval metrics to tabulate; the first orders and is plotted."
)
_GOAL = flags.DEFINE_enum("goal", "max", ["max", "min"], "report: whether higher or lower --metric is better.")
_BY = flags.DEFINE_list("by", [], "report: the keys to group by (default: every swept key but the seed).")
flags.mark_flags_as_required(["sweep_dir"])


def main(command: str, overrides: list[str]) -> None:
  from genjax import errors
  from genjax import sweeps

  if command == "run":
    if not (_CONFIG.value and _SWEEP.value):
      raise errors.UserError("sweep.py run needs --config=FILE[:ARG] and --sweep=NAME.")
    points = sweeps.load_points(_CONFIG.value, _SWEEP.value, overrides)
    identity = {"config": _CONFIG.value, "sweep": _SWEEP.value, "overrides": overrides}
    sweep = sweeps.open_sweep(_SWEEP_DIR.value, _STORAGE.value, identity)
    print(
        f"{sweeps.enqueue(sweep, points)} points; {sweeps.requeue_interrupted(sweep, _STALE_AFTER_S.value)} "
        "interrupted trials queued again.",
        flush=True,
    )
    cache = os.path.expanduser(cli.COMPILATION_CACHE.value)
    sweeps.work(sweep, _CONFIG.value, overrides, _SWEEP_DIR.value, _WORKERS.value, cache)
  else:
    if not os.path.isdir(_SWEEP_DIR.value) and not _STORAGE.value:
      raise errors.UserError(f"{_SWEEP_DIR.value!r} holds no sweep.")
    sweep = sweeps.open_sweep(_SWEEP_DIR.value, _STORAGE.value, identity=None)
  for path in sweeps.report(sweep, _SWEEP_DIR.value, _METRICS.value, _GOAL.value, _BY.value):
    print(path)


if __name__ == "__main__":
  cli.run(main, commands=("run", "report"))
