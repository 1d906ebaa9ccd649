"""Perceptual comparisons of features, as pure functions: `gram_matrix(features) -> [N, C, C]`, the style
representation of Gatys et al. 2016. LPIPS, a learned network (VGG16 and its linear layers), is
`genjax.models.vgg.lpips`.
"""

import jax
import jax.numpy as jnp

def gram_matrix(features: jax.Array) -> jax.Array:
  """`[N, H, W, C]` features -> `[N, C, C]`: G[c, d] = mean over positions of F[., c] F[., d] (Gatys et al. 2016,
  divided by the number of positions so that style weights do not depend on the image's size)."""
  batch, height, width, channels = features.shape
  flat = jnp.reshape(features, (batch, height * width, channels))
  return jnp.einsum("npc,npd->ncd", flat, flat, precision=jax.lax.Precision.HIGHEST) / (height * width)
