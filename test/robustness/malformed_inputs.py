#!/usr/bin/env python3
"""Malformed inputs: each class gets a located error, exit code 1, within a second
of CPU time (the compiler's own user + system time, so a loaded machine does not
make it fail; a hang is still caught by a 10 s wall-clock limit).

Usage: malformed_inputs.py PATH/TO/attnc
The classes are the ones issue 2 names: binary garbage, NUL bytes, invalid
UTF-8, 100,000 nested parentheses, a 10 MB line, an unterminated comment; plus
long operator chains and deep ?: nests that would exhaust a recursive parser.
"""
import os, random, re, resource, subprocess, sys, tempfile, time

LOCATED = re.compile(rb"^[^\n]*\.attn:\d+:\d+: error: ", re.M)

def cases():
    rnd = random.Random(1234)
    yield "binary garbage", bytes(rnd.getrandbits(8) for _ in range(100_000))
    yield "NUL bytes", b"attention a { mask k <= q\x00\x00; }\n"
    yield "invalid UTF-8", b"attention a { mask k <= q; }\nattention b { mask \xff\xfe\xc3 k; }\n"
    yield "100,000 nested parentheses", b"attention a { mask " + b"(" * 100_000 + b"k" + b")" * 100_000 + b" <= q; }"
    yield "100,000 unclosed parentheses", b"attention a { mask " + b"(" * 100_000
    yield "a 10 MB line", b"attention a { mask k <= " + b"q+" * 5_000_000 + b"q; }"
    yield "a 10 MB identifier", b"x" * 10_000_000
    yield "unterminated comment", b"attention a { mask k <= q; }\n/* never closed " + b"a" * 1000
    yield "5,000,000 prefix operators", b"attention a { mask " + b"!" * 5_000_000 + b"true; }"
    yield "200,000 nested ?:", b"attention a { mask k <= q" + b" ? true : false" * 200_000 + b"; }"
    yield "100,000 nested blocks", b"attention a {" * 100_000
    yield "huge integer", b"attention a { mask k <= 99999999999999999999999999999; }"
    yield "200,000 duplicate variants", b"attention a { mask k <= q; } " * 200_000
    yield "empty file", b""
    yield "only a comment", b"// nothing here\n"

def main():
    attnc = sys.argv[1]
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for name, data in cases():
            path = os.path.join(d, "input.attn")
            with open(path, "wb") as f:
                f.write(data)
            t0 = time.monotonic()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            try:
                r = subprocess.run([attnc, path], capture_output=True, timeout=10)
            except subprocess.TimeoutExpired:
                print(f"FAIL {name}: hung (killed after 10 s)"); failures += 1; continue
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            wall = time.monotonic() - t0
            dt = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            problems = []
            if r.returncode != 1:
                problems.append(f"exit code {r.returncode}, expected 1")
            if not LOCATED.search(r.stderr):
                problems.append("no 'file:line:col: error:' line")
            if dt > 1.0:
                problems.append(f"took {dt:.2f} s of CPU time, more than 1 s")
            if len(r.stderr) > 100_000:
                problems.append(f"{len(r.stderr)} bytes of diagnostics")
            status = "FAIL" if problems else "ok  "
            first = r.stderr.split(b"\n", 1)[0].decode("utf-8", "replace")[:120]
            print(f"{status} {name:32s} {dt*1000:7.1f} ms CPU {wall*1000:7.1f} ms wall  {first}" + ("  <- " + "; ".join(problems) if problems else ""))
            failures += bool(problems)
    sys.exit(1 if failures else 0)

if __name__ == "__main__":
    main()
