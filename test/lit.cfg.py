# lit configuration for attnc's tests: FileCheck-based tests of every --emit
# stage, of every example and of every diagnostic.
import os
import sys
import lit.formats

config.name = "attnc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".attn", ".test", ".mlir"]
config.excludes = ["Inputs", "CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "robustness", "reference", "runtime", "gpu", "ptx",
                   "fuzz-regressions"]  # replayed by codegen.generated_programs (ctest)
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.attnc_obj_root, "test")
config.substitutions.append(("%examples", os.path.join(config.attnc_src_root, "examples")))
# %python: lit's own interpreter; %exit_code CMD...: CMD's output and "exit N"
# (test/Inputs/exit_code.py), for tests of exact exit codes.
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%exit_code", sys.executable + " " + os.path.join(config.test_source_root, "Inputs", "exit_code.py")))
config.environment["PATH"] = os.pathsep.join(
    [config.attnc_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])

# `REQUIRES: mlir`: tests of the MLIR stages (attn dialect, --emit=attn and
# later), skipped in builds with ATTNC_WITH_MLIR=OFF.
if str(getattr(config, "attnc_with_mlir", "OFF")).upper() in ("ON", "1", "TRUE", "YES"):
    config.available_features.add("mlir")
