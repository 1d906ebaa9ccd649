"""Classical restoration methods, the yardsticks of genjax's restorers on the same degraded images: total-variation
and non-local-means denoising (scikit-image), BM3D (the `bm3d` package, when installed: a benchmark-only
dependency, like torch), bicubic upscaling, and biharmonic inpainting (scikit-image).

Images are NumPy `[H, W, C]` floats in [0, 1]. The denoisers' strengths are tuned per noise level on training
images (a small grid, best PSNR), so that they are not handicapped by a guess.
"""

import functools
import importlib.util
from collections.abc import Callable, Sequence

import numpy as np
from skimage import restoration

from genjax.data import degradations

_TV_WEIGHTS = (0.04, 0.06, 0.08, 0.1, 0.13, 0.17)
_NLM_H_FACTORS = (0.6, 0.8, 1.0, 1.2)


def psnr(clean: np.ndarray, restored: np.ndarray) -> float:
  return float(10 * np.log10(1.0 / np.mean(np.square(np.clip(restored, 0, 1) - clean))))


def denoisers(sigma: float, tuning_pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, Callable]:
  """Name -> denoiser of images with noise `sigma` (8-bit scale), each tuned on `(noisy, clean)` pairs."""

  def tuned(make: Callable, settings) -> Callable:
    score = lambda setting: np.mean([psnr(clean, make(setting)(noisy)) for noisy, clean in tuning_pairs])
    return make(max(settings, key=score))

  found = {
      "tv": tuned(lambda weight: functools.partial(_tv, weight=weight), _TV_WEIGHTS),
      "nlm": tuned(lambda factor: functools.partial(_nlm, sigma=sigma / 255.0, h_factor=factor), _NLM_H_FACTORS),
  }
  if importlib.util.find_spec("bm3d") is not None:
    found["bm3d"] = functools.partial(_bm3d, sigma=sigma / 255.0)
  return found


def _tv(noisy: np.ndarray, weight: float) -> np.ndarray:
  return restoration.denoise_tv_chambolle(noisy, weight=weight, channel_axis=-1).reshape(noisy.shape)


def _nlm(noisy: np.ndarray, sigma: float, h_factor: float) -> np.ndarray:
  # scikit-image's recommended settings for Gaussian noise of known sigma: 5x5 patches, 13x13 search window.
  denoised = restoration.denoise_nl_means(
      noisy, h=h_factor * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True, channel_axis=-1
  )
  return denoised.reshape(noisy.shape)  # scikit-image drops a single channel's axis.


def _bm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
  import bm3d  # Optional: only where installed.

  channels = [bm3d.bm3d(noisy[..., channel], sigma_psd=sigma) for channel in range(noisy.shape[-1])]
  return np.stack(channels, axis=-1)


def bicubic(low_resolution: np.ndarray, scale: int) -> np.ndarray:
  """Bicubic upscaling, the interpolation SR networks are measured against."""
  return np.asarray(degradations.upscale(low_resolution[None], scale)[0])


def biharmonic(damaged: np.ndarray, mask: np.ndarray) -> np.ndarray:
  """Biharmonic inpainting of the pixels where `mask [H, W, 1]` is 1."""
  return restoration.inpaint_biharmonic(damaged, mask[..., 0].astype(bool), channel_axis=-1).reshape(damaged.shape)
