#!/usr/bin/env python3
"""CI test of the attnc Python package (python/attnc) over libattnrt's C API.

Runs with a plain python3: no torch, no GPU, no CUDA driver (the driver is
forced absent with ATTNC_CUDA_DRIVER=/nonexistent). Fake tensor objects
stand in for torch tensors, so what is tested is the marshalling (data
pointers, shapes, strides in elements, dtypes, offsets, inputs, sinks),
the error reporting (attnc.Error with the runtime's message, status and
argument name), lazy loading, the no-driver error, compile() without a
compiler, and a DSA variant's workspace (the ctypes layout of
attnrt_launch_args, workspace_bytes, a given or missing workspace), the JIT's
first-call report, and attnc.torch's glue over a stand-in torch module (its two
operators, their dispatch and fake shapes). Launching on a GPU with real torch tensors is
runtime/tools/torch_check.py's job (scripts/gpu_runtime_check.sh), and the real
torch.library operators test/gpu/check_torch.py's.

Environment: ATTNC_LIBRARY (path of libattnrt.so; default: the package's own
search) and ATTNC_TESTDATA (runtime/testdata; default: found from this file).
"""
import ctypes
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


def dsa_module():
    """A lazily loaded module with a DSA variant: a chunked selection stage
    (64 rows per row block, 4 bytes of workspace per key) and a sparse
    attention stage, as in unittests/RuntimeDsaTest.cpp."""
    args = [("q", "ptr"), ("k", "ptr"), ("v", "ptr"), ("o", "ptr"), ("lse", "ptr"),
            ("indexer.qI", "ptr"), ("indexer.w", "ptr"), ("indexer.kI", "ptr"), ("indices", "ptr"),
            ("workspace", "ptr"), ("block_first", "i64"), ("qlen", "i32"), ("klen", "i32"),
            ("scale", "f32")]
    kernels = [
        {"head_dim": 128, "dtype": "bf16", "symbol": "dsa_select_d128", "block_m": 64,
         "block_n": 64, "threads": 256, "shared_bytes": 16384, "stage": "select",
         "grid": "chunked_row_blocks", "workspace_per_key": 4},
        {"head_dim": 128, "dtype": "bf16", "symbol": "dsa_attention_d128", "block_m": 64,
         "block_n": 64, "threads": 128, "shared_bytes": 65536, "stage": "attention",
         "grid": "rows_kvheads_batch"},
    ]
    manifest = {
        "format": "attnc-module", "format_version": 1, "attnc_version": "0.1.0",
        "target": "sm_90a", "kind": "variants",
        "variants": [{
            "name": "dsa", "head_dims": [128], "dtypes": ["bf16"], "kernels": kernels,
            "grid": "qtiles_heads_batch", "sink": False,
            "select": {"topk": 2048, "indexer": {"heads": 64, "dim": 128, "dtype": "fp8_e4m3"}},
            "args": [{"name": n, "kind": k} for n, k in args],
        }],
    }
    width = {"ptr": ".u64", "i64": ".u64", "i32": ".u32", "f32": ".f32"}
    ptx = ".version 8.0\n.target sm_90a\n.address_size 64\n"
    for k in kernels:
        params = ",\n".join("\t.param %s %s_param_%d" % (width[kind], k["symbol"], i)
                            for i, (_, kind) in enumerate(args))
        ptx += ".visible .entry %s(\n%s\n)\n{\n\tret;\n}\n" % (k["symbol"], params)
    return attnc.load_data(ptx, manifest=manifest, lazy=True, name="dsa.ptx")


