r"""Downloads and prepares a TFDS dataset into a data_dir as array_record, ready for training here or elsewhere.

  python experiments/prepare_data.py mnist --data_dir=/path/to/tfds
  python experiments/prepare_data.py imagenet2012 --data_dir=/path/to/tfds --manual_dir=/path/with/the/tars

It needs only requirements.txt (TFDS's own `tfds build` also needs Apache Beam). Copy DATA_DIR/NAME to a machine
without internet and train there with --config.data.data_dir=DATA_DIR. A dataset that is already prepared is left
as it is; one that cannot be downloaded stops with a message naming the dataset, the data_dir and what to do.
"""

from absl import app
from absl import flags
from absl import logging

from genjax import cli

_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to prepare into (default ~/tensorflow_datasets).")
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir",
    None,
    "Files downloaded by hand, for a dataset that TFDS cannot download (default DATA_DIR/downloads/manual).",
)


def main(argv: list[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError("Name one TFDS dataset, e.g. `python experiments/prepare_data.py mnist --data_dir=DIR`.")
  from genjax.data import catalog  # Imported here, so that usage errors come before TFDS spends seconds importing.

  builder = catalog.prepare(argv[1], _DATA_DIR.value, _MANUAL_DIR.value)
  splits = ", ".join(f"{split} {info.num_examples}" for split, info in sorted(builder.info.splits.items()))
  logging.info("%s is prepared in %s (examples: %s).", argv[1], builder.data_dir, splits)


if __name__ == "__main__":
  app.run(cli.reporting_user_errors(main))
