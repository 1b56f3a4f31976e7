#!/usr/bin/env bash
# Gate a checkpoint in CI: exit 0 passes, 1 means a policy threshold failed, 2 bad input.
#   examples/ci_gate.sh MODEL_DIR EVAL.csv
set -u
model=${1:?model folder}
data=${2:?eval data}
rai-audit run "$model" --data "$data" --out audit-report --overwrite --quiet \
  --threshold "performance.accuracy >= 0.85" \
  --threshold "performance.ece <= 0.1"
status=$?
case $status in
  0) echo "audit passed" ;;
  1) echo "audit FAILED a policy threshold: see audit-report/report.html" ;;
  *) echo "audit could not run (bad input)" ;;
esac
exit $status
