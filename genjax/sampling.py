"""Drawing from a trained model: batched samples, sample and reconstruction grids, latent interpolations, and
sample export (PNG folders, NumPy files); for a model with a style space (`contract.StyleSpace`, StyleGAN's W), the
truncation trick and style-mixing grids.

Everything here takes an `experiment.Experiment` with a train state (a restored run's, or the loop's) and plain
arrays; experiments/sample.py is the command line over it. Images come back as float arrays in the data's pixel
range (`config.data.pixel_range`), NHWC, and grids as uint8 images.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from genjax import console
from genjax import errors
from genjax import experiment
from genjax import pixels
from genjax import writers
from genjax.data import pipeline
from genjax.data import sources
from genjax.trainers import contract

# Paths between two latent points: straight or along the great circle in the latent space, or (a model with a style
# space) straight between their ws in W, where StyleGAN measures its perceptual path length.
INTERPOLATIONS = ("linear", "spherical", "w")


def generate(
    built: experiment.Experiment,
    state,
    num_images: int,
    key: jax.Array,
    batch_size: int,
    truncation: float | None = None,
) -> np.ndarray:
  """`num_images` samples `[N, H, W, C]`, drawn `batch_size` at a time (batch i with `fold_in(key, i)`); with
  `truncation` psi (models with a style space), each w pulled towards the mean w: w_mean + psi * (w - w_mean)."""
  if built.trainer.sampler is None:
    raise errors.UserError(f"A {built.config.family} model cannot sample (it has no prior over its codes).")
  if num_images < 1 or batch_size < 1:
    raise errors.UserError(f"Cannot draw {num_images} samples in batches of {batch_size}: both must be positive.")
  draw = built.generate
  if truncation is not None:
    style_space(built, truncation)
    sampler = _truncated_sampler(built.trainer.style_space, built.trainer.decoder, built.replicated)
    draw = functools.partial(sampler, psi=truncation)
  batches = []
  starts = range(0, num_images, batch_size)
  for index, start in enumerate(console.track(starts, len(starts), f"Drawing {num_images} samples")):
    count = min(batch_size, num_images - start)
    batches.append(np.asarray(draw(state, jax.random.fold_in(key, index), count)))
  return np.concatenate(batches)[:num_images]


def generated_labels(built: experiment.Experiment, num_images: int, batch_size: int) -> np.ndarray | None:
  """The labels of the samples that `generate` draws `batch_size` at a time (each batch class by class, see
  `contract.class_by_class`), or None for an unconditional model."""
  decoder = built.trainer.decoder
  if decoder is None or not decoder.num_classes:
    return None
  counts = [min(batch_size, num_images - start) for start in range(0, num_images, batch_size)]
  return np.concatenate([np.asarray(contract.class_by_class(count, decoder.num_classes)) for count in counts])


def style_space(built: experiment.Experiment, truncation: float):
  """The model's style space (`contract.StyleSpace`); `UserError` for a psi outside [0, 1] or a model without one."""
  if not 0.0 <= truncation <= 1.0:
    raise errors.UserError(f"--truncation={truncation} must be in [0, 1] (1: none, 0: the mean image).")
  if built.trainer.style_space is None:
    raise errors.UserError(
        f"--truncation and style mixing need a generator with a style space (StyleGAN2); a {built.config.family} "
        "model has none."
    )
  return built.trainer.style_space


def _truncated_ws(space, state, latents, labels, psi):
  """`[N, num_layers, w_size]`: the ws of `latents`, truncated by psi, one per layer."""
  w_mean = space.w_mean(state)
  w = w_mean + psi * (space.map(state, latents, labels) - w_mean)
  return jnp.repeat(w[:, None], space.num_layers, axis=1)


@functools.cache
def _truncated_sampler(space, decoder, out_sharding):
  """`(state, key, count, psi) -> [count, H, W, C]` truncated samples (count static), jitted once per model."""

  def sample(state, key, count, psi):
    latents = jax.random.normal(key, (count, decoder.latent_size))
    labels = contract.class_by_class(count, decoder.num_classes)
    return space.synthesize(state, _truncated_ws(space, state, latents, labels, psi))

  return jax.jit(sample, static_argnums=2, out_shardings=out_sharding)


