"""Specification of genjax.style_transfer (experiments/stylize.py's logic): Gatys' optimisation writes an image at
the content's size whose loss falls, takes grey and colour images alike and refuses an unreadable one. Random VGG
weights and tiny images; the real weights' figure is in the README (experiments/check_perceptual_weights.py)."""

import jax
import numpy as np
import pytest

from genjax import errors
from genjax import pixels
from genjax import style_transfer
from genjax.models import vgg

# Only VGG19's first three convolutions: the test pins down the optimisation, not the depth of the network.
_SETTINGS = style_transfer.Settings(
    depth=19, steps=8, learning_rate=0.05, content_layer="relu1_2", style_layers=("relu1_1", "relu2_1"), max_side=16
)


@pytest.fixture(scope="module")
def random_variables():
  """He-scaled random weights of conv1_1, conv1_2 and conv2_1."""
  rng = np.random.default_rng(0)
  params, fan_in = {}, 3
  for name, width in zip(vgg.conv_names(19)[:3], (64, 64, 128)):
    kernel = rng.normal(0, np.sqrt(2 / (9 * fan_in)), (3, 3, fan_in, width)).astype(np.float32)
    params[name], fan_in = {"kernel": kernel, "bias": np.zeros(width, np.float32)}, width
  return jax.device_put({"params": params})


def test_grey_content_takes_a_colour_style_and_the_loss_falls(random_variables, tmp_path):
  ramp = np.broadcast_to(np.linspace(80, 180, 16).astype(np.uint8)[None, :, None], (12, 16, 1))  # smooth, grey
  pixels.save_image(str(tmp_path / "content.png"), np.ascontiguousarray(ramp))
  noise = np.random.default_rng(0).integers(0, 256, (20, 20, 3), np.uint8)  # a busy, colourful style
  pixels.save_image(str(tmp_path / "style.png"), noise)
  output = str(tmp_path / "out" / "result.png")
  losses = style_transfer.stylize_file(
      str(tmp_path / "content.png"), str(tmp_path / "style.png"), output, random_variables, _SETTINGS
  )
  result = pixels.read_image(output, channels=3)
  assert result.shape == (12, 16, 3)
  assert losses.shape == (8,) and np.all(np.isfinite(losses))
  assert losses[-1] < 0.7 * losses[0]
  assert np.ptp(result, axis=-1).max() > 0  # no longer grey: the style's colours came in


def test_images_of_any_channel_count_become_rgb():
  grey = np.full((2, 2, 1), 255, np.uint8)
  np.testing.assert_array_equal(style_transfer.as_rgb(grey), np.ones((2, 2, 3), np.float32))
  with_alpha = np.concatenate([np.full((2, 2, 3), 0.5, np.float32), np.zeros((2, 2, 1), np.float32)], axis=-1)
  np.testing.assert_array_equal(style_transfer.as_rgb(with_alpha), np.full((2, 2, 3), 0.5, np.float32))


def test_an_unreadable_style_image_is_refused_before_anything_is_written(random_variables, tmp_path):
  pixels.save_image(str(tmp_path / "content.png"), np.zeros((16, 16, 3), np.uint8))
  (tmp_path / "style.jpg").write_bytes(b"<html>404 Not Found</html>")
  output = tmp_path / "result.png"
  with pytest.raises(errors.UserError, match="Could not read the style image .*style.jpg"):
    style_transfer.stylize_file(
        str(tmp_path / "content.png"), str(tmp_path / "style.jpg"), str(output), random_variables, _SETTINGS
    )
  with pytest.raises(errors.UserError, match="needs the suffix of an image format"):
    content = str(tmp_path / "content.png")
    style_transfer.stylize_file(content, content, str(tmp_path / "result"), random_variables, _SETTINGS)
  assert not output.exists()


def test_default_output_sits_beside_the_content_image():
  output = style_transfer.default_output_path("/photos/cat.jpg", "/art/starry night.png")
  assert output == "/photos/cat-starry night.png"
