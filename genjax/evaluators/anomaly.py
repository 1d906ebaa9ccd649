"""The "anomaly" evaluation: per-image anomaly scores of the eval split from what a model offers, and how well each
separates the classes that training left out (`config.data.exclude_classes`: the anomalies) from the others, in
AUROC and AUPRC (see `genjax.metrics.anomaly`). Leaving one class out is the one-class protocol (the left-out
class is the anomaly of the test split); leaving all but one out is the other (Deep SVDD's: one normal class).

Scores, higher for more anomalous images:
  reconstruction_error  mean squared error per pixel of the model's reconstruction (models that encode: AE, VAE);
  neg_elbo, iwae, ...   each bound on -log p(x) that the model's likelihood offers, nats per image (models with a
                        likelihood: a VAE's negative ELBO and `config.eval.anomaly.iwae_samples`-sample
                        importance-weighted bound, a diffusion model's variational bound "vlb");
  critic                minus the critic's logit (unconditional GANs).
Images: for each score, a histogram of normal against anomalous images, and the eval images that score highest.
"""

import jax
import jax.numpy as jnp
import numpy as np

from genjax import writers
from genjax.data import sources
from genjax.evaluators import common
from genjax.metrics import anomaly
from genjax.metrics import image_quality


class AnomalyDetection:

  @staticmethod
  def applies(context: common.Context) -> common.Applies:
    trainer = context.experiment.trainer
    return common.requirements(
        (context.spec.has_labels, "needs labelled eval data, whose labels say which images are anomalies"),
        (
            bool(context.config.data.exclude_classes),
            "needs config.data.exclude_classes: the classes left out of training, which are the anomalies to find",
        ),
        (
            trainer.encoder is not None or trainer.likelihood is not None or trainer.critic is not None,
            "needs a model that reconstructs (AE, VAE), has a likelihood (VAE) or has an unconditional critic (a GAN "
            f"without classes); this {context.config.family} model has none of them",
        ),
    )

  def __init__(self, context: common.Context):
    config, spec, trainer = context.config, context.spec, context.experiment.trainer
    options = context.options_of("anomaly")
    self.anomalous_classes = tuple(int(label) for label in config.data.exclude_classes)
    # (score names, (state, examples, key) -> a `[N]` array per name): the likelihood's bounds come together.
    scorers = []
    if trainer.encoder is not None:
      scorers.append(
          (
              ("reconstruction_error",),
              lambda state, examples, key: [
                  image_quality.mean_squared_error(examples, trainer.encoder.reconstruct(state, examples))
              ],
          )
      )
    if trainer.likelihood is not None:
      num_samples = options.iwae_samples

      def likelihood_scores(state, examples, key):
        bounds = trainer.likelihood.bounds(state, examples, key, num_samples)
        return [bounds[f"{name}_nats"] for name in trainer.likelihood.names]

      scorers.append((trainer.likelihood.names, likelihood_scores))
    if trainer.critic is not None:
      scorers.append((("critic",), lambda state, examples, key: [-trainer.critic.score(state, examples)]))
    self.protocol = {"anomalous_classes": self.anomalous_classes}
    if trainer.likelihood is not None:
      self.protocol.update(trainer.likelihood.protocol(options.iwae_samples))
    self._eval_split = context.data.eval
    self._num_images = options.num_images
    self._show_images = spec.is_image
    self.score_names = tuple(name for names, _ in scorers for name in names)

    def per_image(state, batch, key):
      examples = batch[spec.data_key]
      columns = [column for _, scorer in scorers for column in scorer(state, examples, key)]
      return jnp.stack([*columns, batch[sources.LABEL].astype(jnp.float32)], axis=-1)

    self._evaluate = common.per_example_over_eval_split(context, per_image, jax.random.key(context.seed))

  def scores(self, state) -> dict[str, np.ndarray]:
    """Every eval image's scores `[N]` by name, its "label" and whether it "is_anomaly", in the split's order."""
    values = self._evaluate(state)
    labels = values[:, -1].astype(np.int64)
    scores = {name: values[:, column] for column, name in enumerate(self.score_names)}
    return {**scores, "label": labels, "is_anomaly": np.isin(labels, self.anomalous_classes)}

  def run(self, state, step: int):
    del step
    return self.summarize(self.scores(state))

  def summarize(self, scored: dict[str, np.ndarray]):
    """(AUROC and AUPRC of each score, its histogram and most anomalous images) of `scores`' output."""
    metrics, images = {}, {}
    for name in self.score_names:
      separation = anomaly.separation(scored[name], scored["is_anomaly"])
      metrics.update({f"{metric}_{name}": value for metric, value in separation.items()})
      if self._show_images:
        images[f"anomaly_histogram_{name}"] = writers.histogram_plot(
            {"normal": scored[name][~scored["is_anomaly"]], "anomalous": scored[name][scored["is_anomaly"]]},
            f"{name}: AUROC {separation['auroc']:.3f}; anomalies: class {', '.join(map(str, self.anomalous_classes))}",
        )
        images[f"anomaly_top_{name}"] = self._most_anomalous(scored[name])
    return metrics, images

  def _most_anomalous(self, scores: np.ndarray) -> np.ndarray:
    """A grid of the eval images with the highest scores, highest first, as stored."""
    highest = np.argsort(-scores, kind="stable")[: self._num_images]
    images = np.stack([np.asarray(self._eval_split[int(index)][sources.IMAGE]) for index in highest])
    return writers.image_grid(images, (0.0, 255.0))
