"""One pass over a config's values before anything is built, read or compiled: every step count, interval, size
and rate that cannot work is refused with a message naming the key, its value and what it must be.

Types are ml_collections' job (an override of the wrong type is refused when the flags are parsed); names that must
be one of a list (a loss, an architecture) are checked by the module that owns the list; this module owns ranges.
Checks that need more than the config (the batch against the mesh, a checkpoint's step) live where that is known.
"""

import math

import ml_collections

from genjax import errors

_POSITIVE = ("a positive integer", lambda value: value > 0)
_NON_NEGATIVE = ("0 or more", lambda value: value >= 0)
_POSITIVE_NUMBER = ("a positive number", lambda value: value > 0 and math.isfinite(value))
_NON_NEGATIVE_NUMBER = ("0 or more", lambda value: value >= 0 and math.isfinite(value))

# (dotted key, what it must be, predicate); keys a config does not declare are skipped.
_RANGES = [
    ("seed", *_NON_NEGATIVE),
    ("train.total_steps", *_POSITIVE),
    ("train.batch_size", *_POSITIVE),
    ("train.log_every_steps", *_POSITIVE),
    ("eval.every_steps", *_POSITIVE),
    ("eval.batch_size", *_POSITIVE),
    ("eval.grids.num_images", *_POSITIVE),
    ("eval.mode_coverage.num_samples", *_POSITIVE),
    ("eval.sample_quality.num_images", "0 (the whole eval split) or more", lambda value: value >= 0),
    ("eval.likelihood.iwae_samples", *_POSITIVE),
    ("eval.anomaly.iwae_samples", *_POSITIVE),
    ("eval.anomaly.num_images", *_POSITIVE),
    ("ckpt.every_steps", *_POSITIVE),
    ("ckpt.keep", "at least 1 (the newest checkpoint is always kept)", lambda value: value >= 1),
    ("optim.lr", *_POSITIVE_NUMBER),
    ("optim.warmup_steps", *_NON_NEGATIVE),
    ("optim.weight_decay", *_NON_NEGATIVE_NUMBER),
    ("optim.grad_clip_norm", "0 (no clipping) or more", lambda value: value >= 0 and math.isfinite(value)),
    ("data.random_crop_padding", *_NON_NEGATIVE),
    ("data.num_workers", "-1 (one per spare core), 0 (threads) or more", lambda value: value >= -1),
    ("data.on_device_max_bytes", *_NON_NEGATIVE),
    ("mesh.shape", "positive sizes, with at most one -1", lambda shape: all(size > 0 or size == -1 for size in shape)),
]


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises `UserError` naming every value of `config` that is out of its range."""
  problems = []
  for dotted_key, requirement, is_valid in _RANGES:
    value = _get(config, dotted_key)
    if value is not None and not is_valid(value):
      problems.append(f"config.{dotted_key}={value!r} must be {requirement}")
  if problems:
    raise errors.UserError("; ".join(problems) + ".")


def _get(config: ml_collections.ConfigDict, dotted_key: str):
  node = config
  for key in dotted_key.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or key not in node:
      return None
    node = node[key]
  return node
