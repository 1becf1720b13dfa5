#!/usr/bin/env bash
# Checks the attnc wheel as a user gets it (docs/runtime.md "Packaging"):
# installs it into a fresh venv and, from outside the source tree, checks
# that the installed libattnrt.so needs no LLVM, MLIR, zlib or zstd (ldd) and
# is stripped, that the `attnc` entry point works (--version, exit codes,
# every example compiled to PTX) and that attnc.compile() JIT-compiles every
# example to the same PTX in process. No GPU needed. Prints the wheel's size
# and each step's time; any failure exits nonzero.
#
#   scripts/test_wheel.sh [WHEEL]     (default: build one, scripts/build_wheel.sh)
#
# PYTHON: the interpreter of the test venv (default python3).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
fail() { echo "test_wheel: FAILED: $*" >&2; exit 1; }
since() { awk -v a="$(date +%s.%N)" -v b="$1" 'BEGIN { printf "%.2f", a - b }'; }
t0=$(date +%s.%N)
step_name=""
step() { # ends the step running (printing its time) and starts the next
  if [ -n "$step_name" ]; then printf 'test_wheel: %-40s %8s s\n' "$step_name:" "$(since "$step_start")"; fi
  step_name=${1:-}
  step_start=$(date +%s.%N)
}

step "build the wheel"
if [ $# -ge 1 ]; then
  wheel=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
  [ -f "$wheel" ] || fail "no wheel $1"
else
  # Its log on stderr; its last line is the wheel.
  wheel=$("$root/scripts/build_wheel.sh" | tee /dev/stderr | tail -n 1)
fi
case "$wheel" in *-py3-none-*linux*_x86_64.whl) ;; *) fail "unexpected wheel name/tag: $wheel" ;; esac
echo "test_wheel: wheel $wheel: $(stat -c %s "$wheel") bytes ($(du -h "$wheel" | cut -f1))"