def dsa_tensors(B=2, Hq=128, Hkv=1, Lq=8192, Lk=8192):
    """Valid arguments of dsa_module()'s variant (fake device addresses)."""
    t = tensors(B, Hq, Hkv, Lq, Lk)
    t["indexer"] = (FakeTensor((B, Lq, 64, 128), "float8_e4m3fn", BASE + 0x500000),
                    FakeTensor((B, Lq, 64), "float32", BASE + 0x600000),
                    FakeTensor((B, Lk, 128), "float8_e4m3fn", BASE + 0x700000))
    t["indices"] = FakeTensor((B, Hkv, Lq, 2048), "int32", BASE + 0x800000)
    return t


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
                                "block": (64, 1, 1), "shared_bytes": 65536, "workspace_bytes": 0})
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

    def test_dsa_workspace(self):
        # The ctypes struct matches attnrt.h (checked there by RuntimeDsaTest).
        L = attnc._LaunchArgs
        self.assertEqual(ctypes.sizeof(L), 160)
        self.assertEqual(L.dout.offset, 128)
        self.assertEqual(L.dv.offset, 152)
        self.assertEqual(L.workspace.offset, 120)
        kern = dsa_module().variant("dsa")
        t = dsa_tensors()
        common = dict(out=t["out"], lse=t["lse"], indexer=t["indexer"], indices=t["indices"])
        # 2 x 128 row blocks of 64 rows x 8192 keys x 4 bytes: all 256 fit 1 GiB in one launch.
        plan = kern.check(t["q"], t["k"], t["v"], **common)
        self.assertEqual(plan, {"kernel": "dsa_attention_d128", "grid": (16384, 1, 2),
                                "block": (128, 1, 1), "shared_bytes": 65536,
                                "workspace_bytes": 536870912})
        d = kern.describe(t["q"], t["k"], t["v"], **common)
        self.assertIn("\n  stage select: dsa_select_d128 grid=[256, 1, 1] x 1 launch (256 row "
                      "blocks, chunks of 256) block=[256, 1, 1] shared=16384 workspace=536870912\n", d)
        self.assertIn("\n  workspace=(allocated at launch, 536870912 bytes)\n", d)
        # A given workspace: any dtype, at least the bytes needed.
        ws = FakeTensor((536870912 // 4,), "float32", BASE + 0x10000000)
        p = packed(kern.describe(t["q"], t["k"], t["v"], workspace=ws, **common))
        self.assertEqual(int(p["workspace"], 16), BASE + 0x10000000)
        small = FakeTensor((1024,), "uint8", BASE + 0x10000000)
        with self.assertRaises(attnc.Error) as cm:
            kern.check(t["q"], t["k"], t["v"], workspace=small, **common)
        self.assertEqual(cm.exception.arg, "workspace")
        self.assertEqual(str(cm.exception), "workspace: expected at least 536870912 bytes (stage "
                         "'select': 256 row blocks per launch x block_m 64 x klen 8192 x 4 bytes "
                         "per key), got 1024 bytes (1024 x u8)")
        # A launch with a workspace checks, then needs the driver.
        with self.assertRaises(attnc.Error) as cm:
            kern(t["q"], t["k"], t["v"], workspace=ws, stream=0, **common)
        self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_DRIVER")
        # Without one, torch allocates it (not available here: an error naming it).
        try:
            import torch  # noqa: F401
        except ImportError:
            with self.assertRaises(attnc.Error) as cm:
                kern(t["q"], t["k"], t["v"], stream=0, **common)
            self.assertEqual(cm.exception.arg, "workspace")
            self.assertIn("variant 'dsa' needs a workspace of 536870912 bytes", str(cm.exception))
        # A variant without a workspace rejects one.
        causal = attnc.load(CAUSAL, lazy=True).variant("causal")
        u = tensors()
        with self.assertRaises(attnc.Error) as cm:
            causal.check(u["q"], u["k"], u["v"], out=u["out"], lse=u["lse"], workspace=small)
        self.assertEqual(str(cm.exception),
                         "workspace: variant 'causal' takes no workspace, but one was given")

    def test_kernel_keys(self):
        # attnc.torch's operator names kernels by Kernel.key: unique, and
        # found in the registry only while the Kernel lives.
        m = attnc.load(MODEL, lazy=True)
        a, b = m.variant("causal"), m.layer(0)
        self.assertRegex(a.key, r"^causal#\d+$")
        self.assertNotEqual(a.key, b.key)
        self.assertIs(attnc._live_kernels[a.key], a)
        self.assertIsNone(m.compile_report)  # loaded, not compiled
        key = b.key
        del b
        import gc
        gc.collect()
        self.assertNotIn(key, attnc._live_kernels)

    def test_compile_report_line(self):
        report = {"cache": "miss", "key": "0123456789abcdef" * 4, "cache_dir": "/c",
                  "compile_seconds": 2.3456, "load_seconds": 0.0123, "ptx_bytes": 5000}
        self.assertEqual(attnc.describe_compile_report(report),
                         "attnc.compile: compiled in 2.35 s (cache miss, stored as 0123456789abcdef in /c), "
                         "loaded in 12.3 ms, 5 KB of PTX")
        report.update(cache="hit", compile_seconds=0.0021)
        self.assertEqual(attnc.describe_compile_report(report),
                         "attnc.compile: cache hit (0123456789abcdef in /c): read in 2.1 ms, loaded in 12.3 ms, "
                         "5 KB of PTX")
        report.update(cache="off", compile_seconds=1.0)
        self.assertEqual(attnc.describe_compile_report(report),
                         "attnc.compile: compiled in 1.00 s (cache off), loaded in 12.3 ms, 5 KB of PTX")

    def test_compile_report(self):
        if not attnc.has_compiler():
            self.skipTest("this libattnrt has no in-process compiler")
        import contextlib, io, tempfile
        source = "attention w { mask k <= q && q - k < 256; }"
        opts = {"head_dims": "64", "dtypes": "bf16"}
        with tempfile.TemporaryDirectory() as cache:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                first = attnc.compile(source, cache_dir=cache, lazy=True, options=opts, verbose=True)
                second = attnc.compile(source, cache_dir=cache, lazy=True, options=opts, verbose=True)
                attnc.compile(source, cache_dir=cache, lazy=True, options=opts)  # quiet
            self.assertEqual(first.compile_report["cache"], "miss")
            self.assertEqual(second.compile_report["cache"], "hit")
            self.assertEqual(first.compile_report["key"], second.compile_report["key"])
            self.assertEqual(first.compile_report["cache_dir"], cache)
            self.assertGreater(first.compile_report["ptx_bytes"], 1000)
            lines = err.getvalue().splitlines()
            self.assertEqual(len(lines), 2, lines)
            self.assertTrue(lines[0].startswith("attnc.compile: compiled in "), lines[0])
            self.assertTrue(lines[1].startswith("attnc.compile: cache hit ("), lines[1])
            off = attnc.compile(source, use_cache=False, lazy=True, options=opts)
            self.assertEqual(off.compile_report["cache"], "off")
            self.assertEqual(off.compile_report["cache_dir"], "")

    def test_torch_front_glue(self):
        # attnc.torch over a stand-in torch module (CI has no torch; the GPU
        # check, test/gpu/check_torch.py, runs the real one): the two operators'
        # names, the dispatch between them, the fake implementations' shapes,
        # and that calls reach the runtime's checks and launch.
        import importlib, types

        ops = {}

        class Op:
            def __init__(self, name, fn):
                self.name, self.fn, self.fake = name, fn, None
                ops[name] = self

            def __call__(self, *args):
                return self.fn(*args)

            def register_fake(self, fn):
                self.fake = fn
                return fn

        class Shaped(FakeTensor):
            def dim(self):
                return len(self.shape)

            def new_empty(self, shape, dtype=None):
                return Shaped(shape, dtype.name if dtype is not None else self.dtype.name, BASE + 0xA00000)

            def element_size(self):
                return 4 if self.dtype.name == "float32" else 2

        autograd = {}

        class Ctx:  # what setup_context and the backward use of autograd's ctx
            def set_materialize_grads(self, on):
                self.materialize = on

            def save_for_backward(self, *ts):
                self.saved_tensors = ts

            def mark_non_differentiable(self, *ts):
                self.non_differentiable = ts

        class Module:
            def register_buffer(self, name, t):
                setattr(self, name, t)

            def __call__(self, *args, **kwargs):
                return self.forward(*args, **kwargs)

        stub = types.ModuleType("torch")
        stub.Tensor = FakeTensor
        stub.float32, stub.int32, stub.uint8 = FakeDType("float32"), FakeDType("int32"), FakeDType("uint8")
        stub.empty = lambda shape, dtype=None, device=None: Shaped(
            shape, dtype.name if isinstance(dtype, FakeDType) else dtype, BASE + 0x900000)
        stub.library = types.SimpleNamespace(
            custom_op=lambda name, mutates_args: (lambda fn: Op(name, fn)),
            register_autograd=lambda name, fn, setup_context: autograd.update({name: (fn, setup_context)}))
        stub.empty_like = lambda t: Shaped(t.shape, t.dtype.name, BASE + 0xC00000)
        stub.nn = types.SimpleNamespace(Module=Module, Parameter=type("Parameter", (FakeTensor,), {}))
        saved = {n: sys.modules.get(n) for n in ("torch", "attnc.torch")}
        sys.modules["torch"] = stub
        sys.modules.pop("attnc.torch", None)
        try:
            at = importlib.import_module("attnc.torch")
            self.assertEqual(sorted(ops), ["attnc::attention", "attnc::attention_backward",
                                           "attnc::attention_select"])
            self.assertEqual(sorted(autograd), ["attnc::attention", "attnc::attention_select"])
            causal = attnc.load(CAUSAL, lazy=True).variant("causal")
            self.assertFalse(causal.selects)
            t = tensors()
            q, k, v = (Shaped(t[n].shape, "bfloat16", t[n].ptr) for n in ("q", "k", "v"))
            # Valid arguments get as far as the launch (no driver here).
            with self.assertRaises(attnc.Error) as cm:
                at.attention(q, k, v, causal)
            self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_DRIVER")
            with self.assertRaises(attnc.Error) as cm:
                at.Attention(causal, return_lse=True)(q, k, v)
            self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_DRIVER")
            # Bad ones are the runtime's argument errors, named.
            with self.assertRaises(attnc.Error) as cm:
                at.attention(Shaped(q.shape, "bfloat16", q.ptr, cuda=False), k, v, causal)
            self.assertEqual(cm.exception.arg, "q")
            with self.assertRaises(attnc.Error) as cm:
                at.attention(q, k, v, causal, indexer=(q, q, q))
            self.assertEqual(cm.exception.arg, "indexer")
            with self.assertRaises(attnc.Error) as cm:
                at.attention(q, k, v, "causal")
            self.assertEqual(cm.exception.arg, "kernel")
            with self.assertRaises(attnc.Error) as cm:
                ops["attnc::attention"](q, k, v, "freed#0", None, "", [], None, None, False)
            self.assertIn("no live attnc kernel has key 'freed#0'", str(cm.exception))
            out, lse = ops["attnc::attention"].fake(q, k, v, causal.key, None, "", [], None, None, False)
            self.assertEqual((out.shape, lse.shape, str(lse.dtype)), (q.shape, q.shape[:3], "torch.float32"))
            # Autograd: the LSE is differentiable only when the caller asked for
            # it; no output gradient, no launch; a gradient reaches
            # Kernel.backward, which wants the gradient kernels (--backward=on).
            backward, setup = autograd["attnc::attention"]
            for asked in (False, True):
                ctx = Ctx()
                setup(ctx, (q, k, v, causal.key, None, "", [], None, None, asked), (out, lse))
                self.assertFalse(ctx.materialize)
                self.assertEqual(getattr(ctx, "non_differentiable", ()), () if asked else (lse,))
                self.assertEqual(len(ctx.saved_tensors), 6)
            self.assertEqual(backward(ctx, None, None), (None,) * 6 + ([],) + (None,) * 3)
            dout = Shaped(q.shape, "bfloat16", BASE + 0xB00000)
            with self.assertRaises(attnc.Error) as cm:
                backward(ctx, dout, None)
            self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NOT_FOUND")
            self.assertIn("--backward=on", str(cm.exception))
            dq, dk, dv, dsinks = ops["attnc::attention_backward"].fake(q, k, v, out, lse, dout, causal.key, None,
                                                                       "", [], None, None)
            self.assertEqual((dsinks.shape, str(dsinks.dtype)), ((0,), "torch.float32"))
            # A selecting variant has no backward: an error naming the reason.
            select_backward, select_setup = autograd["attnc::attention_select"]
            ctx = Ctx()
            select_setup(ctx, (q, k, v, "dsa#1"), None)
            with self.assertRaises(attnc.Error) as cm:
                select_backward(ctx, dout, None, None)
            self.assertIn("select", str(cm.exception))
            # A selecting variant goes through attnc::attention_select.
            dsa = dsa_module().variant("dsa")
            self.assertTrue(dsa.selects)
            u = dsa_tensors()
            uq, uk, uv = (Shaped(u[n].shape, "bfloat16", u[n].ptr) for n in ("q", "k", "v"))
            calls = []
            real = ops["attnc::attention_select"].fn
            ops["attnc::attention_select"].fn = lambda *a: calls.append(a) or real(*a)
            with self.assertRaises(attnc.Error) as cm:
                at.attention(uq, uk, uv, dsa, indexer=u["indexer"], return_indices=True)
            self.assertEqual(cm.exception.status, "ATTNRT_ERROR_NO_DRIVER")
            self.assertEqual(len(calls), 1)
            self.assertEqual(calls[0][3], dsa.key)
            self.assertIs(calls[0][9], u["indexer"][0])
            with self.assertRaises(attnc.Error) as cm:
                at.attention(uq, uk, uv, dsa)  # no indexer
            self.assertTrue(cm.exception.arg.startswith("indexer"), cm.exception.arg)
            out, lse, idx = ops["attnc::attention_select"].fake(uq, uk, uv, dsa.key, None, "", [], None, None,
                                                                *u["indexer"])
            self.assertEqual(idx.shape, (2, 1, 8192, 2048))
            self.assertEqual(str(idx.dtype), "torch.int32")
        finally:
            for n, m in saved.items():
                if m is None:
                    sys.modules.pop(n, None)
                else:
                    sys.modules[n] = m

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
