"""What a run writes for people and tools to read: metrics.jsonl, TensorBoard events, PNG image grids and, for
2-D data, scatter plots.

Layout under the workdir, a local path or an object store's (gs://, through etils.epath; a contract that evaluation,
sweeps and users rely on):
  config.json        the resolved config of the latest run in this workdir
  data_spec.json     the fields and shapes of its examples, so that tools rebuild the model without the data
  metrics.jsonl      one JSON object per log or eval event: {"step", "split", <metric>: float, ...}; a non-finite
                     value is written as null and named in "nonfinite"; after a resume, each step appears once
  events.out.tfevents.*   TensorBoard scalars (`train/loss`, `eval/neg_elbo`, ...) and image grids
  samples/<name>_<step>.png   image grids (or scatter plots of 2-D samples) written at each evaluation

Only process 0 of a multi-process run writes (`RunWriter(..., enabled=False)` elsewhere). The training loop takes
any object with these methods, so tests pass a `MemoryWriter`.
"""

import json
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import tensorboardX
from etils import epath
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from genjax import pixels


class Writer(Protocol):

  def write_config(self, config: dict, data_spec: dict) -> None:
    """The run's resolved config and the spec of its data (what tools rebuild the model from)."""
    ...

  def write_metrics(self, step: int, split: str, metrics: dict[str, float]) -> None:
    ...

  def resume_at(self, step: int) -> None:
    """Forgets what was written for steps after `step` (the checkpoint a run resumes from)."""
    ...

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    ...

  def close(self) -> None:
    ...


class RunWriter:
  """Writes metrics.jsonl, TensorBoard events and samples/*.png under `workdir`."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._enabled = enabled
    if not enabled:
      return
    self._workdir = epath.Path(workdir)
    self._workdir.mkdir(parents=True, exist_ok=True)
    self._samples_dir = self._workdir / "samples"  # Made by the first image: a run that draws none has none.
    self._metrics_path = self._workdir / "metrics.jsonl"
    self._metric_lines = self._metrics_path.read_text().splitlines() if self._metrics_path.exists() else []
    self._tensorboard = tensorboardX.SummaryWriter(logdir=workdir)

  def write_config(self, config: dict, data_spec: dict) -> None:
    if not self._enabled:
      return
    _write_atomically(self._workdir / "config.json", json.dumps(config, indent=2, sort_keys=True))
    _write_atomically(self._workdir / "data_spec.json", json.dumps(data_spec, indent=2, sort_keys=True))

  def write_metrics(self, step: int, split: str, metrics: dict[str, float]) -> None:
    if not self._enabled:
      return
    nonfinite = [name for name, value in metrics.items() if not math.isfinite(value)]
    line = {
        "step": step,
        "split": split,
        **{name: None if name in nonfinite else value for name, value in metrics.items()},
    }
    if nonfinite:
      line["nonfinite"] = nonfinite
    # Strict JSON (no NaN or Infinity tokens), which every parser reads.
    self._metric_lines.append(json.dumps(line, allow_nan=False))
    self._write_metric_lines()
    for name, value in metrics.items():
      self._tensorboard.add_scalar(f"{split}/{name}", value, step)
    self._tensorboard.flush()

  def resume_at(self, step: int) -> None:
    """Rewrites metrics.jsonl without the lines of steps after `step` (write-then-rename, so a crash keeps either
    file whole), and tells TensorBoard to purge its events after `step` (its `purge_step`)."""
    if not self._enabled:
      return
    self._tensorboard.close()
    self._tensorboard = tensorboardX.SummaryWriter(logdir=str(self._workdir), purge_step=step + 1)
    self._metric_lines = [line for line in self._metric_lines if line.strip() and json.loads(line)["step"] <= step]
    self._write_metric_lines()

  def _write_metric_lines(self) -> None:
    # The whole file, written then renamed: object stores (gs://) cannot append, and a crash keeps a whole file.
    _write_atomically(self._metrics_path, "".join(line + "\n" for line in self._metric_lines))

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """Writes a uint8 HWC image as samples/<name>_<step>.png and as a TensorBoard image."""
    if not self._enabled:
      return
    pixels.save_png(str(self._samples_dir / f"{name}_{step:08d}.png"), image)
    self._tensorboard.add_image(name, image, step, dataformats="HWC")
    self._tensorboard.flush()

  def close(self) -> None:
    if self._enabled:
      self._tensorboard.close()


def _write_atomically(path: epath.Path, text: str) -> None:
  """Writes `path` through a temporary file renamed over it, so a reader never sees half of it."""
  temporary = path.with_name(path.name + ".tmp")
  temporary.write_text(text)
  temporary.replace(path)


class MemoryWriter:
  """Keeps everything in lists: for tests and notebooks."""

  def __init__(self):
    self.config: dict | None = None
    self.data_spec: dict | None = None
    self.metrics: list[dict] = []
    self.images: list[tuple[int, str, np.ndarray]] = []

  def write_config(self, config: dict, data_spec: dict) -> None:
    self.config, self.data_spec = config, data_spec

  def write_metrics(self, step: int, split: str, metrics: dict[str, float]) -> None:
    self.metrics.append({"step": step, "split": split, **metrics})

  def resume_at(self, step: int) -> None:
    self.metrics = [line for line in self.metrics if line["step"] <= step]

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    self.images.append((step, name, image))

  def close(self) -> None:
    pass


def image_grid(images: np.ndarray, pixel_range: tuple[float, float], num_columns: int | None = None) -> np.ndarray:
  """Tiles `[N, H, W, C]` images in `pixel_range` into one uint8 `[rows*(H+1)+1, cols*(W+1)+1, C]` image with
  one-pixel gaps; values outside the range are clipped."""
  images = pixels.to_uint8(images, pixel_range)
  num_images, height, width, channels = images.shape
  num_columns = num_columns or math.ceil(math.sqrt(num_images))
  num_rows = math.ceil(num_images / num_columns)
  grid = np.zeros((num_rows * (height + 1) + 1, num_columns * (width + 1) + 1, channels), np.uint8)
  for index, image in enumerate(images):
    row, column = divmod(index, num_columns)
    top, left = 1 + row * (height + 1), 1 + column * (width + 1)
    grid[top : top + height, left : left + width] = image
  return grid


def grouped_rows_grid(
    groups: Sequence[np.ndarray], pixel_range: tuple[float, float], num_columns: int | None = None
) -> np.ndarray:
  """A grid of rows in groups: a strip of `num_columns` images of each of `groups` (same length `[N, H, W, C]`) in
  turn, e.g. inputs above their reconstructions, so that image i of every group sits in the same column of
  consecutive rows. The last strips are padded with blank cells (black, as the gaps) rather than wrapped, so that
  the pairing holds whatever N. `num_columns` defaults to a square grid's, ceil(sqrt(N))."""
  num_images = len(groups[0])
  num_columns = num_columns or math.ceil(math.sqrt(num_images))
  padded_length = math.ceil(num_images / num_columns) * num_columns
  blank = np.full((padded_length - num_images, *groups[0].shape[1:]), pixel_range[0], np.float32)
  padded = [np.concatenate([np.asarray(group, np.float32), blank]) for group in groups]
  strips = [group[start : start + num_columns] for start in range(0, padded_length, num_columns) for group in padded]
  return image_grid(np.concatenate(strips), pixel_range, num_columns)


