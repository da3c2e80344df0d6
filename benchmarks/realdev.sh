#!/bin/sh
# Reproduce the real-face tables of docs/results.md ("Real faces (dev set)") on the development set that
# ../shared/realdev/build.py builds (4,755 CelebAMask-HQ faces; never commit anything made from them).
#
#   benchmarks/realdev.sh DATA_ROOT WORK_DIR [SEED]
#
# DATA_ROOT is the built CelebAMask-HQ folder (CelebA-HQ-img/, CelebAMask-HQ-mask-anno/, the mapping
# file); WORK_DIR receives masks, pairs, run folders and metrics (outside the checkout). Steps that are
# already done are skipped (g_mask.py and process.py skip finished outputs, trainers resume), so the
# script can be rerun after an interruption. Wall times go to WORK_DIR/times.txt. Set STEPS to run only
# some of: masks unet pix2pix fullsize mediapipe (default: all).
set -eu
data=${1:?usage: benchmarks/realdev.sh DATA_ROOT WORK_DIR [SEED]}
work=${2:?usage: benchmarks/realdev.sh DATA_ROOT WORK_DIR [SEED]}
seed=${3:-0}
steps=${STEPS:-masks unet pix2pix fullsize mediapipe}
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$root/.venv/bin/python}
mkdir -p "$work"
cd "$root"

has() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }
timed() {
    name=$1; shift
    start=$(date +%s)
    "$@"
    echo "$name: $(( $(date +%s) - start )) s (seed $seed, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg))" \
        | tee -a "$work/times.txt"
}
crop="--size 128 --crop 0.2,0.36,0.6"

if has masks; then
    # Scored against the masks as annotated; trained on masks whose left/right eyes are set by position.
    timed g_mask "$py" g_mask.py --data-dir "$data" --out-dir "$work/masks"
    timed g_mask_fixed "$py" g_mask.py --data-dir "$data" --out-dir "$work/masks_fixed" --fix-sides
    timed process "$py" process.py --data-dir "$data" --masks "$work/masks" --out-dir "$work/pairs_c128" $crop
    timed process_fixed "$py" process.py --data-dir "$data" --masks "$work/masks_fixed" \
        --out-dir "$work/pairs_c128_fixed" $crop
fi

unet=$work/unet_s$seed
if has unet; then
    # The shipped model's recipe (lipseg_tf/pretrained/MODEL.md).
    timed unet_train "$py" unet.py --mode train --input_dir "$work/pairs_c128_fixed" --output_dir "$unet" \
        --crop_size 128 --scale_size 136 --ngf 16 --max_epochs 6 --batch_size 8 --seed "$seed"
    for tta in none flip; do
        "$py" unet.py --mode test --input_dir "$work/pairs_c128" --checkpoint "$unet" --tta $tta \
            --output_dir "$unet-test-$tta"
    done
    "$py" unet.py --mode export --checkpoint "$unet" --tta flip --output_dir "$unet-export"
fi

if has fullsize; then
    for detect in --no-detect --detect; do
        "$py" -m lipseg_tf.tools.eval_fullsize --model "$unet-export" --data-dir "$data" --masks "$work/masks" \
            $detect --detector mtcnn --out "$unet-full$detect"   # docs/results.md's rows: MTCNN
    done
fi

p2p=$work/pix2pix_s$seed
if has pix2pix; then
    timed pix2pix_train "$py" pix2pix.py --mode train --input_dir "$work/pairs_c128_fixed" --output_dir "$p2p" \
        --crop_size 128 --scale_size 136 --ngf 32 --ndf 16 --batch_size 4 --lr 5e-4 --l1_balance 1 \
        --max_epochs 6 --decay_epochs 3 --seed "$seed"
    for tta in none flip; do
        "$py" pix2pix.py --mode test --input_dir "$work/pairs_c128" --checkpoint "$p2p" --tta $tta \
            --output_dir "$p2p-test-$tta"
    done
fi

if has mediapipe; then
    # The peer sees whole 512 px faces (no training; its own environment, benchmarks/README.md).
    "$py" process.py --data-dir "$data" --masks "$work/masks" --out-dir "$work/pairs512" --size 512
    benchmarks/mediapipe_peer.sh --input_dir "$work/pairs512" --output_dir "$work/mediapipe_512"
fi
echo "realdev: metrics in $work/*/metrics.json, wall times in $work/times.txt"
