"""Specification of genjax.experiment, the one setup seam: frozen networks reach the jitted train step as an argument
(never compiled in as constants, never in the train state, its checkpoints or its parameter count)."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np

from conftest import tiny_config
from genjax import experiment
from genjax import trainers
from genjax.data import pipeline
from genjax.trainers import contract


def test_a_trainers_frozen_network_reaches_its_step_as_an_argument(digits, monkeypatch):
  config = tiny_config("ae")
  plain = trainers.make_trainer(config, digits.spec)
  weights = np.arange(50_000, dtype=np.float32)

  def train_step(state, batch, key, frozen):
    state, metrics = plain.train_step(state, batch, key)
    return state, {**metrics, "frozen_sum": jnp.sum(frozen["weights"]["values"])}

  network = contract.FrozenNetwork(load=lambda data: {"values": weights}, description="a test's weights")
  with_frozen = dataclasses.replace(plain, train_step=train_step, frozen_networks={"weights": network})
  monkeypatch.setitem(trainers.FAMILIES, config.family, lambda config, spec: with_frozen)

  built = experiment.build(config, digits.spec)
  frozen = built.load_frozen(digits)
  feed = built.host_feed(pipeline.StreamReader(digits.train, digits.spec, built.stream)(0))
  lowered = built.jitted_train_step.lower(built.init(), feed, built.keys, frozen).as_text()
  state, metrics = built.train_step(built.init(), feed, frozen)

  assert float(metrics["frozen_sum"]) == weights.sum()
  # Not in the state (what is checkpointed and counted): the state is the plain trainer's.
  assert jax.tree.structure(state) == jax.tree.structure(jax.eval_shape(plain.init, jax.random.key(0)))
  assert built.trainer.num_params(state) == plain.num_params(state)
  # Not compiled in as a constant.
  assert max((len(digits_) // 8 for digits_ in re.findall(r'dense<"0x([0-9A-F]+)"', lowered)), default=0) < 5_000