def with_column_labels(grid: np.ndarray, labels: Sequence[str]) -> np.ndarray:
  """`grid` (a uint8 `image_grid` of `len(labels)` equal columns) under a band naming each column, in white on
  black."""
  cell_width = (grid.shape[1] - 1) // len(labels) - 1
  font = ImageFont.load_default(size=12)
  band = Image.new("L", (grid.shape[1], 16), 0)
  draw = ImageDraw.Draw(band)
  for column, label in enumerate(labels):
    left = 1 + column * (cell_width + 1) + max(0.0, (cell_width - draw.textlength(label, font=font)) / 2)
    draw.text((left, 1), label, fill=255, font=font)
  band = np.repeat(np.asarray(band)[..., None], grid.shape[2], axis=2)
  return np.concatenate([band, grid])


def new_figure(size: tuple[float, float]):
  """A figure object with an Agg canvas, not pyplot: no global state, no display, safe in any thread. Matplotlib is
  imported here, at the first plot: importing it costs every process that writes a run about a second at start."""
  from matplotlib import figure
  from matplotlib.backends import backend_agg

  fig = figure.Figure(figsize=size, dpi=100)
  backend_agg.FigureCanvasAgg(fig)
  return fig


def scatter_plot(samples: np.ndarray, real: np.ndarray, centers: np.ndarray, title: str) -> np.ndarray:
  """Plots 2-D `samples [N, 2]` over `real [M, 2]` data points and the mixture's `centers [K, 2]`: an RGB uint8
  image."""
  fig = new_figure((5, 5.5))
  axes = fig.add_subplot()
  axes.scatter(real[:, 0], real[:, 1], s=2, c="0.75", label="data")
  axes.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.5, label="samples")
  axes.scatter(centers[:, 0], centers[:, 1], s=30, marker="x", c="tab:red", label="mode centres")
  extent = 1.25 * np.abs(centers).max()
  axes.set(xlim=(-extent, extent), ylim=(-extent, extent), aspect="equal", title=title)
  # Below the axes, where it hides no mode.
  axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.05), ncol=3, fontsize="small", markerscale=3)
  fig.tight_layout()
  fig.canvas.draw()
  return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def histogram_plot(values_by_group: dict[str, np.ndarray], title: str) -> np.ndarray:
  """Overlaid histograms of each group's values, on shared bins, each normalised to unit area (groups of very
  different sizes stay comparable): an RGB uint8 image."""
  fig = new_figure((6, 4))
  axes = fig.add_subplot()
  every_value = np.concatenate([np.asarray(values, np.float64) for values in values_by_group.values()])
  bins = np.histogram_bin_edges(every_value, bins=50)
  for name, values in values_by_group.items():
    axes.hist(values, bins=bins, density=True, alpha=0.5, label=f"{name} ({len(values)})")
  axes.set(title=title, xlabel="score", ylabel="density")
  axes.legend(fontsize="small")
  fig.tight_layout()
  fig.canvas.draw()
  return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def projection_plot(
    points: np.ndarray, labels: np.ndarray | None, class_names: list[str] | None, title: str, axis_labels: list[str]
) -> np.ndarray:
  """Plots 2-D `points [N, 2]`, one colour per label (`class_names[label]` in the legend) where there are
  labels: an RGB uint8 image."""
  fig = new_figure((6, 6))
  axes = fig.add_subplot()
  if labels is None:
    axes.scatter(points[:, 0], points[:, 1], s=6, c="tab:blue")
  else:
    import matplotlib  # Loaded by `new_figure` by now.

    colours = matplotlib.colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    for label, name in enumerate(class_names):
      chosen = labels == label
      axes.scatter(points[chosen, 0], points[chosen, 1], s=6, color=colours(label % colours.N), label=name)
    axes.legend(fontsize="small", markerscale=2, loc="best")
  axes.set(title=title, xlabel=axis_labels[0], ylabel=axis_labels[-1])
  fig.tight_layout()
  fig.canvas.draw()
  return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
