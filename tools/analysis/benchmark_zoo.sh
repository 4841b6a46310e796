#!/usr/bin/env bash
# Speed of every VA-RED² backbone against its base, the README's speed
# table: tools/analysis/benchmark.py on each model (every gate forced to a
# choice), once as upstream runs the base (BN folded in the VA-RED² model
# and the same-execution base) and once channels-last.
#
#   bash tools/analysis/benchmark_zoo.sh [BATCH_SIZE ...]   # default: 1 8
#
# Environment: PYTHON (default python), OUT (default
# work_dirs/benchmark_zoo), MODELS (default: all, e.g. "r2plus1d i3d"),
# REPEATS (default 5), PROFILE (1: add --profile, the time breakdown of
# one forward per model and its speed-up ceiling, to the JSON), RETAIN (1:
# add --retain-freed-memory, glibc keeps freed memory for reuse), COMPILED
# (1: add --compiled-base, the upstream base compiled by torch.compile
# timed as well), POLICY
# (benchmark.py options that replace the forced choice, e.g. "--gate-cost
# 0.6" or "--mixed 0 0 0 1 1 0 1 1") with TAG (a file-name part for it),
# VARED2_OPTIONS (--vared2-cfg-options: overrides of the dynamic model's
# config only, e.g. "model.backbone.dynamic_cfg.depthwise=True"; values
# without spaces), also with a TAG.
# Writes OUT/<model>[_TAG]_b<batch>[_cl].json and prints one table row per
# run.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
OUT=${OUT:-work_dirs/benchmark_zoo}
REPEATS=${REPEATS:-5}
EXTRA_ARGS=()
[ "${PROFILE:-0}" = 1 ] && EXTRA_ARGS=(--profile)
[ "${RETAIN:-0}" = 1 ] && EXTRA_ARGS+=(--retain-freed-memory)
[ "${COMPILED:-0}" = 1 ] && EXTRA_ARGS+=(--compiled-base)
if [ -n "${VARED2_OPTIONS:-}" ]; then
  read -r -a vared2_options <<<"$VARED2_OPTIONS"
  EXTRA_ARGS+=(--vared2-cfg-options "${vared2_options[@]}")
fi
BATCHES=("$@")
[ ${#BATCHES[@]} -eq 0 ] && BATCHES=(1 8)
MODELS=${MODELS:-"r2plus1d i3d x3d tpn detector pspnet"}
R=configs/recognition/vared2
D=configs/detection/vared2
S=configs/segmentation/vared2
mkdir -p "$OUT"

args_of() {
  case $1 in
  r2plus1d)
    echo "$R/vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_kinetics400-rgb.py" \
      "--base-config $R/r2plus1d_r18_8xb16-16x2x1-100e_kinetics400-rgb.py" \
      "--shape 16 112 112" ;;
  i3d)
    echo "$R/vared2-k2_i3d_r50_8xb8-16x5x1-30e_kinetics400-rgb.py" \
      "--base-config $R/i3d_imagenet-pretrained-r50_8xb8-16x5x1-100e_kinetics400-rgb.py" \
      "--shape 16 224 224" ;;
  x3d)
    echo "$R/vared2-k2_x3d_m_8xb8-16x5x1-30e_kinetics400-rgb.py" \
      "--base-config $R/x3d_m_8xb8-16x5x1-120e_kinetics400-rgb.py" \
      "--shape 16 224 224" ;;
  tpn)
    echo "$R/vared2-k2_tpn-slowonly_r50_8xb8-8x8x1-30e_minik200-rgb.py" \
      "--base-config $R/tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e_minik200-rgb.py" \
      "--shape 8 224 224" ;;
  detector)
    echo "$D/vared2-k2_slowonly_r50_8xb8-8x2x1-10e_jhmdb-split1-rgb.py" \
      "--base-config $D/slowonly_kinetics400-pretrained-r50_8xb8-8x2x1-20e_jhmdb-split1-rgb.py" \
      "--shape 8 240 320" ;;
  pspnet)
    echo "$S/vared2-k2_pspnet_r18-d8_4xb2-100k_ade20k-512x512.py" \
      "--base-config $S/pspnet_r18-d8_4xb2-100k_ade20k-512x512.py" \
      "--shape 512 512" ;;
  *)
    echo "unknown model '$1'; allowed: r2plus1d i3d x3d tpn detector pspnet" >&2
    exit 1 ;;
  esac
}

TAG=${TAG:-}
if { [ -n "${POLICY:-}" ] || [ -n "${VARED2_OPTIONS:-}" ]; } && [ -z "$TAG" ]; then
  echo "POLICY and VARED2_OPTIONS need a TAG (a file-name part, e.g. TAG=gatecost06)" >&2
  exit 1
fi
if [[ ! "$TAG" =~ ^[A-Za-z0-9_.-]*$ ]]; then
  echo "TAG must be letters, digits, '_', '.' or '-', got '$TAG'" >&2
  exit 1
fi

for model in $MODELS; do
  read -r -a args <<<"$(args_of "$model")"
  if [ -n "${POLICY:-}" ]; then
    read -r -a policy <<<"$POLICY"
  elif [ "$model" = pspnet ]; then
    policy=(--choice 0 1)  # no time axis
  else
    policy=(--choice 1 1)
  fi
  for batch in "${BATCHES[@]}"; do
    for layout in "" "--channels-last"; do
      out="$OUT/${model}${TAG:+_$TAG}_b${batch}${layout:+_cl}.json"
      $PYTHON tools/analysis/benchmark.py "${args[@]}" ${policy[@]+"${policy[@]}"} --batch-sizes "$batch" \
        --warmup 2 --repeats "$REPEATS" $layout ${EXTRA_ARGS[@]+"${EXTRA_ARGS[@]}"} --out "$out" 2>"${out%.json}.log" |
        grep '^| [0-9]' | sed "s/^/| $model${layout:+ (channels-last)} /"
    done
  done
done
