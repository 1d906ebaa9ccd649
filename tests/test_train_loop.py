"""Specification of the training loop with the AE and VAE trainers: sharding equivalence, exact resume,
checkpoint portability across device counts, refusal of foreign checkpoints, and what a run writes."""

import os
import re
import signal

import jax
import numpy as np
import pytest
from absl import logging

from conftest import tiny_config, unlabelled
from genjax import console
from genjax import errors
from genjax import in_flight
from genjax import experiment
from genjax import train_loop
from genjax import writers
from genjax.data import pipeline


def _params(state):
  return jax.tree.map(np.asarray, state.params)


def _assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def _assert_trees_equal(a, b):
  jax.tree.map(np.testing.assert_array_equal, a, b)


def test_step_on_8_devices_equals_step_on_1_device(digits, devices):
  config = tiny_config("vae")
  raw = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, 1, config.train.batch_size))(0)
  results = []
  for mesh_devices in (devices, devices[:1]):
    built = experiment.build(config, digits.spec, mesh_devices)  # The production jit, donation included.
    feed = built.host_feed(raw)
    assert len(feed.raw["image"].sharding.device_set) == len(mesh_devices)
    state, metrics = built.train_step(built.init(), feed, built.load_frozen(digits))
    results.append((_params(state), jax.device_get(metrics)))
  _assert_trees_close(results[0][0], results[1][0])
  _assert_trees_close(results[0][1], results[1][1])


class _PreemptedAt(writers.MemoryWriter):
  """Sends this process SIGTERM, as a scheduler would, when the training metrics of `step` arrive."""

  def __init__(self, step: int):
    super().__init__()
    self._step = step

  def write_metrics(self, step, split, metrics):
    super().write_metrics(step, split, metrics)
    if split == "train" and step == self._step:
      os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("family", ["vae", "ae"])
def test_resume_reproduces_uninterrupted_run(family, digits, tmp_path):
  config = tiny_config(family)
  straight = train_loop.train_and_evaluate(config, str(tmp_path / "straight"), digits, writers.MemoryWriter())
  with pytest.raises(errors.Stopped, match="Stopped at step 2 on a signal") as stopped:
    train_loop.train_and_evaluate(config, str(tmp_path / "resumed"), digits, _PreemptedAt(2))
  assert int(stopped.value.state.step) == 2
  second_writer = writers.MemoryWriter()
  resumed = train_loop.train_and_evaluate(config, str(tmp_path / "resumed"), digits, second_writer)
  assert int(resumed.step) == int(straight.step) == 4
  assert [m["step"] for m in second_writer.metrics if m["split"] == "train"] == [4]
  _assert_trees_equal(_params(resumed), _params(straight))
  _assert_trees_equal(jax.tree.map(np.asarray, resumed.opt_state), jax.tree.map(np.asarray, straight.opt_state))


def test_host_path_with_a_restart_equals_the_device_path_straight(digits, tmp_path):
  straight = train_loop.train_and_evaluate(
      tiny_config("vae", data__on_device="true"), str(tmp_path / "device"), digits, writers.MemoryWriter()
  )
  host = tiny_config("vae", data__on_device="false")
  with pytest.raises(errors.Stopped):
    train_loop.train_and_evaluate(host, str(tmp_path / "host"), digits, _PreemptedAt(2))
  resumed = train_loop.train_and_evaluate(host, str(tmp_path / "host"), digits, writers.MemoryWriter())
  _assert_trees_close(_params(resumed), _params(straight), rtol=1e-6, atol=1e-7)


def test_longer_rerun_continues_from_the_last_checkpoint(digits, tmp_path):
  workdir = str(tmp_path / "run")
  train_loop.train_and_evaluate(tiny_config("vae", train__total_steps=2), workdir, digits, writers.MemoryWriter())
  writer = writers.MemoryWriter()
  state = train_loop.train_and_evaluate(tiny_config("vae", train__total_steps=6), workdir, digits, writer)
  assert int(state.step) == 6
  assert [m["step"] for m in writer.metrics if m["split"] == "train"] == [4, 6]


@pytest.fixture(scope="module")
def six_steps_at_a_constant_rate(digits, tmp_path_factory):
  """The parameters that the moving-checkpoint tests must reach: six uninterrupted steps. The learning rate is
  constant, so that raising total_steps between the legs of a moving run leaves its schedule unchanged."""
  config = tiny_config("vae", train__total_steps=6, optim__schedule="constant")
  workdir = str(tmp_path_factory.mktemp("reference"))
  return _params(train_loop.train_and_evaluate(config, workdir, digits, writers.MemoryWriter()))


def test_checkpoint_from_8_devices_resumes_on_1_and_back(digits, devices, tmp_path, six_steps_at_a_constant_rate):
  workdir = str(tmp_path / "moving")
  for total_steps, mesh_devices in [(2, devices), (4, devices[:1]), (6, devices)]:
    state = train_loop.train_and_evaluate(
        tiny_config("vae", train__total_steps=total_steps, optim__schedule="constant"),
        workdir,
        digits,
        writers.MemoryWriter(),
        devices=mesh_devices,
    )
    assert len(jax.tree.leaves(state.params)[0].sharding.device_set) == len(mesh_devices)
  _assert_trees_close(_params(state), six_steps_at_a_constant_rate)


