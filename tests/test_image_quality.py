"""Specification of genjax.metrics.image_quality: closed forms for PSNR and MSE, SSIM's extremes and ordering, and
independence from the pixel range the images are stored in."""

import math

import jax
import numpy as np
import pytest

from genjax.metrics import image_quality


def _digits_in_unit_range(digits, count: int = 4) -> np.ndarray:
  return np.stack([example["image"] for example in digits.eval[:count]]).astype(np.float32) / 255.0


def test_identical_images_have_ssim_one_zero_error_and_infinite_psnr(digits):
  images = _digits_in_unit_range(digits)
  np.testing.assert_allclose(image_quality.ssim(images, images, (0.0, 1.0)), np.ones(4), rtol=1e-5)
  np.testing.assert_array_equal(image_quality.mean_squared_error(images, images), np.zeros(4))
  np.testing.assert_array_equal(image_quality.psnr(images, images, (0.0, 1.0)), np.full(4, np.inf))


def test_psnr_is_ten_log10_of_range_squared_over_mse():
  reference = np.zeros((2, 12, 12, 1), np.float32)
  reconstruction = reference.copy()
  reconstruction[0, :2, :2] = 51.0  # 4 of 144 pixels off by 51 (of 255): MSE = 4 * 51^2 / 144.
  reconstruction[1] = 5.0  # Every pixel off by 5: MSE = 25.
  mse = np.array([4 * 51.0**2 / 144, 25.0])
  np.testing.assert_allclose(image_quality.mean_squared_error(reference, reconstruction), mse, rtol=1e-6)
  expected = 10.0 * np.log10(255.0**2 / mse)
  np.testing.assert_allclose(image_quality.psnr(reference, reconstruction, (0.0, 255.0)), expected, rtol=1e-5)
  assert math.isclose(expected[1], 20.0 * math.log10(51.0), rel_tol=1e-9)  # 255 / sqrt(25) = 51


def test_ssim_decreases_as_noise_grows(digits):
  images = _digits_in_unit_range(digits)
  noise = np.asarray(jax.random.normal(jax.random.key(0), images.shape))
  scores = [image_quality.ssim(images, images + scale * noise, (0.0, 1.0)) for scale in (0.02, 0.1, 0.3, 1.0)]
  assert np.all(np.diff(np.stack(scores), axis=0) < 0), scores


def test_psnr_and_ssim_do_not_depend_on_the_pixel_range_images_are_stored_in(digits):
  images = _digits_in_unit_range(digits)
  noisy = np.clip(images + 0.1 * np.asarray(jax.random.normal(jax.random.key(1), images.shape)), 0.0, 1.0)
  for metric in (image_quality.psnr, image_quality.ssim):
    unit = metric(images, noisy, (0.0, 1.0))
    symmetric = metric(2.0 * images - 1.0, 2.0 * noisy - 1.0, (-1.0, 1.0))
    np.testing.assert_allclose(symmetric, unit, rtol=1e-5)


def test_ssim_refuses_images_smaller_than_its_window():
  images = np.zeros((1, 8, 8, 1), np.float32)
  with pytest.raises(ValueError, match="11x11"):
    image_quality.ssim(images, images, (0.0, 1.0))
