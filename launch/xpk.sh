#!/usr/bin/env bash
# Trains genjax as an xpk workload on a GKE cluster of TPU slices: xpk builds an image from this checkout on a
# Python base image, and runs the same train command on every host of every slice. GENJAX_DISTRIBUTED=1 makes each
# host join the run; JAX finds the others through the TPU metadata.
#
# Usage:
#   launch/xpk.sh [--dry-run] CLUSTER WORKLOAD TPU_TYPE NUM_SLICES -- TRAIN_FLAGS...
# Example:
#   launch/xpk.sh my-cluster wgan-gp-c10 v5litepod-16 1 -- \
#     --config=configs/wgan_gp.py:cifar10 --workdir=gs://BUCKET/wgan_gp_cifar10
#
# --dry-run prints the command instead of running it. Environment: PROJECT, ZONE (default: xpk's), BASE_IMAGE
# (default python:3.11). The workdir must be on GCS; the image installs gcsfs and google-cloud-storage for it.
set -euo pipefail
# The usage is the header comment above, without its comment marks and #SBATCH lines.
usage() { sed -n '2,/^[^#]/{/^#SBATCH/d;/^#/s/^# \{0,1\}//p}' "$0"; }
dry_run=false
if [[ "${1:-}" == --dry-run ]]; then dry_run=true; shift; fi
if [[ $# -lt 5 || "$5" != "--" ]]; then usage; exit 2; fi
cluster=$1 workload=$2 tpu_type=$3 num_slices=$4
shift 5
run() { if $dry_run; then echo "${*@Q}"; else "$@"; fi; }
repo=$(cd "$(dirname "$0")/.." && pwd)
command="pip install -q -r requirements.txt 'jax[tpu]==0.10.2' gcsfs google-cloud-storage \
&& GENJAX_DISTRIBUTED=1 python experiments/train.py ${*@Q}"
run xpk workload create --cluster="$cluster" --workload="$workload" --tpu-type="$tpu_type" \
  --num-slices="$num_slices" --base-docker-image="${BASE_IMAGE:-python:3.11}" --script-dir="$repo" \
  ${PROJECT:+--project="$PROJECT"} ${ZONE:+--zone="$ZONE"} --command="$command"