def test_checkpoint_of_another_model_is_refused_and_kept(digits, tmp_path):
  workdir = str(tmp_path / "run")
  train_loop.train_and_evaluate(tiny_config("vae", train__total_steps=2), workdir, digits, writers.MemoryWriter())
  bigger = tiny_config("vae", model__latent_size=8)
  with pytest.raises(errors.UserError, match=r"different model: model.latent_size was 4, now 8"):
    train_loop.train_and_evaluate(bigger, workdir, digits, writers.MemoryWriter())
  # The refused run changed nothing: the original config still resumes.
  state = train_loop.train_and_evaluate(tiny_config("vae"), workdir, digits, writers.MemoryWriter())
  assert int(state.step) == 4


def test_checkpoint_with_another_optimiser_state_is_refused(digits, tmp_path):
  workdir = str(tmp_path / "run")
  train_loop.train_and_evaluate(tiny_config("vae", train__total_steps=2), workdir, digits, writers.MemoryWriter())
  clipped = tiny_config("vae", optim__grad_clip_norm=1.0)  # Adds a clipping state to the optimiser's.
  with pytest.raises(errors.UserError, match="does not fit this run's train state"):
    train_loop.train_and_evaluate(clipped, workdir, digits, writers.MemoryWriter())


def test_vae_run_reports_the_bound_and_writes_grids_and_is_never_silent_for_long(digits, tmp_path, monkeypatch):
  console_lines = []
  monkeypatch.setattr(logging, "info", lambda message, *args: console_lines.append(str(message) % args))
  monkeypatch.setattr(console, "REPORT_EVERY_S", 0.0)  # A console line after every step, as after every 30 s.
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(tiny_config("vae"), str(tmp_path), digits, writer)
  compiling = console_lines.index("Compiling the train step (or loading it from the compilation cache).")
  assert re.fullmatch(r"Compiled the train step in \d+\.\d s\.", console_lines[compiling + 1])
  steps = [line for line in console_lines if line.startswith("step ")]
  assert re.fullmatch(r"step 1/4 \| loss [\d.]+", steps[0])  # At once, with no rate that counts compilation.
  assert [line.split()[1] for line in steps] == ["1/4", "2/4", "3/4", "4/4"]
  assert all(re.search(r"\| [\d.]+ steps/s \| ETA \d+:\d\d:\d\d$", line) for line in steps[1:])
  evaluating = r"Evaluating on the eval split: 1/2 batches, ETA \d+:\d\d:\d\d\."
  assert any(re.fullmatch(evaluating, line) for line in console_lines)
  assert writer.config["family"] == "vae"
  train_lines = [m for m in writer.metrics if m["split"] == "train"]
  eval_lines = [m for m in writer.metrics if m["split"] == "eval"]
  assert [m["step"] for m in train_lines] == [2, 4] and [m["step"] for m in eval_lines] == [4]
  line = eval_lines[0]
  assert {"loss", "neg_elbo_nats", "neg_elbo_bits_per_dim", "kl", "reconstruction_nll"} <= set(line)
  np.testing.assert_allclose(line["neg_elbo_nats"], line["reconstruction_nll"] + line["kl"], rtol=1e-5)
  np.testing.assert_allclose(line["neg_elbo_bits_per_dim"], line["neg_elbo_nats"] / (784 * np.log(2)), rtol=1e-5)
  names = {name for _, name, _ in writer.images}
  assert names == {"samples", "reconstructions"}
  assert all(image.dtype == np.uint8 and image.ndim == 3 for _, _, image in writer.images)


def test_eval_averages_over_exactly_the_real_examples(digits, tmp_path):
  # 20 eval examples: batches of 16 leave 12 padded slots in the second.
  results = []
  for eval_batch_size in (16, 8):
    writer = writers.MemoryWriter()
    train_loop.train_and_evaluate(
        tiny_config("ae", eval__batch_size=eval_batch_size),
        str(tmp_path / str(eval_batch_size)),
        digits,
        writer,
    )
    results.append([m for m in writer.metrics if m["split"] == "eval"][0])
  np.testing.assert_allclose(results[0]["mse"], results[1]["mse"], rtol=1e-5)


def test_autoencoder_writes_reconstructions_but_no_samples(digits, tmp_path):
  writer = writers.MemoryWriter()
  train_loop.train_and_evaluate(tiny_config("ae", model__input_noise_std=0.3), str(tmp_path), digits, writer)
  assert {name for _, name, _ in writer.images} == {"reconstructions"}
  assert "mse" in [m for m in writer.metrics if m["split"] == "eval"][0]


