"""For lit tests of exit codes (%exit_code CMD ARGS...): runs CMD, prints its
standard output, then its standard error, then `exit N`, and exits 0, so a
test can FileCheck the messages and the exact code together."""
import subprocess
import sys

result = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(result.stdout)
sys.stdout.write(result.stderr)
print("exit %d" % result.returncode)
