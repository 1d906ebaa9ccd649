#!/usr/bin/env bash
# Trains genjax on a Cloud TPU VM slice: creates the slice unless it exists, copies this checkout to every worker,
# installs genjax there, and starts the same train command on all workers at once. GENJAX_DISTRIBUTED=1 makes each
# worker join the run; JAX finds the others through the TPU metadata.
#
# Usage:
#   launch/tpu_vm.sh [--dry-run] [--sweep] NAME ZONE ACCELERATOR -- FLAGS...
# Examples:
#   launch/tpu_vm.sh genjax-v5e europe-west4-b v5litepod-16 -- \
#     --config=configs/wgan_gp.py:cifar10 --workdir=gs://BUCKET/wgan_gp_cifar10
#   launch/tpu_vm.sh --sweep genjax-sweep-0 europe-west4-b v5litepod-8 -- \
#     --config=configs/toy2d.py --sweep=losses --sweep_dir=/mnt/shared/toy --storage=postgresql://USER@HOST/optuna
#
# --sweep runs experiments/sweep.py run FLAGS (one sweep worker per single-host slice) instead of training.
# --dry-run prints the commands instead of running them.
# Environment: PROJECT (default: gcloud's), TPU_SOFTWARE (default tpu-ubuntu2204-base).
# The workdir must be on GCS (gs://...), where every worker writes its part of each checkpoint; the install adds
# gcsfs (orbax's gs:// paths) and google-cloud-storage (TensorBoard's).
set -euo pipefail
# The usage is the header comment above, without its comment marks and #SBATCH lines.
usage() { sed -n '2,/^[^#]/{/^#SBATCH/d;/^#/s/^# \{0,1\}//p}' "$0"; }
dry_run=false
script=experiments/train.py
distributed=GENJAX_DISTRIBUTED=1
while [[ "${1:-}" == --* && "${1:-}" != -- ]]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --sweep) script="experiments/sweep.py run" distributed=GENJAX_DISTRIBUTED=0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [[ $# -lt 4 || "$4" != "--" ]]; then usage; exit 2; fi
name=$1 zone=$2 accelerator=$3
shift 4
run() { if $dry_run; then echo "${*@Q}"; else "$@"; fi; }
flags=${*@Q}  # The flags, quoted for the remote shell.
tpu=(gcloud compute tpus tpu-vm ${PROJECT:+--project="$PROJECT"})
repo=$(cd "$(dirname "$0")/.." && pwd)
archive="${TMPDIR:-/tmp}/genjax-$name.tgz"

if $dry_run || ! "${tpu[@]}" describe "$name" --zone="$zone" >/dev/null 2>&1; then
  run "${tpu[@]}" create "$name" --zone="$zone" --accelerator-type="$accelerator" \
    --version="${TPU_SOFTWARE:-tpu-ubuntu2204-base}"
fi
# The files git tracks or would track, as they are in this checkout (uncommitted changes included).
run bash -c "cd $(printf '%q' "$repo") && git ls-files -co --exclude-standard | tar -czf $(printf '%q' "$archive") -T -"
run "${tpu[@]}" scp "$archive" "$name":genjax.tgz --zone="$zone" --worker=all
run "${tpu[@]}" ssh "$name" --zone="$zone" --worker=all --command="rm -rf genjax && mkdir genjax \
&& tar -xzf genjax.tgz -C genjax && cd genjax && python3 -m venv .venv && .venv/bin/pip install -q -r requirements.txt \
'jax[tpu]==0.10.2' gcsfs google-cloud-storage"
run "${tpu[@]}" ssh "$name" --zone="$zone" --worker=all \
  --command="cd genjax && $distributed .venv/bin/python $script $flags"
