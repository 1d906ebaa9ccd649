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
    "neg_elbo_nats": "negative ELBO, nats per image",
    "neg_elbo_bits_per_dim": "negative ELBO, bits per dimension",
    "iwae_nats": "importance-weighted bound on -log p(x), nats per image",
    "iwae_bits_per_dim": "importance-weighted bound on -log p(x), bits per dimension",
    "mse": "reconstruction mean squared error per pixel",
    "psnr": "reconstruction PSNR, dB (over the images not reconstructed exactly)",
    "exact_reconstructions": "images reconstructed exactly (infinite PSNR)",
    "ssim": "reconstruction SSIM",
}


def summary_markdown(title: str, family: str, metrics: dict[str, float], protocol: dict) -> str:
  lines = [f"# {title}", "", f"{family} model.", ""]
  lines += ["| metric | value |", "|---|---|"]
  lines += [f"| {_METRIC_DESCRIPTIONS.get(name, name)} | {value:.6g} |" for name, value in metrics.items()]
  lines += ["", "## Protocol", ""]
  lines += [f"- {name}: {value}" for name, value in protocol.items()]
  return "\n".join(lines) + "\n"


def write(directory: str, title: str, family: str, metrics: dict[str, float], protocol: dict) -> None:
  """Writes `directory`/metrics.json and summary.md."""
  directory = epath.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  finite = {name: value if math.isfinite(value) else None for name, value in metrics.items()}
  (directory / "metrics.json").write_text(
      json.dumps({"metrics": finite, "protocol": protocol}, indent=2, allow_nan=False)
  )
  (directory / "summary.md").write_text(summary_markdown(title, family, metrics, protocol))
