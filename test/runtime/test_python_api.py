#!/usr/bin/env python3
"""CI test of the attnc Python package (python/attnc) over libattnrt's C API.

Runs with a plain python3: no torch, no GPU, no CUDA driver (the driver is
forced absent with ATTNC_CUDA_DRIVER=/nonexistent). Fake tensor objects
stand in for torch tensors, so what is tested is the marshalling (data
pointers, shapes, strides in elements, dtypes, offsets, inputs, sinks),
the error reporting (attnc.Error with the runtime's message, status and
argument name), lazy loading, the no-driver error and compile() without a
compiler. Launching on a GPU with real torch tensors is
runtime/tools/torch_check.py's job (scripts/gpu_runtime_check.sh).

Environment: ATTNC_LIBRARY (path of libattnrt.so; default: the package's own
search) and ATTNC_TESTDATA (runtime/testdata; default: found from this file).
"""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
# Must be set before libattnrt first looks for the driver.
os.environ["ATTNC_CUDA_DRIVER"] = "/nonexistent/libcuda.so.1"
TESTDATA = os.environ.get("ATTNC_TESTDATA", os.path.join(ROOT, "runtime", "testdata"))
CAUSAL = os.path.join(TESTDATA, "naive_attention_causal.ptx")
MODEL = os.path.join(TESTDATA, "naive_attention_model.ptx")

import attnc  # noqa: E402


class FakeDType:
    def __init__(self, name):
        self.name = name

    def __str__(self):
        return "torch." + self.name


class FakeTensor:
    """Just enough of a torch tensor for attnc's marshalling."""

    def __init__(self, shape, dtype="bfloat16", ptr=0x7F0000000000, strides=None, cuda=True):
        self.shape = tuple(shape)
        self.dtype = FakeDType(dtype)
        self.ptr = ptr
        if strides is None:
            strides, acc = [], 1
            for s in reversed(self.shape):
                strides.insert(0, acc)
                acc *= s
        self._strides = tuple(strides)
        self.is_cuda = cuda
        self.device = "cuda:0" if cuda else "cpu"

    def data_ptr(self):
        return self.ptr

    def stride(self):
        return self._strides


BASE = 0x7F0000000000


def tensors(B=2, Hq=8, Hkv=4, Lq=100, Lk=1000, D=128, dtype="bfloat16"):
    return dict(
        q=FakeTensor((B, Hq, Lq, D), dtype, BASE),
        k=FakeTensor((B, Hkv, Lk, D), dtype, BASE + 0x100000),
        v=FakeTensor((B, Hkv, Lk, D), dtype, BASE + 0x200000),
        out=FakeTensor((B, Hq, Lq, D), dtype, BASE + 0x300000),
        lse=FakeTensor((B, Hq, Lq), "float32", BASE + 0x400000),
    )


def packed(description):
    """The name=value lines of Kernel.describe() as a dict."""
    lines = description.splitlines()
    return dict(line.strip().split("=", 1) for line in lines[1:])


