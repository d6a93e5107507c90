#!/usr/bin/env bash
# Every GPU measurement the open issues ask for, one step per call, so that a session that
# is lent a GPU (the `device` tool: 30 minutes, at most 10 per command) spends it measuring:
#
#   bash benchmarks/gpu_session.sh STEP      # STEP: check | tests | gated | lstsq | engine | scaling
#
# Run on the GPU machine from the repository root (its python3 has torch, scikit-learn,
# scipy; PYTHONPATH=src is set here). Logs and result files go to $OUT (the device tool's
# folder that comes back) or benchmarks/results/gpu_session. Approximate H100 times:
#   check    ~1 min   nvidia-smi, torch/CUDA versions, a CUDA fit of each estimator
#   tests    ~5 min   the test suite's CUDA-parametrized tests (-k cuda)
#   gated    ~5 min   issue 4 T4: gated ReLU, n = 10^6, d = 100, 1,000 patterns (+ pyscnn if
#                     installed: pip install --no-deps pyscnn linalg_backends opt_einsum)
#   lstsq    ~3 min   issue 5 T3: sketch-preconditioned lstsq vs torch.linalg.lstsq on CUDA
#   engine   ~8 min   issue 2: benchmarks/engine_vs_adam.py --device cuda (no pyscnn)
#   scaling  ~10 min  issue 4 T5: time and memory against n and patterns on CUDA
set -euo pipefail
step="${1:?usage: bash benchmarks/gpu_session.sh check|tests|gated|lstsq|engine|scaling}"
out="${OUT:-benchmarks/results/gpu_session}"
mkdir -p "$out"
export PYTHONPATH=src
log="$out/$step.log"
{
  echo "# $(date -u) step=$step commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  case "$step" in
    check)
      nvidia-smi || true
      python3 - <<'PY'
import numpy as np, torch, convexnn
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())
X = torch.randn(300, 5, device="cuda", dtype=torch.float64)
y = (X[:, 0] > 0).long() + (X[:, 1] > 0).long()
for cls, target in [(convexnn.ConvexReLURegressor, X[:, 0].abs()),
                    (convexnn.ConvexGatedReLURegressor, X[:, 0].abs()),
                    (convexnn.ConvexReLUClassifier, (y > 0).long()),
                    (convexnn.ConvexReLUClassifier, y),
                    (convexnn.ConvexGatedReLUClassifier, y)]:
    est = cls(random_state=0).fit(X, target)
    print(cls.__name__, "objective", est.objective_, "gap", est.certificate_.rel_gap,
          est.certificate_.scope, "score", est.score(X.cpu().numpy(), target.cpu().numpy()))
PY
      ;;
    tests) python3 -m pytest -q -k cuda -p no:cacheprovider tests ;;
    gated)
      extra=""
      python3 -c "import scnn" 2>/dev/null && extra="--pyscnn"
      python3 benchmarks/gpu_gated.py --device cuda $extra --out "$out" ;;
    lstsq) (cd benchmarks/sketching && python3 gpu_lstsq.py --device cuda) && \
             cp benchmarks/results/sketching_gpu* "$out"/ 2>/dev/null || true ;;
    engine) python3 benchmarks/engine_vs_adam.py --device cuda --skip-pyscnn --out "$out" ;;
    scaling) python3 benchmarks/run.py --mode full --only scaling --device cuda --out "$out" \
               --tag gpu ;;
    *) echo "unknown step: $step" >&2; exit 2 ;;
  esac
} 2>&1 | tee "$log"
