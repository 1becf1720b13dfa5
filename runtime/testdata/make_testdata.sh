#!/usr/bin/env bash
# make_testdata.sh - rebuild libattnrt's GPU test fixtures (RUNTIME TEST
# FIXTURES ONLY: hand-written CUDA, not output of attnc's code generator).
#
#   runtime/testdata/make_testdata.sh            regenerate the committed PTX:
#       naive_attention_causal.ptx  (kind "variants": the causal variant)
#       naive_attention_model.ptx   (kind "model": causal + doc_causal_sink,
#                                    layers [0, 1, 0, 1])
#   runtime/testdata/make_testdata.sh --cubin DIR
#       instead build DIR/naive_attention_causal.cubin with its sidecar
#       manifest DIR/naive_attention_causal.cubin.json (for the cubin loading
#       path; not committed; leaves the committed files alone)
#
# Each PTX is `nvcc -arch=sm_90a -ptx` of naive_attention.cu with the
# manifest (the matching *.manifest.json) prepended as the comment block that
# docs/runtime.md specifies. Needs nvcc (NVCC=... to override), no GPU.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
nvcc="${NVCC:-/usr/local/cuda/bin/nvcc}"
cubin_dir=""
if [[ "${1:-}" == "--cubin" ]]; then
  cubin_dir="${2:?--cubin needs a directory}"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# embed MANIFEST.json PTX_IN PTX_OUT: the manifest block, a fixture notice,
# then the PTX.
embed() {
  {
    echo "// attnc-manifest-begin"
    sed -e 's|^|// |' -e 's|^// $|//|' "$1"
    echo "// attnc-manifest-end"
    echo "//"
    echo "// RUNTIME TEST FIXTURE ONLY: compiled from runtime/testdata/naive_attention.cu"
    echo "// (hand-written CUDA) by runtime/testdata/make_testdata.sh. Not attnc output."
    cat "$2"
  } > "$3.tmp"
  mv "$3.tmp" "$3"
}

if [[ -n "$cubin_dir" ]]; then
  mkdir -p "$cubin_dir"
  "$nvcc" -arch=sm_90a -cubin -O3 -DATTNC_FIXTURE_CAUSAL_ONLY \
    "$here/naive_attention.cu" -o "$cubin_dir/naive_attention_causal.cubin"
  cp "$here/naive_attention_causal.manifest.json" "$cubin_dir/naive_attention_causal.cubin.json"
  echo "wrote $cubin_dir/naive_attention_causal.cubin and its sidecar .cubin.json"
  exit 0
fi

"$nvcc" -arch=sm_90a -ptx -O3 -DATTNC_FIXTURE_CAUSAL_ONLY \
  "$here/naive_attention.cu" -o "$tmp/causal.ptx"
"$nvcc" -arch=sm_90a -ptx -O3 "$here/naive_attention.cu" -o "$tmp/model.ptx"
embed "$here/naive_attention_causal.manifest.json" "$tmp/causal.ptx" "$here/naive_attention_causal.ptx"
embed "$here/naive_attention_model.manifest.json" "$tmp/model.ptx" "$here/naive_attention_model.ptx"
echo "wrote $here/naive_attention_causal.ptx and $here/naive_attention_model.ptx"
