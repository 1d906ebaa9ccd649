"""The "likelihood" evaluation: the bounds on -log p(x) that a model's `Likelihood` offers, each in nats per image and
bits per dimension, averaged over the eval split as the model sees it (with its fixed evaluation binarisation; its
first `config.eval.likelihood.num_images` with that option above 0, said in the protocol): a
VAE's negative ELBO and its `config.eval.likelihood.iwae_samples`-sample importance-weighted bound (see
`genjax.trainers.vae.make_likelihood_evaluator`), a diffusion model's variational bound (see
`genjax.trainers.diffusion`). The protocol records what the model says its bounds depend on."""

import jax

from genjax import errors
from genjax.evaluators import common


class LikelihoodBounds:

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    return common.requirements(
        (context.experiment.trainer.likelihood is not None, f"needs a likelihood; a {context.config.family} has none")
    )

  def __init__(self, context: common.Context):
    likelihood, options = context.experiment.trainer.likelihood, context.options_of("likelihood")
    num_samples = options.iwae_samples
    if num_samples < 1:
      raise errors.UserError(f"--iwae_samples={num_samples} must be at least 1 (config.eval.likelihood.iwae_samples).")
    if options.num_images < 0:
      raise errors.UserError(f"config.eval.likelihood.num_images={options.num_images} must be >= 0 (0: all).")
    self.protocol = likelihood.protocol(num_samples)
    self.protocol["likelihood_images"] = (
        f"the first {options.num_images} of the eval split" if options.num_images else "the whole eval split"
    )
    self._names = tuple(f"{name}_{unit}" for name in likelihood.names for unit in ("nats", "bits_per_dim"))

    def per_image(state, batch, key):
      return common.stack_columns(
          likelihood.bounds(state, batch[context.experiment.spec.data_key], key, num_samples), self._names
      )

    self._evaluate = common.per_example_over_eval_split(
        context, per_image, jax.random.key(context.seed), options.num_images
    )

  def run(self, state, step: int):
    del step
    return common.mean_of_columns(self._evaluate(state), self._names), {}
