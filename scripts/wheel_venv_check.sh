#!/usr/bin/env bash
# The wheel in a fresh virtual environment on this machine (the GPU machine is
# Ubuntu 24.04; CI's scripts/test_wheel.sh does the same and more on Debian 12):
# pip installs it with nothing else, then, from /tmp, the `attnc` command
# compiles an example to PTX and attnc.compile() JIT-compiles one (lazily: no
# GPU needed), reporting the cache miss and the hit.
# Usage: scripts/wheel_venv_check.sh [WHEEL]   (default: dist/attnc-*.whl)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
whl=${1:-$(ls "$root"/dist/attnc-*.whl | head -n 1)}
venv=$(mktemp -d /tmp/attnc-venv.XXXXXX)
trap 'rm -rf "$venv"' EXIT
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --no-deps --disable-pip-version-check "$whl"
echo "wheel_venv: $(basename "$whl") installed into a fresh venv ($("$venv/bin/python" --version), $(. /etc/os-release && echo "$PRETTY_NAME"))"
cd /tmp
"$venv/bin/attnc" --version
"$venv/bin/attnc" "$root/examples/mistral.attn" -o "$venv/mistral.ptx"
echo "wheel_venv: attnc examples/mistral.attn -o mistral.ptx: $(wc -c < "$venv/mistral.ptx") bytes"
ATTNC_CACHE_DIR="$venv/cache" "$venv/bin/python" - <<'EOF'
import attnc
src = "attention w { mask k <= q && q - k < 256; }"
where = attnc.__file__
first = attnc.compile(src, lazy=True, verbose=True)
second = attnc.compile(src, lazy=True, verbose=True)
assert first.compile_report["cache"] == "miss" and second.compile_report["cache"] == "hit", (first.compile_report, second.compile_report)
assert "site-packages" in where, where
print("wheel_venv: all checks passed (attnc from %s)" % where)
EOF