def test_divergence_stops_with_a_message(digits, tmp_path):
  exploding = tiny_config("ae", optim__lr=1e30)
  with pytest.raises(errors.UserError, match="Training diverged by step 2"):
    train_loop.train_and_evaluate(exploding, str(tmp_path), digits, writers.MemoryWriter())


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"model__likelihood": "gaussian"}, "likelihood='gaussian' is not one of bernoulli, discretized_logistic"),
        ({"model__likelihood": "discretized_logistic"}, r"needs config.data.pixel_range=\(-1.0, 1.0\)"),
        ({"model__architecture": "resnet"}, "architecture='resnet' is not one of mlp, conv"),
        ({"data__binarize": "sometimes"}, "binarize='sometimes' is not one of none, dynamic, threshold"),
        ({"optim__name": "sgd"}, "optim.name='sgd' is not one of adam, adamw"),
    ],
)
def test_impossible_settings_are_refused_before_training(overrides, message, digits, tmp_path):
  with pytest.raises(errors.UserError, match=message):
    train_loop.train_and_evaluate(tiny_config("vae", **overrides), str(tmp_path), digits, writers.MemoryWriter())


def test_a_batch_that_does_not_split_over_the_mesh_is_refused_before_training(digits, devices, tmp_path):
  config = tiny_config("vae", train__batch_size=12)
  with pytest.raises(errors.UserError, match="batch_size=12 must be divisible by the 8 batch shards"):
    train_loop.train_and_evaluate(config, str(tmp_path), digits, writers.MemoryWriter(), devices=devices)


def test_vae_trains_on_an_unlabelled_dataset(digits, tmp_path):
  state = train_loop.train_and_evaluate(tiny_config("vae"), str(tmp_path), unlabelled(digits), writers.MemoryWriter())
  assert int(state.step) == 4


FSDP = ((".*", "fsdp"),)


def test_fsdp_on_8_devices_shards_the_state_and_steps_like_1_device(digits, devices):
  config = tiny_config("vae", sharding__rules=FSDP, sharding__min_fsdp_size=64)
  raw = pipeline.StreamReader(digits.train, digits.spec, pipeline.Stream(config.seed, 1, config.train.batch_size))(0)
  results = []
  for mesh_devices in (devices, devices[:1]):
    built = experiment.build(config, digits.spec, mesh_devices)
    state = built.init()
    if len(mesh_devices) == 8:
      # Every array of 64 elements or more with a dimension that 8 divides holds 1/8 of itself on each device.
      for leaf in jax.tree.leaves(state):
        if leaf.size >= 64 and any(dim % 8 == 0 for dim in leaf.shape):
          assert leaf.addressable_shards[0].data.size == leaf.size // 8, leaf.shape
      replicated = experiment.build(tiny_config("vae"), digits.spec, mesh_devices)
      assert built.state_bytes_per_device < 0.2 * replicated.state_bytes_per_device
    state, metrics = built.train_step(state, built.host_feed(raw), built.load_frozen(None))
    results.append((_params(state), jax.device_get(metrics)))
  _assert_trees_close(results[0][0], results[1][0])
  _assert_trees_close(results[0][1], results[1][1])


def test_a_checkpoint_moves_between_fsdp_on_8_devices_and_replication_on_1(
    digits, devices, tmp_path, six_steps_at_a_constant_rate
):
  workdir = str(tmp_path / "moving")
  for total_steps, mesh_devices, rules in [(2, devices, FSDP), (4, devices[:1], None), (6, devices, FSDP)]:
    overrides = dict(train__total_steps=total_steps, optim__schedule="constant", sharding__min_fsdp_size=64)
    config = tiny_config("vae", **overrides, **({"sharding__rules": rules} if rules else {}))
    state = train_loop.train_and_evaluate(config, workdir, digits, writers.MemoryWriter(), devices=mesh_devices)
  kernel = state.params["encoder"]["Dense_0"]["kernel"]
  assert kernel.addressable_shards[0].data.size == kernel.size // 8  # Sharded again after the 1-device leg.
  _assert_trees_close(_params(state), six_steps_at_a_constant_rate)


@pytest.mark.parametrize(
    "rules, message",
    [
        (((".*", "zero3"),), "unknown rule 'zero3'"),
        ((("params/.*", "fsdp"), ("nothing/.*", "fsdp"), (".*", "replicate")), r"\['nothing/\.\*'\] match no state"),
        ((("params/.*", "fsdp"),), "No rule of config.sharding.rules matches the state array 'step'"),
        ((("(", "fsdp"), (".*", "replicate")), "is not a regular expression"),
    ],
)
def test_impossible_sharding_rules_are_refused(rules, message, digits):
  with pytest.raises(errors.UserError, match=message):
    experiment.build(tiny_config("vae", sharding__rules=rules), digits.spec)


def test_the_host_dispatches_a_step_only_once_the_one_before_the_last_has_run():
  class Step:  # A step's outputs, with the wait that jax.block_until_ready calls on them.
    def __init__(self, number):
      self.number = number

    def block_until_ready(self):
      waited.append(self.number)
      return self

  waited = []
  steps_in_flight = in_flight.StepsInFlight()
  for number in range(4):
    steps_in_flight.dispatched(Step(number))
    assert waited == list(range(number))  # Step `number` may run while the next is dispatched; no earlier one.