step "create a fresh venv"
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
tmp=$(mktemp -d /tmp/attnc-wheel-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
py=$tmp/venv/bin/python
# Nothing of the source tree or the caller's environment: the package and
# its library must come from the venv.
cd "$tmp"
unset ATTNC_LIBRARY PYTHONPATH
export ATTNC_CACHE_DIR=$tmp/cache

step "pip install the wheel"
"$py" -m pip install -q --disable-pip-version-check --no-index --no-deps "$wheel"

step "the installed library (ldd)"
lib=$("$py" -c 'import attnc, os; print(os.path.join(os.path.dirname(attnc.__file__), "libattnrt.so"))')
case "$lib" in "$tmp"/venv/*) ;; *) fail "attnc imported from $lib, not from the venv" ;; esac
[ -f "$lib" ] || fail "no $lib in the installed package"
echo "test_wheel: $lib: $(stat -c %s "$lib") bytes ($(du -h "$lib" | cut -f1))"
ldd "$lib" | sed 's/^/  ldd: /'
# Only the C and C++ runtimes.
bad=$(ldd "$lib" | awk '{print $1}' | grep -Ev '^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libdl\.so\.2|libpthread\.so\.0)$' | tr '\n' ' ' || true)
[ -z "$bad" ] || fail "libattnrt.so needs more than the C/C++ runtime: $bad"
if ldd "$lib" | grep -Eq 'libMLIR|libLLVM|libzstd|libz\.so|not found'; then fail "ldd shows LLVM/MLIR/zstd/zlib or a missing library"; fi
if readelf -S "$lib" | grep -q '\.symtab'; then fail "libattnrt.so is not stripped"; fi
glibc=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -n 1)
glibcxx=$(objdump -T "$lib" | grep -o 'GLIBCXX_[0-9.]*' | sort -uV | tail -n 1)
echo "test_wheel: newest symbol versions needed: $glibc, $glibcxx"
"$py" -c 'import attnc; assert attnc.has_compiler(), "the wheel'"'"'s libattnrt has no compiler"; print("test_wheel: libattnrt", attnc.version())'

step "attnc --version (entry point)"
attnc=$tmp/venv/bin/attnc
[ -x "$attnc" ] || fail "no attnc console script in the venv"
version=$(sed -n 's/^project(attnc VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
got=$("$attnc" --version)
[ "$got" = "attnc $version" ] || fail "attnc --version printed '$got', expected 'attnc $version'"
"$attnc" --help >/dev/null || fail "attnc --help failed"
"$attnc" run --help >/dev/null || fail "attnc run --help failed"
# The driver's exit codes come through: 1 bad input, 2 bad command line.
set +e
"$attnc" "$tmp/no-such-file.attn" 2>/dev/null; rc1=$?
"$attnc" --no-such-option 2>/dev/null; rc2=$?
echo 'attention a { mask k <= q + ; }' | "$attnc" - --emit=check 2>"$tmp/diag.txt" >/dev/null; rc3=$?
set -e
[ "$rc1" = 1 ] && [ "$rc2" = 2 ] && [ "$rc3" = 1 ] || fail "exit codes $rc1 $rc2 $rc3, expected 1 2 1"
grep -q '<stdin>:1:.*error' "$tmp/diag.txt" || fail "no located diagnostic: $(cat "$tmp/diag.txt")"
echo "test_wheel: $got; exit codes 1 (input), 2 (command line), 1 (source error) as the executable's"

step "attnc EXAMPLE -o x.ptx (entry point)"
mkdir -p "$tmp/ptx"
n=0
for ex in "$root"/examples/*.attn; do
  name=$(basename "$ex" .attn)
  "$attnc" "$ex" -o "$tmp/ptx/$name.ptx" || fail "attnc $ex -o $tmp/ptx/$name.ptx failed"
  grep -q '\.entry ' "$tmp/ptx/$name.ptx" || fail "$name.ptx has no .entry"
  n=$((n + 1))
done
[ "$n" -gt 0 ] || fail "no examples in $root/examples"
echo "test_wheel: $n examples compiled to PTX by the attnc command"

step "attnc.compile(every example) (JIT)"
"$py" - "$root/examples" "$tmp/ptx" <<'EOF'
import glob, os, sys
import attnc

examples, cli_ptx = sys.argv[1], sys.argv[2]
cache = os.environ["ATTNC_CACHE_DIR"]
done = 0
for path in sorted(glob.glob(os.path.join(examples, "*.attn"))):
    name = os.path.basename(path)[:-len(".attn")]
    before = set(glob.glob(os.path.join(cache, "*.entry")))
    # lazy: the manifest only, no GPU needed (the kernels load at launch).
    m = attnc.compile(open(path).read(), lazy=True)
    assert m.variants, "%s: no variants" % name
    new = set(glob.glob(os.path.join(cache, "*.entry"))) - before
    assert len(new) == 1, "%s: expected one new cache entry, got %d" % (name, len(new))
    # The first-call report: a miss, stored under the entry's key.
    report = m.compile_report
    assert report["cache"] == "miss", "%s: compile_report %r" % (name, report)
    entry = list(new)[0]
    assert os.path.basename(entry) == report["key"] + ".entry", "%s: %r vs %s" % (name, report, entry)
    again = attnc.compile(open(path).read(), lazy=True).compile_report
    assert again["cache"] == "hit" and again["key"] == report["key"], "%s: second call %r" % (name, again)
    # The entry: one header line, then the PTX with its manifest.
    ptx = open(new.pop()).read().split("\n", 1)[1]
    assert ".entry" in ptx, "%s: the JIT's PTX has no .entry" % name
    for v in m.manifest["variants"]:
        for k in v["kernels"]:
            assert ".entry " + k["symbol"] in ptx, "%s: no .entry %s" % (name, k["symbol"])
    # The same compiler as the attnc command's, with the same defaults.
    cli = open(os.path.join(cli_ptx, name + ".ptx")).read()
    assert ptx == cli, "%s: the JIT's PTX differs from `attnc %s.attn`'s" % (name, name)
    done += 1
assert done, "no examples"
print("test_wheel: %d examples JIT-compiled (a cache miss, then a hit, each), PTX identical to the attnc command's" % done)
EOF

step ""
echo "test_wheel: all checks passed in $(since "$t0") s"
