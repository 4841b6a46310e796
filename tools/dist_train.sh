#!/usr/bin/env bash
# Distributed training with mmengine's pytorch launcher (torchrun):
#   bash tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# On CPU-only machines the processes use gloo (varedd_mm.compat).
# Interpreter: $PYTHON, default the `python` on PATH: activate the
# environment first (source .venv/bin/activate) or set PYTHON=.venv/bin/python.
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}

PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
