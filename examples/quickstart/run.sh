#!/usr/bin/env bash
# lathe quickstart: build a tiny random-init model + the word-reversal task, train it on CPU,
# then ask `lathe inference` about word lists it never saw. About 2 minutes on a laptop.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$(cd ../.. && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

"$PY" make_assets.py
"$PY" -m lathe train config.yaml
for words in "moon cat river" "star fish tree snow" "road wind leaf dog sun"; do
  echo "reverse $words  →"
  "$PY" -m lathe inference config.yaml --prompt "$words" --max-new-tokens 8
done
"$PY" check_heldout.py
echo "curves, data report and config: $(pwd)/outputs/report.html"
