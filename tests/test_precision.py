"""Specification of mixed precision (config.model.dtype): bfloat16 computation with float32 parameters, optimiser
states, batch statistics and losses, close to the float32 step; unknown dtypes are refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import MNIST_SPEC, tiny_config, train_batch
from genjax import errors
from genjax import trainers


@pytest.mark.parametrize("name", ["vae", pytest.param("wgan_gp", marks=pytest.mark.slow), "gan"])
def test_a_bfloat16_step_keeps_float32_state_and_tracks_the_float32_loss(name, digits):
  results = {}
  for dtype in ("float32", "bfloat16"):
    config = tiny_config(name, model__dtype=dtype)
    trainer = trainers.make_trainer(config, MNIST_SPEC)
    state = jax.jit(trainer.init)(jax.random.key(0))
    batch = train_batch(config, digits, 0, trainer.batches_per_step)
    state, metrics = jax.jit(trainer.train_step)(state, batch, jax.random.key(1))
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating))
    assert all(value.dtype == jnp.float32 for value in metrics.values())
    results[dtype] = jax.device_get(metrics)
  for metric in ("loss", "g_loss") if name != "vae" else ("loss", "kl"):
    np.testing.assert_allclose(results["bfloat16"][metric], results["float32"][metric], rtol=0.05, atol=0.02)


def test_the_bfloat16_computation_is_really_bfloat16(digits):
  config = tiny_config("vae", model__dtype="bfloat16")
  trainer = trainers.make_trainer(config, MNIST_SPEC)
  state = jax.jit(trainer.init)(jax.random.key(0))
  batch = train_batch(config, digits)
  hlo = jax.jit(trainer.train_step).lower(state, batch, jax.random.key(1)).as_text()
  assert "bf16" in hlo and "convolution" in hlo


def test_an_unknown_dtype_is_refused_with_the_valid_ones():
  with pytest.raises(errors.UserError, match="dtype='float8' is not one of float32, bfloat16"):
    trainers.make_trainer(tiny_config("vae", model__dtype="float8"), MNIST_SPEC)
