"""Classical restoration methods, the yardsticks of genjax's restorers on the same degraded images: total-variation
and non-local-means denoising (scikit-image), BM3D (the `bm3d` package, when installed: a benchmark-only
dependency, like torch), bicubic upscaling, and biharmonic inpainting (scikit-image).

`METHODS` is their one table, by the names that a restoration task lists (`degradations.Degradation.baselines`);
every method has one signature, so the evaluator needs to know none of them. Images are NumPy `[H, W, C]` floats in
[0, 1]. The denoisers' strengths are tuned per noise level on training images (a small grid, best PSNR), so that
they are not handicapped by a guess.
"""

import dataclasses
import functools
import importlib.util
from collections.abc import Callable, Sequence

import numpy as np
from skimage import restoration

from genjax.data import degradations

_TV_WEIGHTS = (0.04, 0.06, 0.08, 0.1, 0.13, 0.17)
_NLM_H_FACTORS = (0.6, 0.8, 1.0, 1.2)

# (degraded `[H, W, C]`, mask `[H, W, 1]` (1: missing) or None) -> restored `[scale * H, scale * W, C]`.
Method = Callable[[np.ndarray, np.ndarray | None], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Setting:
  """What the baselines know of the degradation they undo.

  sigma:        the noise's standard deviation on the 8-bit scale (denoisers).
  scale:        the upscaling factor (bicubic).
  tuning_pairs: () -> `(degraded, clean)` training crops that the denoisers tune their strengths on; called only
                when a method tunes, at most once.
  """

  sigma: float
  scale: int
  tuning_pairs: Callable[[], Sequence[tuple[np.ndarray, np.ndarray]]]


def psnr(clean: np.ndarray, restored: np.ndarray) -> float:
  return float(10 * np.log10(1.0 / np.mean(np.square(np.clip(restored, 0, 1) - clean))))


def methods(names: Sequence[str], setting: Setting) -> dict[str, Method]:
  """Name -> method for each of `names` (keys of `METHODS`) available here (BM3D only where installed)."""
  setting = dataclasses.replace(setting, tuning_pairs=functools.cache(setting.tuning_pairs))
  found = {name: METHODS[name](setting) for name in names}
  return {name: method for name, method in found.items() if method is not None}


def _tuned(make: Callable, settings, tuning_pairs) -> Method:
  """`make(setting)` for the setting of best mean PSNR on `tuning_pairs`, as a `Method` (masks do not apply)."""
  score = lambda setting: np.mean([psnr(clean, make(setting)(noisy)) for noisy, clean in tuning_pairs])
  denoise = make(max(settings, key=score))
  return lambda noisy, mask: denoise(noisy)


def _tuned_tv(setting: Setting) -> Method:
  return _tuned(lambda weight: functools.partial(_tv, weight=weight), _TV_WEIGHTS, setting.tuning_pairs())


def _tuned_nlm(setting: Setting) -> Method:
  sigma = setting.sigma / 255.0
  make = lambda factor: functools.partial(_nlm, sigma=sigma, h_factor=factor)
  return _tuned(make, _NLM_H_FACTORS, setting.tuning_pairs())


def _bm3d_where_installed(setting: Setting) -> Method | None:
  if importlib.util.find_spec("bm3d") is None:
    return None
  return lambda noisy, mask: _bm3d(noisy, sigma=setting.sigma / 255.0)


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


METHODS: dict[str, Callable[[Setting], Method | None]] = {
    "tv": _tuned_tv,
    "nlm": _tuned_nlm,
    "bm3d": _bm3d_where_installed,
    "bicubic": lambda setting: lambda low_resolution, mask: bicubic(low_resolution, setting.scale),
    "biharmonic": lambda setting: biharmonic,
}
