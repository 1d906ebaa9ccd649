"""Perceptual scores of a set of output images against references, which the restoration and translation
evaluations report beside PSNR and SSIM:

- `swd`: ProGAN's sliced Wasserstein distance between Laplacian-pyramid patch distributions, x 1e3, averaged over the
  pyramid's levels (`genjax.metrics.sliced_wasserstein`); no weights needed, so always, where images have at least 16
  pixels a side. A distance between two sets: it needs no pairing.
- `lpips`: LPIPS v0.1 with VGG16 (`genjax.models.vgg.lpips`), per pair of images of one shape, averaged;
  only where verified copies of torchvision's VGG16 weights and LPIPS' linear layers are in the cache
  (~/.cache/genjax): an evaluation never downloads half a gigabyte on its own. Where they are not, the protocol says
  so (`lpips` entry) with the files' URLs and where to put them, and no lpips number is reported.
"""

import jax
import numpy as np

from genjax import errors
from genjax.feature_networks import vgg_weights
from genjax.metrics import sliced_wasserstein
from genjax.models import vgg

_lpips = jax.jit(vgg.lpips, static_argnums=3)
_LPIPS_BATCH = 8  # Pairs of one shape scored at once: VGG16's first layers hold 64 channels at full size.


class PerceptualScores:
  """`scores(references, images) -> {"swd": ..., "lpips": ...}` over lists of `[H, W, C]` images in `pixel_range`;
  `protocol`: how each was computed, or why it was not."""

  def __init__(self, pixel_range: tuple[float, float], cache_dir: str | None = None):
    self._pixel_range = tuple(pixel_range)
    self.protocol = {
        "swd": (
            "sliced Wasserstein distance x 1e3 between 7x7 patches of Laplacian-pyramid levels down to 16 px "
            "(ProGAN), mean over levels"
        )
    }
    try:
      weights = vgg_weights.lpips_weights(cache_dir=cache_dir, option_names=(None, None), download=False)
    except errors.UserError as error:
      self._weights = None
      self.protocol["lpips"] = f"not computed: {error}"
    else:
      self._weights = jax.device_put(weights)  # Once: every call reuses the device copy.
      self.protocol["lpips"] = "LPIPS v0.1, VGG16 (torchvision and PerceptualSimilarity weights), mean over pairs"

  def scores(self, references: list[np.ndarray], images: list[np.ndarray], paired: bool = True) -> dict[str, float]:
    """SWD between the two sets (when every image has 16 pixels a side or more) and, where `paired` (the i-th image
    is the i-th reference's counterpart), the mean LPIPS over the pairs (when the weights are there and each pair
    has one shape)."""
    scores = {}
    if min(min(image.shape[:2]) for image in [*references, *images]) >= sliced_wasserstein.SMALLEST_SIDE:
      scores["swd"] = float(np.mean(sliced_wasserstein.sliced_wasserstein_distance(references, images)))
    paired = paired and len(references) == len(images)
    if self._weights is not None and paired and all(a.shape == b.shape for a, b in zip(references, images)):
      scores["lpips"] = float(np.mean(self._lpips(references, images)))
    return scores

  def _lpips(self, references: list[np.ndarray], images: list[np.ndarray]) -> list[float]:
    """LPIPS of each pair, in batches of up to _LPIPS_BATCH pairs of one shape (one compilation per shape)."""
    by_shape = {}
    for reference, image in zip(references, images):
      by_shape.setdefault(reference.shape, []).append((reference, image))
    distances = []
    for pairs in by_shape.values():
      for start in range(0, len(pairs), _LPIPS_BATCH):
        batch = pairs[start : start + _LPIPS_BATCH]
        first, second = (np.stack([pair[side] for pair in batch]) for side in (0, 1))
        distances += np.asarray(_lpips(self._weights, first, second, self._pixel_range)).tolist()
    return distances
