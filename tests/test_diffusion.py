"""Specification of the diffusion family: the DDPM U-Net (`models.unets`), the forward process, its samplers and
its bound (`gaussian_diffusion`), and the trainer (`trainers.diffusion`).

The process is checked against closed forms: data from a 1-D mixture of Gaussians, whose noise predictor
E[noise | x_t] is known exactly, stand in for a trained network."""


import jax
import jax.numpy as jnp
import numpy as np

from genjax.models import unets


def _num_params(module, image_shape, **call_arguments) -> int:
  """The parameter count of `module` on images of `image_shape`, from shapes alone (nothing initialised)."""
  images = jnp.zeros((1, *image_shape))
  timesteps = jnp.zeros((1,), jnp.int32)
  shapes = jax.eval_shape(lambda key: module.init(key, images, timesteps, **call_arguments), jax.random.key(0))
  return sum(leaf.size for leaf in jax.tree.leaves(shapes))


def test_cifar10_unet_has_the_35_7m_parameters_of_ho_et_al():
  cifar10 = unets.UNet(3, channels=128, channel_multipliers=(1, 2, 2, 2), num_res_blocks=2, attention_resolutions=(16,))
  assert round(_num_params(cifar10, (32, 32, 3)) / 1e6, 1) == 35.7


def test_timestep_embedding_is_sines_then_cosines_of_geometric_frequencies():
  embedding = unets.timestep_embedding(jnp.array([0, 3]), 6)
  frequencies = 10_000.0 ** -(np.arange(3) / 2)
  np.testing.assert_allclose(embedding[0], [0, 0, 0, 1, 1, 1])
  np.testing.assert_allclose(embedding[1], np.concatenate([np.sin(3 * frequencies), np.cos(3 * frequencies)]), rtol=1e-5)