class PythonApiTest(unittest.TestCase):
    def test_library_and_version(self):
        self.assertRegex(attnc.version(), r"^\d+\.\d+\.\d+")

    def test_no_driver(self):
        self.assertFalse(attnc.driver_available())
        with self.assertRaises(attnc.Error) as cm:
            attnc.load(CAUSAL)
        self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_DRIVER")
        self.assertTrue(str(cm.exception).startswith(
            "no CUDA driver found: cannot load '/nonexistent/libcuda.so.1'"), str(cm.exception))

    def test_lazy_load_and_lookup(self):
        m = attnc.load(MODEL, lazy=True)
        self.assertEqual(m.variants, ["causal", "doc_causal_sink"])
        self.assertEqual(m.num_layers, 4)
        self.assertEqual(m.manifest["target"], "sm_90a")
        self.assertEqual(m.manifest["model"]["layers"], [0, 1, 0, 1])
        self.assertEqual(m.layer(1).name, "doc_causal_sink")
        self.assertEqual(m.variant("causal").name, "causal")
        self.assertTrue(m.layer(3).spec["sink"])
        with self.assertRaises(attnc.Error) as cm:
            m.layer(4)
        self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NOT_FOUND")
        self.assertIn("layer 4 is out of range: model 'fixture' has 4 layers (0 .. 3)", str(cm.exception))
        with self.assertRaises(attnc.Error) as cm:
            m.variant("local")
        self.assertIn("no variant 'local' (the module has: causal, doc_causal_sink)", str(cm.exception))
        with open(CAUSAL, "rb") as f:
            mem = attnc.load_data(f.read(), lazy=True, name="mem.ptx")
        self.assertEqual(mem.variants, ["causal"])
        with self.assertRaises(attnc.Error) as cm:
            attnc.load(os.path.join(TESTDATA, "missing.ptx"), lazy=True)
        self.assertEqual(cm.exception.status, "ATTNRT_ERROR_IO")

    def test_marshalling(self):
        kern = attnc.load(CAUSAL, lazy=True).variant("causal")
        t = tensors()
        plan = kern.check(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"])
        self.assertEqual(plan, {"kernel": "attnc_fixture_causal_bf16_d128", "grid": (2, 8, 2),
                                "block": (64, 1, 1), "shared_bytes": 65536})
        p = packed(kern.describe(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"]))
        self.assertEqual(int(p["q"], 16), BASE)
        self.assertEqual(int(p["v"], 16), BASE + 0x200000)
        self.assertEqual(int(p["lse"], 16), BASE + 0x400000)
        self.assertEqual(p["q_stride_b"], str(8 * 100 * 128))
        self.assertEqual(p["k_stride_h"], str(1000 * 128))
        self.assertEqual(p["lse_stride_h"], "100")
        self.assertEqual((p["batch"], p["heads_q"], p["heads_kv"], p["qlen"], p["klen"]),
                         ("2", "8", "4", "100", "1000"))
        self.assertEqual((p["q_offset"], p["k_offset"]), ("900", "0"))
        self.assertAlmostEqual(float(p["scale"]), 128 ** -0.5, places=6)

        # A transposed (non-contiguous) q, fp16, head dim 64 and explicit offsets.
        t = tensors(D=64, dtype="float16")
        q = FakeTensor((2, 8, 100, 64), "float16", BASE, strides=(100 * 8 * 64, 64, 8 * 64, 1))
        p = packed(kern.describe(q, t["k"], t["v"], out=t["out"], lse=t["lse"],
                                 q_offset=-3, k_offset=5))
        self.assertEqual((p["q_stride_b"], p["q_stride_h"], p["q_stride_l"]), ("51200", "64", "512"))
        self.assertEqual((p["q_offset"], p["k_offset"]), ("-3", "5"))
        self.assertIn("attnc_fixture_causal_fp16_d64",
                      kern.describe(q, t["k"], t["v"], out=t["out"], lse=t["lse"]))

    def test_inputs_and_sinks(self):
        kern = attnc.load(MODEL, lazy=True).layer(1)
        t = tensors()
        sinks = FakeTensor((8,), "float32", BASE + 0x500000)
        doc = FakeTensor((2, 1000), "int32", BASE + 0x600000)
        p = packed(kern.describe(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"], sinks=sinks,
                                 inputs={"doc": doc}))
        self.assertEqual(int(p["sinks"], 16), BASE + 0x500000)
        self.assertEqual(int(p["input:doc"], 16), BASE + 0x600000)
        self.assertEqual(p["input:doc:stride:batch"], "1000")
        self.assertEqual(p["input:doc:size:token"], "1000")
        with self.assertRaises(attnc.Error) as cm:
            kern.check(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"], sinks=sinks)
        self.assertEqual(cm.exception.arg, "input:doc")
        self.assertEqual(str(cm.exception), "input:doc: variant 'doc_causal_sink' reads input "
                         "'doc : i32[batch, token]', which was not given")
        with self.assertRaises(attnc.Error) as cm:
            kern.check(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"], inputs={"doc": doc})
        self.assertEqual(cm.exception.arg, "sinks")

    def test_argument_errors(self):
        kern = attnc.load(CAUSAL, lazy=True).variant("causal")
        t = tensors()
        bad_v = FakeTensor((2, 4, 999, 128), "bfloat16", BASE + 0x200000)
        with self.assertRaises(attnc.Error) as cm:
            kern(t["q"], t["k"], bad_v, out=t["out"], lse=t["lse"], stream=0)
        e = cm.exception
        self.assertEqual(e.status, "ATTNRT_ERROR_INVALID_ARGUMENT")
        self.assertEqual(e.arg, "v")
        self.assertEqual(str(e), "v: expected shape [2, 4, 1000, 128] (batch, heads_kv, klen, "
                                 "head_dim), got [2, 4, 999, 128]")
        with self.assertRaises(attnc.Error) as cm:
            kern.check(FakeTensor((2, 8, 100, 128), "float32"), t["k"], t["v"], out=t["out"],
                       lse=t["lse"])
        self.assertEqual(str(cm.exception), "q: expected dtype bf16 or fp16 (supported by variant "
                                            "'causal'), got f32")
        with self.assertRaises(attnc.Error) as cm:
            kern.check(FakeTensor((2, 8, 100, 128), "complex64"), t["k"], t["v"], out=t["out"],
                       lse=t["lse"])
        self.assertEqual(cm.exception.arg, "q")
        self.assertIn("unsupported dtype torch.complex64", str(cm.exception))
        with self.assertRaises(attnc.Error) as cm:
            kern.check(t["q"], t["k"], t["v"], out=t["out"],
                       lse=FakeTensor((2, 8, 100), "float32", cuda=False))
        self.assertEqual(cm.exception.arg, "lse")
        self.assertIn("expected a CUDA tensor", str(cm.exception))
        with self.assertRaises(attnc.Error) as cm:
            kern.check(FakeTensor((2, 8, 100, 128), ptr=BASE + 2), t["k"], t["v"], out=t["out"],
                       lse=t["lse"])
        self.assertEqual(str(cm.exception), "q: data pointer 0x7f0000000002 is not 16-byte aligned")
        with self.assertRaises(attnc.Error) as cm:
            kern.check(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"], q_offset=2 ** 41)
        self.assertEqual(cm.exception.arg, "q_offset")

    def test_launch_without_driver(self):
        # Valid arguments pass checking, then the launch needs the driver.
        kern = attnc.load(CAUSAL, lazy=True).variant("causal")
        t = tensors()
        with self.assertRaises(attnc.Error) as cm:
            kern(t["q"], t["k"], t["v"], out=t["out"], lse=t["lse"], stream=0)
        self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_DRIVER")
        self.assertIn("no CUDA driver found", str(cm.exception))

    def test_compile_without_compiler(self):
        if attnc.has_compiler():
            self.skipTest("this libattnrt has the in-process compiler")
        with self.assertRaises(attnc.Error) as cm:
            attnc.compile("attention a { mask k <= q; }", window=1024, target="sm_90a")
        self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_COMPILER")
        msg = str(cm.exception)
        self.assertTrue(msg.startswith("this build of libattnrt has no compiler ("), msg)
        self.assertTrue(msg.endswith("); load a PTX file instead"), msg)

    def test_missing_library(self):
        env = dict(os.environ, ATTNC_LIBRARY="/nonexistent/libattnrt.so")
        code = ("import sys; sys.path.insert(0, %r); import attnc\n"
                "try:\n    attnc.version()\nexcept attnc.Error as e:\n    print(e)\n"
                % os.path.join(ROOT, "python"))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        self.assertIn("cannot load libattnrt: ATTNC_LIBRARY is '/nonexistent/libattnrt.so', "
                      "which does not exist", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
