"""How well per-example anomaly scores separate anomalies from normal examples: the area under the ROC curve and
under the precision-recall curve (average precision), as scikit-learn computes them. Higher scores mean more
anomalous; anomalies are the positive class."""

import numpy as np

from genjax import errors


def separation(scores: np.ndarray, is_anomaly: np.ndarray) -> dict[str, float]:
  """AUROC and AUPRC of `scores [N]` against the 0/1 (or boolean) `is_anomaly [N]`.

  AUROC is the probability that a random anomaly scores above a random normal example (ties count half): 1.0 for
  perfect separation, 0.5 for scores that say nothing. AUPRC's chance level is the share of anomalies.
  """
  scores, is_anomaly = np.asarray(scores, np.float64), np.asarray(is_anomaly, bool)
  if is_anomaly.all() or not is_anomaly.any():
    raise errors.UserError(
        f"Scoring anomalies needs both anomalies and normal examples; these {len(is_anomaly)} examples have "
        f"{int(is_anomaly.sum())} anomalies."
    )
  if not np.isfinite(scores).all():
    raise errors.UserError(f"{int((~np.isfinite(scores)).sum())} anomaly scores are not finite.")
  # Imported here: scikit-learn takes a second to import, which every process that imports the evaluators (each
  # training run, each sweep trial) would otherwise pay.
  from sklearn import metrics as sklearn_metrics

  return {
      "auroc": float(sklearn_metrics.roc_auc_score(is_anomaly, scores)),
      "auprc": float(sklearn_metrics.average_precision_score(is_anomaly, scores)),
  }
