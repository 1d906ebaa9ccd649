"""Neural style transfer by optimisation (Gatys, Ecker & Bethge 2016, "Image Style Transfer Using Convolutional
Neural Networks"): the image is optimised so that its VGG features at one deep layer match the content image's and
the Gram matrices of its features at five layers match the style image's. What experiments/stylize.py does, as a
library, so that it is tested in-process.

The losses are the paper's: content 1/2 sum (F - P)^2 at relu4_2; style sum over relu1_1..relu5_1 of
w_l / (4 N_l^2 M_l^2) sum (G - A)^2 with w_l = 1/5, i.e. 1/4 of the mean squared difference of the Gram matrices
divided by the number of positions (`perceptual.gram_matrix`); total alpha content + beta style. The paper's
alpha/beta of 1e-3 is for Caffe's VGG, fed 0-255 pixels less the mean; torchvision's weights take pixels divided by
about 58 more (ImageNet's standard deviation), so features are about 58 times smaller, the content term 58^2 and the
style term 58^4 times smaller, and the same balance needs beta about 3e3 times larger: beta = 1e6 (alpha 1) is the
order that gives it, chosen on the scikit-image photographs of the README's figure. Unlike the paper, the image
starts from the content image (not noise) and is optimised by Adam on [0, 1] pixels, clipped after each step, all
steps in one jitted lax.scan; the VGG keeps its max pools. The network's weights are an argument
(`vgg_weights.vgg_variables` loads them), never compiled in as constants.

Images of any channel count are taken: grey (and grey with alpha) is repeated to RGB, alpha dropped, so a grey
photograph takes a colour painting's style.
"""

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from genjax import errors
from genjax import pixels
from genjax.metrics import perceptual
from genjax.models import vgg


@dataclasses.dataclass(frozen=True)
class Settings:
  """depth: VGG16 or VGG19 (the paper's); steps and learning_rate: Adam's, on [0, 1] pixels; max_side: the content
  image is shrunk to at most this many pixels on its longer side, the style image to the same longer side."""

  depth: int = 19
  steps: int = 300
  learning_rate: float = 0.02
  content_layer: str = "relu4_2"
  style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
  content_weight: float = 1.0
  style_weight: float = 1e6
  max_side: int = 256


def as_rgb(image: np.ndarray) -> np.ndarray:
  """`[H, W, C]` uint8 or [0, 1] float with 1 to 4 channels -> float32 RGB in [0, 1] (grey repeated, alpha dropped)."""
  image = np.asarray(image)
  image = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
  if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4):
    raise ValueError(f"expected an [H, W, C] image with 1 to 4 channels, got shape {image.shape}")
  colour = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
  return np.ascontiguousarray(colour)


def _resized(image: np.ndarray, longer_side: int) -> np.ndarray:
  """`image` with its longer side at `longer_side` pixels (antialiased when shrinking), the aspect ratio kept."""
  height, width = image.shape[:2]
  scale = longer_side / max(height, width)
  shape = (max(1, round(height * scale)), max(1, round(width * scale)), image.shape[2])
  return np.asarray(jax.image.resize(image, shape, "linear", antialias=True)).clip(0.0, 1.0)


def stylize(content: np.ndarray, style: np.ndarray, variables, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
  """(the content image `[H, W, 3]` in [0, 1] in the style of `style`, the loss at each step `[steps]`).

  content, style: `[H, W, C]` images (`as_rgb`); the content is shrunk to `settings.max_side` if larger, the style to
  the content's longer side. variables: `vgg.VGG(settings.depth, ...)`'s, with every layer up to the deepest one used.
  """
  content = as_rgb(content)
  if max(content.shape[:2]) > settings.max_side:
    content = _resized(content, settings.max_side)
  style = _resized(as_rgb(style), max(content.shape[:2]))
  image, losses = _optimise(jnp.asarray(content), jnp.asarray(style), variables, settings)
  return np.asarray(image), np.asarray(losses)


@functools.partial(jax.jit, static_argnums=3)
def _optimise(content: jax.Array, style: jax.Array, variables, settings: Settings):
  taps = tuple(dict.fromkeys((settings.content_layer, *settings.style_layers)))
  model = vgg.VGG(settings.depth, taps)

  def features(image):
    return model.apply(variables, vgg.imagenet_normalize(image[None], pixels.UNIT_RANGE))

  content_target = features(content)[settings.content_layer]
  style_features = features(style)
  style_grams = {layer: perceptual.gram_matrix(style_features[layer]) for layer in settings.style_layers}

  def loss(image):
    image_features = features(image)
    content_loss = 0.5 * jnp.sum(jnp.square(image_features[settings.content_layer] - content_target))
    style_loss = sum(
        0.25 * jnp.mean(jnp.square(perceptual.gram_matrix(image_features[layer]) - style_grams[layer]))
        for layer in settings.style_layers
    ) / len(settings.style_layers)
    return settings.content_weight * content_loss + settings.style_weight * style_loss

  optimizer = optax.adam(settings.learning_rate)

  def step(carry, _):
    image, optimizer_state = carry
    value, gradient = jax.value_and_grad(loss)(image)
    updates, optimizer_state = optimizer.update(gradient, optimizer_state)
    return (jnp.clip(optax.apply_updates(image, updates), 0.0, 1.0), optimizer_state), value

  (image, _), losses = jax.lax.scan(step, (content, optimizer.init(content)), length=settings.steps)
  return image, losses


def _read(path: str, role: str) -> np.ndarray:
  try:
    return pixels.read_image(path, channels=3)
  except OSError as error:
    raise errors.UserError(f"Could not read the {role} image {path!r} ({error}).") from error


def stylize_file(content_path: str, style_path: str, output_path: str, variables, settings: Settings) -> np.ndarray:
  """Reads the two images (any format Pillow reads; grey, RGB or with alpha), writes the result to `output_path`
  (its suffix names the format) and returns the loss at each step. UserError for an image that cannot be read or an
  output suffix that names no image format, before any optimisation."""
  if os.path.splitext(output_path)[1].lower() not in pixels.IMAGE_SUFFIXES:
    raise errors.UserError(
        f"The output {output_path!r} needs the suffix of an image format: one of {', '.join(pixels.IMAGE_SUFFIXES)}."
    )
  content, style = _read(content_path, "content"), _read(style_path, "style")
  image, losses = stylize(content, style, variables, settings)
  pixels.save_image(output_path, pixels.to_uint8(image, pixels.UNIT_RANGE))
  return losses


def default_output_path(content_path: str, style_path: str) -> str:
  """`<content name>-<style name>.png` beside the content image."""
  content_name = os.path.splitext(os.path.basename(content_path))[0]
  style_name = os.path.splitext(os.path.basename(style_path))[0]
  return os.path.join(os.path.dirname(content_path), f"{content_name}-{style_name}.png")
