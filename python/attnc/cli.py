"""The ``attnc`` command of the Python package (the wheel's console script).

Runs the attnc driver that libattnrt.so carries (``attnrt_cli_main``,
runtime/include/attnc/attnrt_cli.h; in builds with MLIR, such as the wheel's)
in this process, so ``attnc FILE -o OUT``, ``attnc --help``, ``attnc run ...``
behave as the attnc executable does, with its output and exit codes.
``python -m attnc.cli ARGS`` does the same.
"""

import ctypes
import os
import signal
import sys

from . import Error, _library


def main(argv=None):
    """Runs ``attnc`` with argv (default sys.argv) and returns its exit code."""
    argv = list(sys.argv if argv is None else argv)
    try:
        fn = _library().attnrt_cli_main
    except Error as e:
        sys.stderr.write("attnc: error: %s\n" % e)
        return 3
    except AttributeError:
        sys.stderr.write("attnc: error: this libattnrt has no attnc command line (attnrt_cli_main): "
                         "it was built without MLIR (ATTNC_WITH_MLIR=OFF)\n")
        return 3
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    args = (ctypes.c_char_p * (len(argv) + 1))(*[os.fsencode(a) for a in argv], None)
    # As an executable would: Ctrl-C ends it, and a closed pipe (attnc ... |
    # head) ends it quietly rather than with write errors.
    for name in ("SIGINT", "SIGPIPE"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    return fn(len(argv), args)


if __name__ == "__main__":
    sys.exit(main())
