#!/bin/sh
# Trains the four tutorial models on MNIST with the tutorials' settings (the must-reach table of
# docs/training.md) one after the other, on $BACKEND (default llvm; numpy for the reference
# results). Logs, checkpoints and (with matplotlib) curves go to $OUT, default
# runs/tutorials/$BACKEND.
# Usage: scripts/train_all.sh [MODEL ...], MODEL one of mlp dropout relu logistic (default: all).
set -eu
cd "$(dirname "$0")/.."
BACKEND=${BACKEND:-llvm}
OUT=${OUT:-runs/tutorials/$BACKEND}
mkdir -p "$OUT"
# One BLAS thread: as fast for these small matmuls, and steady on a busy machine.
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
plot=no
python3 -c "import matplotlib" 2>/dev/null && plot=yes

train() {  # NAME MODEL.tfl ARGS...
    name=$1 model=$2
    shift 2
    [ $plot = yes ] && set -- "$@" --plot "$OUT/$name.png"
    echo "== $name: tflc train $model --data mnist --backend $BACKEND $*"
    start=$(date +%s)
    python3 -m tflc train "$model" --data mnist --backend "$BACKEND" --no-progress \
        --log "$OUT/$name.jsonl" \
        --save "$OUT/$name.npz" "$@"
    echo "== $name: $(( $(date +%s) - start )) s wall"
}

for which in ${@:-mlp dropout relu logistic}; do
    case $which in
        mlp) train mlp examples/mnist_mlp.tfl --epochs 10 --batch 100 ;;
        dropout) train dropout examples/mnist_dropout.tfl --steps 20000 --batch 100 \
                     --feed keep_prob=0.2 --eval-feed keep_prob=1.0 ;;
        relu) train relu examples/mnist_relu.tfl --step train_step --steps 5000 --batch 100 ;;
        logistic) train logistic examples/logistic_regression.tfl --steps 1000 --batch 55000 ;;
        *) echo "unknown model '$which' (mlp dropout relu logistic)" >&2; exit 2 ;;
    esac
done