# Bands of a style-mixing grid: the layers whose ws a column's latent replaces, as fractions of the layers
# (StyleGAN's coarse 4-8 px, middle 16-32 px and fine 64 px and up, at any resolution).
STYLE_BANDS = {"coarse": (0.0, 1 / 3), "middle": (1 / 3, 2 / 3), "fine": (2 / 3, 1.0)}


def style_mixing_grids(
    built: experiment.Experiment, state, size: int, key: jax.Array, truncation: float = 1.0
) -> dict[str, np.ndarray]:
  """One grid per band of `STYLE_BANDS` (StyleGAN's figure 3): `size` column latents along the top, `size` row
  latents down the left, and in each cell the row's image with the column's ws in the band's layers."""
  space, decoder = style_space(built, truncation), built.trainer.decoder
  latents = jax.random.normal(key, (2 * size, decoder.latent_size))
  labels = contract.class_by_class(2 * size, decoder.num_classes)
  ws = jax.jit(_truncated_ws, static_argnums=0)(space, state, latents, labels, truncation)
  row_ws, column_ws = ws[:size], ws[size:]
  synthesize = jax.jit(space.synthesize, out_shardings=built.replicated)
  sources = np.asarray(synthesize(state, ws))
  pixel_range = _pixel_range(built)
  blank = np.full((1, *sources.shape[1:]), pixel_range[0], np.float32)
  grids = {}
  for band, (start, stop) in STYLE_BANDS.items():
    layers = np.zeros(space.num_layers, bool)
    layers[round(start * space.num_layers) : round(stop * space.num_layers)] = True
    # Every (row, column) pair: the row's ws, the column's in the band's layers.
    mixed = jnp.where(layers[None, None, :, None], column_ws[None], row_ws[:, None]).reshape(-1, *ws.shape[1:])
    cells = np.asarray(synthesize(state, mixed)).reshape(size, size, *sources.shape[1:])
    rows = [np.concatenate([blank, sources[size:]])]
    rows += [np.concatenate([sources[index : index + 1], cells[index]]) for index in range(size)]
    grids[band] = writers.image_grid(np.concatenate(rows), pixel_range, size + 1)
  return grids


def first_images(
    built: experiment.Experiment, source, num_images: int, binarized: bool = True, field: str = sources.IMAGE
) -> np.ndarray:
  """The first `num_images` images (of the image field `field`: a translation pair's "target", say) of a split in
  its fixed order, preprocessed as in evaluation (see `Experiment.eval_batch`), on the host."""
  if num_images > len(source):
    raise errors.UserError(f"Asked for {num_images} images of a split that has {len(source)}.")
  images, count = [], 0
  image_spec = built.spec.only((field,))
  images_only = sources.SelectedSplit(source, image_spec.fields)
  batch_size = built.config.eval.batch_size
  for raw in pipeline.eval_batches(images_only, image_spec, batch_size, jax.process_index(), jax.process_count()):
    batch = built.eval_batch(raw, binarized)
    real = np.asarray(built.gather(batch[pipeline.MASK])) > 0
    images.append(np.asarray(built.gather(batch[field]))[real])
    count += int(real.sum())
    if count >= num_images:
      break
  return np.concatenate(images)[:num_images]


