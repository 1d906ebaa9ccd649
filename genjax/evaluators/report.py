"""What experiments/evaluate.py writes: metrics.json (the metrics and the protocol that produced them) and a short
human-readable summary.md."""

import json
import math

from etils import epath

_METRIC_DESCRIPTIONS = {
    "fid": "FID (lower is better)",
    "kid": "KID, unbiased MMD^2 (lower is better)",
    "kid_std": "KID standard deviation over subsets",
    "precision": "precision: samples inside the real manifold",
    "recall": "recall: real images inside the sample manifold",
    "class_accuracy": "class accuracy: samples the classifier reads as the class drawn for",
    "neg_elbo_nats": "negative ELBO, nats per image",
    "neg_elbo_bits_per_dim": "negative ELBO, bits per dimension",
    "iwae_nats": "importance-weighted bound on -log p(x), nats per image",
    "iwae_bits_per_dim": "importance-weighted bound on -log p(x), bits per dimension",
    "vlb_nats": "diffusion variational bound on -log p(x), nats per image",
    "vlb_bits_per_dim": "diffusion variational bound on -log p(x), bits per dimension",
    "mse": "reconstruction mean squared error per pixel",
    "psnr": "reconstruction PSNR, dB (over the images not reconstructed exactly)",
    "exact_reconstructions": "images reconstructed exactly (infinite PSNR)",
    "ssim": "reconstruction SSIM",
}


_RESTORATION_SCORES = {
    "psnr": "PSNR, dB",
    "ssim": "SSIM",
    "hole_psnr": "PSNR in the hole, dB",
    "swd": "SWD x1e3 (lower is better)",
    "lpips": "LPIPS (lower is better)",
}


def summary_markdown(
    title: str, family: str, metrics: dict[str, float], protocol: dict, methods_table: bool = False
) -> str:
  """The summary: with `methods_table` (an evaluation that scores the run beside other methods), one row per method
  ("psnr", "<method>_psnr", ...); otherwise one row per metric."""
  lines = [f"# {title}", "", f"{family} model.", "", table(metrics, methods_table), "", "## Protocol", ""]
  lines += [f"- {name}: {value}" for name, value in protocol.items()]
  return "\n".join(lines) + "\n"


def table(metrics: dict[str, float], methods_table: bool = False) -> str:
  """The summary's table of `metrics` (see `summary_markdown`), as Markdown: what the tools print too."""
  if methods_table:
    return "\n".join(_methods_table(metrics))
  lines = ["| metric | value |", "|---|---|"]
  lines += [f"| {_METRIC_DESCRIPTIONS.get(name, name)} | {value:.6g} |" for name, value in metrics.items()]
  return "\n".join(lines)


def _methods_table(metrics: dict[str, float]) -> list[str]:
  """The restorer (metrics "psnr", ...) and each classical baseline ("<method>_psnr", ...) as rows, same columns."""
  scores = [score for score in _RESTORATION_SCORES if score in metrics]
  methods = {"this run": {score: metrics[score] for score in scores}}
  for name, value in metrics.items():
    # The longest score that ends the name ("x_hole_psnr" is method x's hole_psnr, not method x_hole's psnr).
    score = next((score for score in sorted(scores, key=len, reverse=True) if name.endswith(f"_{score}")), None)
    if score is not None and name not in scores:
      methods.setdefault(name[: -len(score) - 1], {})[score] = value
  lines = ["| method | " + " | ".join(_RESTORATION_SCORES[score] for score in scores) + " |"]
  lines.append("|---" * (len(scores) + 1) + "|")
  for method, values in methods.items():
    lines.append(f"| {method} | " + " | ".join(f"{values.get(score, float('nan')):.4g}" for score in scores) + " |")
  return lines


def write(
    directory: str, title: str, family: str, metrics: dict[str, float], protocol: dict, methods_table: bool = False
) -> None:
  """Writes `directory`/metrics.json and summary.md (see `summary_markdown`)."""
  directory = epath.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  finite = {name: value if math.isfinite(value) else None for name, value in metrics.items()}
  (directory / "metrics.json").write_text(
      json.dumps({"metrics": finite, "protocol": protocol}, indent=2, allow_nan=False)
  )
  (directory / "summary.md").write_text(summary_markdown(title, family, metrics, protocol, methods_table))
