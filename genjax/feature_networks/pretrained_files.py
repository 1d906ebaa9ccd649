"""Published weight files of pretrained networks: finding a verified copy and reading it as a torch state dict.

A `PublishedFile` is a URL and the SHA-256 of its content. `verified_copy` returns the path of a copy whose hash
matches: the user's file, else the cached one (`~/.cache/genjax/<file name>`), else a download to that cache (to a
temporary file, renamed once verified), so that nothing is unpickled from a file before its hash is checked.
`read_state_dict` reads a verified file with `torch_state_dicts` (no torch) and `check_tensors` compares its names
and shapes with what a model needs. Every problem the user can fix raises errors.UserError saying how to obtain the
file: its URL, its hash, the option that names it and where it is looked for.

Mapping tensors onto a particular flax model is the caller's job (`vgg_weights`, `inception_weights`).
"""

import dataclasses
import hashlib
import http.client
import os
import tempfile
import urllib.request

from absl import logging
import numpy as np

from genjax import errors
from genjax.feature_networks import torch_state_dicts

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "genjax")


@dataclasses.dataclass(frozen=True)
class PublishedFile:
  """A weights file as its publisher serves it. description: what it is, in messages ("torchvision's VGG16
  weights"); num_bytes: its size, quoted so that a user knows what a download costs."""

  description: str
  url: str
  sha256: str
  num_bytes: int

  @property
  def filename(self) -> str:
    return self.url.rsplit("/", 1)[-1]

  def cache_path(self, cache_dir: str | None = None) -> str:
    return os.path.join(os.path.expanduser(cache_dir or DEFAULT_CACHE_DIR), self.filename)

  def how_to_obtain(self, option_name: str | None, cache_dir: str | None = None) -> str:
    """What the user can do: download the file and name it with `option_name` or put it in the cache (only the
    latter where no option names it: None)."""
    download = f"Download {self.url} ({self.num_bytes:,} bytes, SHA-256 {self.sha256})"
    if option_name is None:
      return f"{download} and put it at {self.cache_path(cache_dir)}."
    return (
        f"{download} and pass the file's path as {option_name}, or put it at {self.cache_path(cache_dir)}, where it "
        f"is looked for when {option_name} is not set."
    )


def verified_copy(
    published: PublishedFile,
    weights_path: str | None = None,
    cache_dir: str | None = None,
    *,
    option_name: str | None = "weights_path",
    download: bool = True,
) -> str:
  """Path of a copy of `published` whose SHA-256 matches: `weights_path` when given, else the cached copy, else
  (with `download`) a new download into the cache. UserError, saying how to obtain the file, otherwise.
  `option_name` is how the user sets `weights_path`, quoted in messages (None: there is no such option)."""
  how_to_obtain = published.how_to_obtain(option_name, cache_dir)
  cache_path = published.cache_path(cache_dir)
  if weights_path is not None:
    if not os.path.isfile(weights_path):
      raise errors.UserError(
          f"The file {weights_path!r} ({option_name}) of {published.description} does not exist. {how_to_obtain}"
      )
    _check_sha256(published, weights_path, f"Remove {option_name} or point it at the right file. {how_to_obtain}")
    return weights_path
  if os.path.isfile(cache_path):
    _check_sha256(published, cache_path, f"Delete it so that it is downloaded again. {how_to_obtain}")
    return cache_path
  if not download:
    raise errors.UserError(f"{published.description} are not at {cache_path}. {how_to_obtain}")
  _download(published, cache_path, how_to_obtain)
  return cache_path


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as file:
    while chunk := file.read(1 << 20):
      digest.update(chunk)
  return digest.hexdigest()


def _check_sha256(published: PublishedFile, path: str, advice: str) -> None:
  actual = _sha256(path)
  if actual != published.sha256:
    raise errors.UserError(
        f"{path} is not the file of {published.description}, or is damaged: its SHA-256 is {actual}, expected "
        f"{published.sha256}. {advice}"
    )


def _download(published: PublishedFile, destination: str, how_to_obtain: str) -> None:
  """Downloads the file to `destination` through a temporary file in the same directory, renamed once verified."""
  logging.info("Downloading %s from %s to %s.", published.description, published.url, destination)
  temporary_path = None
  try:
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    descriptor, temporary_path = tempfile.mkstemp(dir=os.path.dirname(destination), suffix=".part")
    digest = hashlib.sha256()
    with os.fdopen(descriptor, "wb") as file, urllib.request.urlopen(published.url, timeout=60) as response:
      while chunk := response.read(1 << 20):
        digest.update(chunk)
        file.write(chunk)
    if digest.hexdigest() != published.sha256:
      raise errors.UserError(
          f"The file downloaded from {published.url} has SHA-256 {digest.hexdigest()}, expected {published.sha256} "
          f"(an interrupted download or a changed release). {how_to_obtain}"
      )
    # A rename within one directory is atomic: a concurrent or interrupted run never sees a partial file.
    os.replace(temporary_path, destination)
  except (OSError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors.
    raise errors.UserError(
        f"Could not download {published.url} to {destination} ({error}). {how_to_obtain}"
    ) from error
  finally:
    if temporary_path is not None and os.path.exists(temporary_path):
      os.remove(temporary_path)


def read_state_dict(
    path: str, published: PublishedFile, option_name: str | None = "weights_path"
) -> dict[str, np.ndarray]:
  """The tensors of the torch state dict at `path` (a verified copy of `published`, or a file of the same layout),
  by name; UserError if it is missing or unreadable."""
  how_to_obtain = published.how_to_obtain(option_name)
  if not os.path.isfile(path):
    raise errors.UserError(f"The file {path!r} of {published.description} does not exist. {how_to_obtain}")
  try:
    return torch_state_dicts.read(path)
  except ValueError as error:
    raise errors.UserError(
        f"Could not read {path} as a torch state dict ({error}); the file is damaged, truncated or of another kind. "
        f"{how_to_obtain}"
    ) from error


def _listing(items: list[str], limit: int = 8) -> str:
  shown = ", ".join(items[:limit])
  return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_tensors(
    path: str,
    state_dict: dict[str, np.ndarray],
    expected_shapes: dict[str, tuple[int, ...]],
    ignored: tuple[str, ...],
    published: PublishedFile,
    option_name: str | None = "weights_path",
) -> None:
  """UserError unless `state_dict` holds every tensor of `expected_shapes` with that shape, and nothing else but
  names starting with one of `ignored`; the message lists the unexpected, misshapen and missing tensors."""
  unexpected, wrong_shapes = [], []
  for key, array in state_dict.items():
    if key.startswith(ignored):
      continue
    if key not in expected_shapes:
      unexpected.append(key)
    elif array.shape != expected_shapes[key]:
      wrong_shapes.append(f"{key} {array.shape} (the model needs {expected_shapes[key]})")
  missing = [key for key in expected_shapes if key not in state_dict]
  if unexpected or wrong_shapes or missing:
    problems = [
        f"{label} ({len(items)}): {_listing(items)}"
        for label, items in [("unexpected tensors", unexpected), ("wrong shapes", wrong_shapes), ("missing", missing)]
        if items
    ]
    raise errors.UserError(
        f"{path} is not a state dict of {published.description}: {'; '.join(problems)}. "
        f"{published.how_to_obtain(option_name)}"
    )
