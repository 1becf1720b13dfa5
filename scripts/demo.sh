#!/usr/bin/env bash
# The main job: set up, build, and run attnc on a real model (ModernBERT).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
attnc=${ATTNC_BUILD_DIR:-$root/build}/bin/attnc
echo
echo "\$ attnc examples/modernbert.attn"
(cd "$root" && "$attnc" examples/modernbert.attn)