def sample_grid(
    built: experiment.Experiment, state, num_images: int, key: jax.Array, truncation: float | None = None
) -> np.ndarray:
  """A grid of `num_images` samples (truncated by psi `truncation`, see `generate`), square; a class-conditional
  model's has one full row per class, of num_images // num_classes samples (at least one), so that no partial row
  is left over."""
  num_classes = built.trainer.decoder.num_classes if built.trainer.decoder else 0
  columns = max(1, num_images // num_classes) if num_classes else None
  count = columns * num_classes if num_classes else num_images
  samples = generate(built, state, count, key, num_images, truncation)
  return writers.image_grid(samples, _pixel_range(built), columns)


def reconstruction_grid(built: experiment.Experiment, state, images: np.ndarray, key: jax.Array) -> np.ndarray:
  """`images` in rows above their reconstructions, strip by strip, in a square grid (a last short strip is padded
  with blank cells, so the pairing holds). A model that learnt from corrupted inputs (a denoising autoencoder) shows
  what it is given: the corrupted inputs (drawn with `key`), their reconstructions, then the clean images."""
  encoder = built.trainer.encoder
  if encoder is None:
    raise errors.UserError(f"A {built.config.family} model has no encoder to reconstruct with.")
  images = np.asarray(images)
  inputs = images if encoder.corrupt is None else np.asarray(jax.jit(encoder.corrupt)(images, key))
  reconstructions = np.asarray(built.reconstruct(state, inputs))
  groups = [images, reconstructions] if encoder.corrupt is None else [inputs, reconstructions, images]
  return writers.grouped_rows_grid(groups, _pixel_range(built))


def interpolate(start: np.ndarray, end: np.ndarray, num_steps: int, mode: str) -> np.ndarray:
  """Points from `start [S, D]` to `end [S, D]`: `[S, num_steps, D]`, both ends included.

  "linear" walks the straight segment; "spherical" (slerp, White 2016) walks the great circle and interpolates
  the norm linearly, which keeps Gaussian latents at the typical radius that a straight line cuts through.
  """
  if mode not in ("linear", "spherical"):
    raise errors.UserError(f"Interpolation {mode!r} is not one of linear, spherical.")
  start, end = np.asarray(start, np.float64), np.asarray(end, np.float64)
  t = np.linspace(0.0, 1.0, num_steps)[None, :, None]
  if mode == "linear":
    return ((1 - t) * start[:, None] + t * end[:, None]).astype(np.float32)
  start_norm = np.linalg.norm(start, axis=-1, keepdims=True)[:, None]
  end_norm = np.linalg.norm(end, axis=-1, keepdims=True)[:, None]
  start_unit, end_unit = start[:, None] / start_norm, end[:, None] / end_norm
  angle = np.arccos(np.clip(np.sum(start_unit * end_unit, axis=-1, keepdims=True), -1.0, 1.0))
  sin_angle = np.sin(angle)
  # Nearly parallel endpoints: the great circle degenerates, and the straight segment is the same path.
  safe = sin_angle > 1e-6
  weights_start = np.where(safe, np.sin((1 - t) * angle) / np.where(safe, sin_angle, 1.0), 1 - t)
  weights_end = np.where(safe, np.sin(t * angle) / np.where(safe, sin_angle, 1.0), t)
  direction = weights_start * start_unit + weights_end * end_unit
  direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
  return (direction * ((1 - t) * start_norm + t * end_norm)).astype(np.float32)


def interpolation_endpoints(
    built: experiment.Experiment, state, num_strips: int, key: jax.Array, images: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Start and end points `[num_strips, latent_size]` of interpolation strips: random prior draws for a model that
  samples, else the codes of pairs of `images` (an autoencoder's codes follow no known prior)."""
  latent_size = built.trainer.decoder.latent_size
  if built.trainer.sampler is not None:
    return tuple(np.asarray(jax.random.normal(key, (2, num_strips, latent_size))))
  if images is None or len(images) < 2 * num_strips:
    raise errors.UserError(f"Interpolating between image codes needs {2 * num_strips} images.")
  codes = encode(built, state, images[: 2 * num_strips])
  return codes[0::2], codes[1::2]


def interpolation_grid(
    built: experiment.Experiment,
    state,
    start: np.ndarray,
    end: np.ndarray,
    num_steps: int,
    mode: str,
    truncation: float | None = None,
) -> np.ndarray:
  """One strip per row from the latent points `start [S, D]` to `end [S, D]` in `num_steps` images along `mode`
  (see INTERPOLATIONS; "w" walks between the points' ws, truncated by psi `truncation`); a class-conditional
  model's strip s keeps class s % num_classes."""
  if mode not in INTERPOLATIONS:
    raise errors.UserError(f"Interpolation {mode!r} is not one of {', '.join(INTERPOLATIONS)}.")
  num_classes = built.trainer.decoder.num_classes if built.trainer.decoder else 0
  strip_labels = np.arange(len(start)) % num_classes if num_classes else None
  labels = np.repeat(strip_labels, num_steps) if num_classes else None
  if mode == "w":
    images = _w_interpolation(built, state, start, end, strip_labels, num_steps, truncation)
  else:
    points = interpolate(start, end, num_steps, mode)
    images = decode(built, state, points.reshape(-1, points.shape[-1]), labels)
  return writers.image_grid(images, _pixel_range(built), num_steps)


def _w_interpolation(built, state, start, end, strip_labels, num_steps, truncation) -> np.ndarray:
  """`[S * num_steps, H, W, C]`: strip by strip, the images along the straight segment between the ws of the latent
  points `start` and `end` (each w given to every layer)."""
  psi = 1.0 if truncation is None else truncation
  space = style_space(built, psi)
  labels = None if strip_labels is None else np.concatenate([strip_labels, strip_labels])
  latents = np.concatenate([start, end]).astype(np.float32)
  ws = np.asarray(jax.jit(_truncated_ws, static_argnums=0)(space, state, latents, labels, psi))[:, 0]
  points = interpolate(ws[: len(start)], ws[len(start) :], num_steps, "linear").reshape(-1, ws.shape[-1])
  synthesize = jax.jit(space.synthesize, out_shardings=built.replicated)
  return np.asarray(synthesize(state, jnp.repeat(jnp.asarray(points)[:, None], space.num_layers, axis=1)))


def load_endpoints(path: str, latent_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Interpolation endpoints from a .npy array `[2, strips, latent_size]`."""
  try:
    endpoints = np.load(path)
  except (OSError, ValueError) as e:
    raise errors.UserError(f"Cannot read --endpoints={path!r}: {e}") from e
  if endpoints.ndim != 3 or endpoints.shape[0] != 2 or endpoints.shape[2] != latent_size:
    raise errors.UserError(
        f"--endpoints must hold an array [2, strips, {latent_size}] (start and end points); {path!r} holds "
        f"{endpoints.shape}."
    )
  return tuple(endpoints.astype(np.float32))


def decode(built: experiment.Experiment, state, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
  """Images `[N, H, W, C]` that the model's decoder (or generator) makes of `latents [N, latent_size]`."""
  decoder = built.trainer.decoder
  if decoder is None:
    raise errors.UserError(f"A {built.config.family} model has no decoder to interpolate through.")
  if latents.shape[-1] != decoder.latent_size:
    raise errors.UserError(
        f"The latents have {latents.shape[-1]} dimensions; this model's latent size is {decoder.latent_size}."
    )
  return np.asarray(built.decode(state, latents, labels))


def encode(built: experiment.Experiment, state, images: np.ndarray) -> np.ndarray:
  if built.trainer.encoder is None:
    raise errors.UserError(f"A {built.config.family} model has no encoder.")
  return np.asarray(built.encode(state, images))


def export(images: np.ndarray, pixel_range: tuple[float, float], path: str, file_format: str) -> str:
  """Writes images as 8-bit data for other tools (pytorch-fid, clean-fid, augmentation pipelines).

  "npz": one file `path` (".npz" appended if missing) holding `images` uint8 `[N, H, W, C]`;
  "png": a folder `path` of 000000.png, 000001.png, ... Returns what was written.
  """
  uint8_images = pixels.to_uint8(images, pixel_range)
  if file_format == "npz":
    path = path if path.endswith(".npz") else path + ".npz"
    epath.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with epath.Path(path).open("wb") as f:
      np.savez_compressed(f, images=uint8_images)
  elif file_format == "png":
    for index, image in enumerate(console.track(uint8_images, len(uint8_images), f"Writing {path}", "images")):
      pixels.save_png(str(epath.Path(path) / f"{index:06d}.png"), image)
  else:
    raise errors.UserError(f"Export format {file_format!r} is not one of npz, png.")
  return path


def _pixel_range(built: experiment.Experiment) -> tuple[float, float]:
  return tuple(built.config.data.pixel_range)
