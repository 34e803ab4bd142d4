#!/usr/bin/env bash
# One short GPU check of issue 14's "GPU throughput" claims, for a machine with one H100/H200 and no internet.
#
#   OUT=/some/folder bash scripts/gpu_check.sh        (from the repository root; about 6 minutes on an H100/H200,
#                                                     12 at most: every step has its own time limit)
#
# Needs python3 with torch (CUDA), torchvision, numpy, pandas, scikit-learn, scipy, pillow, opencv, typer and rich;
# artbench runs from this checkout (PYTHONPATH), MLflow is not needed (--tracking-uri none) and no weights are
# downloaded (weights=none). Each step has its own time limit, so one that hangs costs only its own share.
# Writes to $OUT (at most 8 files):
#   env.txt           GPU, driver, Python and torch versions, fused Adam and compiled state-dict checks
#   bench.log         artbench bench: ResNet-50, batch 128, 224 px: pipeline / model-only, and compiled / eager
#   determinism.log   mtl_fo_rall (ResNet-50, 224 px, 1 epoch) run twice with --deterministic and twice without:
#                     are the metrics and predictions identical, and what does --deterministic cost
#   protocol.log      artbench bench --protocol baselines/silknet.toml on a 2,000-image synthetic task (ResNet-152,
#                     NB_RN = 3, 224 px, batch 128 from the recipe), and again with --set precompute_trunk=false
#                     where the parameter exists
#   summary.txt       one line per step: its exit code and seconds
set -uo pipefail
OUT="${OUT:?set OUT to the folder for the results}"
mkdir -p "$OUT"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 COLUMNS=200 ARTBENCH_QUIET=1
WORK="$(mktemp -d /tmp/artbench-gpu-check.XXXXXX)"
export ARTBENCH_DATA="$WORK/data"
export PY="${PYTHON:-python3}"
ab() { "$PY" -c 'import sys; from artbench.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
export -f ab

step() {  # step NAME LIMIT_SECONDS LOG COMMAND...: run with a time limit, log, and note the outcome in summary.txt
    local name=$1 limit=$2 log=$3 start rc
    shift 3
    start=$(date +%s)
    echo "=== $name: $*" >>"$OUT/$log"
    timeout --kill-after=10 "$limit" bash -c '"$@"' _ "$@" >>"$OUT/$log" 2>&1
    rc=$?
    echo "$name: exit $rc, $(($(date +%s) - start)) s" | tee -a "$OUT/summary.txt"
}

cat >"$WORK/synth-2000.toml" <<'EOF'
name = "synth-2000"
description = "silknow-synth, 2,000 images, for the GPU check's protocol timing"
dataset = "silknow-synth"
[dataset_options]
num_images = 2000
seed = 0
[split]
seed = 0
[[targets]]
name = "place"
background = ["bg place"]
[[targets]]
name = "material"
[[targets]]
name = "time"
background = ["bg time"]
[[targets]]
name = "technique"
background = ["bg technique"]
[[targets]]
name = "depiction"
background = ["bg depiction"]
EOF

env_check() {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$PY" - <<'EOF'
import sys

import torch
from torch import nn

from artbench.methods import RunContext
from artbench.methods.torch.acceleration import adam, compile_error, prepare_model

print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
print("device", torch.cuda.get_device_name(0))
net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).cuda()
print("fused Adam on CUDA:", adam(net.parameters(), lr=1e-3).defaults.get("fused"))
print("compile_error(cuda):", compile_error("cuda"))
keys = list(net.state_dict())
ctx = RunContext(torch.device("cuda"), compile=True)
prepare_model(net, ctx)
net(torch.randn(4, 3, 16, 16, device="cuda")).sum().backward()
print("compiled:", ctx.cost.compiled, "state_dict keys unchanged:", list(net.state_dict()) == keys)
EOF
}
export -f env_check
step env 90 env.txt env_check

# 1. Throughput: pipeline / model-only (goal >= 0.97) and compiled / eager model-only (goal >= 1.3).
step bench 150 bench.log ab bench --device cuda --backbone resnet50 --image-size 224 --batch-size 128 \
    --steps 30 --warmup 5 --compile

# 2. Determinism: two runs with --deterministic must be identical; two without show whether the check can see a
#    difference at all. The cost lines give the price of --deterministic (training seconds).
DET=(run silknow-synth mtl_fo_rall --seeds 1 --device cuda --tracking-uri none --set backbone=resnet50
    --set image_size=224 --set max_epochs=1 --set batch_size=64)
for k in 1 2; do  # the first run also computes the colour features of the task
    step "deterministic-$k" $((k == 1 ? 100 : 60)) determinism.log ab "${DET[@]}" --out "$WORK/det-$k" --deterministic
    step "default-$k" 60 determinism.log ab "${DET[@]}" --out "$WORK/default-$k"
done
"$PY" - "$WORK" >>"$OUT/determinism.log" 2>&1 <<'EOF'
import json
import sys
from pathlib import Path

work = Path(sys.argv[1])


def seed(name):
    found = sorted(work.glob(f"{name}/silknow-synth/mtl_fo_rall/*/seed-1"))
    return found[-1] if found else None


for kind in ("det", "default"):
    a, b = seed(f"{kind}-1"), seed(f"{kind}-2")
    if a is None or b is None:
        print(kind, ": a run is missing")
        continue
    ma, mb = (json.loads((s / "metrics.json").read_text()) for s in (a, b))
    same_metrics = ma["targets"] == mb["targets"]
    same_predictions = (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
    print(f"{kind}: identical metrics {same_metrics}, identical predictions {same_predictions}")
    for s, m in ((a, ma), (b, mb)):
        c = m["cost"]
        print(f"  {s.parent.parent.parent.parent.name}: train {c['train_seconds']:.2f} s, "
              f"{c['images_per_second']:.0f} img/s, deterministic {c['deterministic']}")
EOF

# 3. The protocol's estimated GPU-hours (recipe: ResNet-152, NB_RN = 3, 224 px, batch 128; 40 epochs assumed).
PROTO=(bench --protocol baselines/silknet.toml --task "$WORK/synth-2000.toml" --device cuda --out "$WORK/none"
    --set weights=none --set max_epochs=40)
step protocol 100 protocol.log ab "${PROTO[@]}"
if "$PY" -c "from artbench.methods import METHODS; assert 'precompute_trunk' in METHODS.get('mtl').parameter_names()"
then
    step protocol-no-precompute 90 protocol.log ab "${PROTO[@]}" --set precompute_trunk=false
fi
echo "the hours above are for 2,000 images (1,200 training); SILKNOW's protocol (48,912 images, 60/20/20) takes about
24.5 times as long per epoch, plus one trunk pass over 48,912 images" >>"$OUT/protocol.log"
rm -rf "$WORK"
