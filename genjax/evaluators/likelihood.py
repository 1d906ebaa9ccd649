"""The "likelihood" evaluation: a model's negative ELBO and its `config.eval.likelihood.iwae_samples`-sample importance-weighted
bound on -log p(x), in nats per image and bits per dimension, averaged over the eval split as the model sees it
(with its fixed evaluation binarisation). See `genjax.trainers.vae.make_likelihood_evaluator`."""

import jax

from genjax import errors
from genjax.evaluators import common

NAMES = ("neg_elbo_nats", "neg_elbo_bits_per_dim", "iwae_nats", "iwae_bits_per_dim")


class LikelihoodBounds:

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    return common.requirements(
        (context.experiment.trainer.likelihood is not None, f"needs a likelihood; a {context.config.family} has none")
    )

  def __init__(self, context: common.Context):
    likelihood = context.experiment.trainer.likelihood
    num_samples = context.options_of("likelihood").iwae_samples
    if num_samples < 1:
      raise errors.UserError(f"--iwae_samples={num_samples} must be at least 1 (config.eval.likelihood.iwae_samples).")
    self.protocol = {"iwae_samples": num_samples}

    def per_image(state, batch, key):
      return common.stack_columns(
          likelihood.bounds(state, batch[context.experiment.spec.data_key], key, num_samples), NAMES
      )

    self._evaluate = common.per_example_over_eval_split(context, per_image, jax.random.key(context.seed))

  def run(self, state, step: int):
    del step
    return common.mean_of_columns(self._evaluate(state), NAMES), {}
