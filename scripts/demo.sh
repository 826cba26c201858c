#!/usr/bin/env bash
# Sets up bora, writes the built-in demo model (a seeded random tiny Mistral) and runs it:
# greedy generation from token ids, a speed measurement, and (when ../shared is present) the
# golden-logit check against Mistral's reference code.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target bora -j "$(nproc)"
bora=build/release/apps/bora

if [ ! -f demo-model/params.json ]; then
  "$bora" make-model --preset tiny --seed 42 --out demo-model
fi
echo
echo "\$ bora generate --model demo-model --tokens 1,330,1584,1032 --max-tokens 16"
"$bora" generate --model demo-model --tokens 1,330,1584,1032 --max-tokens 16
echo
echo "\$ bora bench --model demo-model"
"$bora" bench --model demo-model
shared=${BORA_SHARED:-../shared}
if [ -d "$shared/reference-models/tiny-dense" ]; then
  echo
  echo "\$ bora check-golden $shared/reference-models/tiny-dense"
  "$bora" check-golden "$shared/reference-models/tiny-dense"
fi
