"""attnc: run attnc attention kernels from Python (and PyTorch).

A thin ctypes binding over libattnrt's C API (runtime/include/attnc/attnrt.h);
no build step. Tensors are anything with ``data_ptr()``, ``stride()``,
``shape`` and ``dtype`` (PyTorch tensors), on a CUDA device::

    import attnc, torch
    m = attnc.load("mistral.ptx")            # or attnc.compile(source, window=1024)
    kern = m.variant("local")                # or m.layer(3) for a model
    out, lse = kern(q, k, v)                 # q [B, Hq, Lq, D], k/v [B, Hkv, Lk, D]

Arguments are checked by the runtime before anything is launched; a bad one
raises ``attnc.Error`` whose ``arg`` names it and whose message says what was
expected and what was given. Kernels launch on PyTorch's current stream of
q's device (or the ``stream=`` given). ``out`` and ``lse`` (and, for the
variants that need them, ``indices`` and the ``workspace`` scratch) are
allocated with torch when not given.

The library is found through $ATTNC_LIBRARY (a path to libattnrt.so), then
in this package's folder (where the wheel installs it), then in the source
tree's build/lib, then on the system's library path. The wheel's ``attnc``
command is attnc.cli. docs/runtime.md documents the whole runtime.
"""

import contextlib
import ctypes
import ctypes.util
import itertools
import json
import os
import weakref

__all__ = [
    "Error",
    "Module",
    "Kernel",
    "load",
    "load_data",
    "compile",
    "describe_compile_report",
    "has_compiler",
    "driver_available",
    "driver_info",
    "version",
]

_MAX_RANK = 8
# The C API version whose structs and functions this package declares
# (attnrt.h's ATTNRT_API_VERSION; 2 added attnrt_launch_args.workspace and
# attnrt_kernel_workspace_bytes, 3 attnrt_module_compile_report_json, 4
# attnrt_launch_args.dout/dq/dk/dv for the backward variants).
# Newer libraries only ever extend it.
_API_VERSION = 4
_HAS_Q_OFFSET = 1
_HAS_K_OFFSET = 2
_LOAD_LAZY = 1

# attnrt_dtype codes, by torch dtype name (str(torch.bfloat16) == "torch.bfloat16").
_DTYPES = {
    "bfloat16": 1,
    "float16": 2,
    "half": 2,
    "float32": 3,
    "float": 3,
    "int32": 4,
    "int": 4,
    "int64": 5,
    "long": 5,
    "bool": 6,
    "uint8": 7,
    "float8_e4m3fn": 8,
    "float8_e5m2": 9,
}

_STATUS_NAMES = {
    0: "ATTNRT_OK",
    1: "ATTNRT_ERROR_INVALID_ARGUMENT",
    2: "ATTNRT_ERROR_MANIFEST",
    3: "ATTNRT_ERROR_NO_DRIVER",
    4: "ATTNRT_ERROR_CUDA",
    5: "ATTNRT_ERROR_IO",
    6: "ATTNRT_ERROR_NOT_FOUND",
    7: "ATTNRT_ERROR_NO_COMPILER",
    8: "ATTNRT_ERROR_COMPILE",
    9: "ATTNRT_ERROR_INTERNAL",
    10: "ATTNRT_ERROR_USAGE",
}


class Error(RuntimeError):
    """An error reported by libattnrt (or found while marshalling arguments).

    ``status`` is the C API's status name ("ATTNRT_ERROR_INVALID_ARGUMENT",
    "ATTNRT_ERROR_NO_DRIVER", ...), ``arg`` the argument an argument error
    names ("q", "v", "input:doc", "q_offset", ...) or "".
    """

    def __init__(self, message, status="ATTNRT_ERROR_USAGE", arg=""):
        super().__init__(message)
        self.status = status
        self.arg = arg


class _Tensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_uint64),
        ("dtype", ctypes.c_int32),
        ("rank", ctypes.c_int32),
        ("sizes", ctypes.c_int64 * _MAX_RANK),
        ("strides", ctypes.c_int64 * _MAX_RANK),
    ]


class _Input(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("tensor", _Tensor)]


_TensorP = ctypes.POINTER(_Tensor)


class _LaunchArgs(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("q", _TensorP),
        ("k", _TensorP),
        ("v", _TensorP),
        ("o", _TensorP),
        ("lse", _TensorP),
        ("sinks", _TensorP),
        ("indexer_q", _TensorP),
        ("indexer_w", _TensorP),
        ("indexer_k", _TensorP),
        ("indices", _TensorP),
        ("inputs", ctypes.POINTER(_Input)),
        ("num_inputs", ctypes.c_int32),
        ("reserved0", ctypes.c_int32),
        ("q_offset", ctypes.c_int64),
        ("k_offset", ctypes.c_int64),
        # C API version 2.
        ("workspace", _TensorP),
        # C API version 4.
        ("dout", _TensorP),
        ("dq", _TensorP),
        ("dk", _TensorP),
        ("dv", _TensorP),
    ]


class _Plan(ctypes.Structure):
    _fields_ = [
        ("grid", ctypes.c_uint32 * 3),
        ("block", ctypes.c_uint32 * 3),
        ("shared_bytes", ctypes.c_uint32),
        ("kernel_index", ctypes.c_int32),
    ]


_lib = None

# Every live Kernel by its key (Kernel.key), for attnc.torch's operator,
# whose arguments can only be tensors, numbers and strings.
_live_kernels = weakref.WeakValueDictionary()
_kernel_numbers = itertools.count(1)


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libattnrt.so")
    yield os.path.join(os.path.dirname(os.path.dirname(here)), "build", "lib", "libattnrt.so")
    found = ctypes.util.find_library("attnrt")
    if found:
        yield found


def _library():
    """Loads libattnrt on first use and declares the C API's prototypes."""
    global _lib
    if _lib is not None:
        return _lib
    path = os.environ.get("ATTNC_LIBRARY")
    if path:
        if not os.path.exists(path):
            raise Error("cannot load libattnrt: ATTNC_LIBRARY is '%s', which does not exist" % path)
        tried = [path]
    else:
        tried = list(_candidates())
    errors = []
    for p in tried:
        if os.path.sep in p and not os.path.exists(p):
            errors.append("%s (not found)" % p)
            continue
        try:
            lib = ctypes.CDLL(p)
            break
        except OSError as e:
            errors.append("%s (%s)" % (p, e))
    else:
        raise Error(
            "cannot load libattnrt: tried " + "; ".join(errors or ["nothing"]) +
            ". Build it (cmake ... && ninja attnrt) and set ATTNC_LIBRARY to the path of libattnrt.so")

    c = ctypes
    vp, cp, i32, u32, i64 = c.c_void_p, c.c_char_p, c.c_int32, c.c_uint32, c.c_int64
    pp = c.POINTER(c.c_void_p)
    protos = {
        "attnrt_last_error": (cp, []),
        "attnrt_last_error_arg": (cp, []),
        "attnrt_status_name": (cp, [c.c_int]),
        "attnrt_version": (cp, []),
        "attnrt_api_version": (c.c_int, []),
        "attnrt_module_load_file": (c.c_int, [cp, u32, pp]),
        "attnrt_module_load_data": (c.c_int, [vp, c.c_size_t, cp, u32, cp, pp]),
        "attnrt_module_free": (None, [vp]),
        "attnrt_module_manifest_json": (cp, [vp]),
        "attnrt_module_num_layers": (i64, [vp]),
        "attnrt_module_variant": (c.c_int, [vp, cp, pp]),
        "attnrt_module_layer": (c.c_int, [vp, i64, pp]),
        "attnrt_kernel_free": (None, [vp]),
        "attnrt_kernel_name": (cp, [vp]),
        "attnrt_kernel_manifest_json": (cp, [vp]),
        "attnrt_kernel_check": (c.c_int, [vp, c.POINTER(_LaunchArgs), c.POINTER(_Plan)]),
        "attnrt_kernel_describe_launch": (c.c_int, [vp, c.POINTER(_LaunchArgs), c.c_char_p, c.c_size_t]),
        "attnrt_kernel_workspace_bytes": (c.c_int, [vp, c.POINTER(_LaunchArgs), c.POINTER(c.c_uint64)]),
        "attnrt_kernel_launch": (c.c_int, [vp, c.POINTER(_LaunchArgs), vp]),
        "attnrt_compile": (c.c_int, [cp, c.POINTER(cp), i32, pp]),
        "attnrt_module_compile_report_json": (cp, [vp]),
        "attnrt_has_compiler": (c.c_int, []),
        "attnrt_driver_info": (c.c_int, [c.c_char_p, c.c_size_t]),
    }
    lib.attnrt_api_version.restype = c.c_int
    lib.attnrt_api_version.argtypes = []
    if lib.attnrt_api_version() < _API_VERSION:
        raise Error("libattnrt at %s has C API version %d; this package needs version %d or newer"
                    % (p, lib.attnrt_api_version(), _API_VERSION))
    for name, (res, args) in protos.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


def _check(status):
    """Raises Error for a non-zero status, with the runtime's message."""
    if status != 0:
        lib = _library()
        raise Error(lib.attnrt_last_error().decode("utf-8", "replace"),
                    _STATUS_NAMES.get(status, "ATTNRT_STATUS_%d" % status),
                    lib.attnrt_last_error_arg().decode("utf-8", "replace"))


def version():
    """libattnrt's version string."""
    return _library().attnrt_version().decode()


def has_compiler():
    """Whether this libattnrt can compile source in-process (MLIR builds)."""
    return bool(_library().attnrt_has_compiler())


def driver_info():
    """A description of the CUDA driver; raises Error if there is none."""
    buf = ctypes.create_string_buffer(256)
    _check(_library().attnrt_driver_info(buf, len(buf)))
    return buf.value.decode()


def driver_available():
    """Whether a CUDA driver can be loaded."""
    try:
        driver_info()
        return True
    except Error:
        return False


_DTYPE_CODES = {}  # t.dtype -> _DTYPES code, for the dtypes seen (a call marshals 5+ tensors)


def _dtype_code(name, t):
    dtype = getattr(t, "dtype", None)
    code = _DTYPE_CODES.get(dtype)
    if code is not None:
        return code
    dt = str(dtype if dtype is not None else "?")
    key = dt[len("torch."):] if dt.startswith("torch.") else dt
    code = _DTYPES.get(key)
    if code is None:
        raise Error("%s: unsupported dtype %s (attnc tensors are bfloat16, float16, float32, "
                    "int32, int64, bool, uint8 or float8)" % (name, dt),
                    "ATTNRT_ERROR_INVALID_ARGUMENT", name)
    _DTYPE_CODES[dtype] = code
    return code


def _marshal(name, t, device=None):
    """A _Tensor describing tensor t (strides in elements)."""
    if getattr(t, "is_cuda", True) is False:
        raise Error("%s: expected a CUDA tensor, got one on %s" % (name, getattr(t, "device", "the CPU")),
                    "ATTNRT_ERROR_INVALID_ARGUMENT", name)
    t_device = getattr(t, "device", None)
    if device is not None and t_device is not None and t_device != device and str(t_device) != str(device):
        raise Error("%s: expected a tensor on %s (the device of q), got one on %s"
                    % (name, device, t_device), "ATTNRT_ERROR_INVALID_ARGUMENT", name)
    shape, strides = t.shape, t.stride()
    if len(shape) > _MAX_RANK:
        raise Error("%s: rank %d is more than %d" % (name, len(shape), _MAX_RANK),
                    "ATTNRT_ERROR_INVALID_ARGUMENT", name)
    # (Slice assignments: a launch marshals 5 to 10 tensors, and element by
    # element ctypes assignments cost microseconds each.)
    d = _Tensor(int(t.data_ptr()), _dtype_code(name, t), len(shape))
    d.sizes[:len(shape)] = [int(x) for x in shape]
    d.strides[:len(shape)] = [int(x) for x in strides]
    return d


class Kernel:
    """One attention variant of a module (all its head-dim/dtype kernels).

    Call it like a function: ``out, lse = kernel(q, k, v, ...)``.
    """

    def __init__(self, module, handle):
        self._module = module  # keeps the module alive
        self._handle = handle
        lib = _library()
        self.name = lib.attnrt_kernel_name(handle).decode()
        #: The variant's manifest entry (docs/runtime.md), as a dict.
        self.spec = json.loads(lib.attnrt_kernel_manifest_json(handle).decode())
        self._arg_names = {a["name"] for a in self.spec["args"]}
        #: Whether the variant selects keys (select topk): a call returns
        #: (out, lse, indices).
        self.selects = "indices" in self._arg_names
        #: A name unique in this process ("variant#n"): how the PyTorch
        #: operator attnc::attention (attnc.torch) refers to this kernel.
        self.key = "%s#%d" % (self.name, next(_kernel_numbers))
        _live_kernels[self.key] = self

    def __del__(self):
        if _lib is not None and getattr(self, "_handle", None):
            _lib.attnrt_kernel_free(self._handle)
            self._handle = None

    def __repr__(self):
        return "<attnc.Kernel %s>" % self.name

    def _prepare(self, q, k, v, sinks, inputs, q_offset, k_offset, out, lse, indexer, indices,
                 workspace=None):
        """Allocates missing outputs and builds the C launch arguments (the
        workspace, when not given, is left to _allocate_workspace).

        Returns (args, keep_alive, out, lse, indices)."""
        if out is None or lse is None or (indices is None and "indices" in self._arg_names):
            import torch  # only needed to allocate outputs

            shape = tuple(int(s) for s in q.shape)
            if out is None:
                out = torch.empty(shape, dtype=q.dtype, device=q.device)
            if lse is None:
                lse = torch.empty(shape[:3], dtype=torch.float32, device=q.device)
            if indices is None and "indices" in self._arg_names:
                topk = self.spec["select"]["topk"]
                indices = torch.empty((shape[0], int(k.shape[1]), shape[2], topk),
                                      dtype=torch.int32, device=q.device)
        device = getattr(q, "device", None)
        keep = []

        def tensor(name, t):
            d = _marshal(name, t, device)
            keep.append(d)
            return ctypes.pointer(d)

        a = _LaunchArgs()
        a.struct_size = ctypes.sizeof(_LaunchArgs)
        a.q = tensor("q", q)
        a.k = tensor("k", k)
        a.v = tensor("v", v)
        a.o = tensor("o", out)
        a.lse = tensor("lse", lse)
        if sinks is not None:
            a.sinks = tensor("sinks", sinks)
        if indexer is not None:
            if len(indexer) != 3:
                raise Error("indexer: expected a tuple (qI, w, kI)", "ATTNRT_ERROR_INVALID_ARGUMENT",
                            "indexer")
            a.indexer_q = tensor("indexer.qI", indexer[0])
            a.indexer_w = tensor("indexer.w", indexer[1])
            a.indexer_k = tensor("indexer.kI", indexer[2])
        if indices is not None:
            a.indices = tensor("indices", indices)
        if workspace is not None:
            a.workspace = tensor("workspace", workspace)
        inputs = dict(inputs or {})
        if inputs:
            arr = (_Input * len(inputs))()
            for i, (name, t) in enumerate(sorted(inputs.items())):
                bname = str(name).encode()
                keep.append(bname)
                arr[i].name = bname
                arr[i].tensor = _marshal("input:%s" % name, t, device)
            keep.append(arr)
            a.inputs = arr
            a.num_inputs = len(inputs)
        if q_offset is not None:
            a.flags |= _HAS_Q_OFFSET
            a.q_offset = int(q_offset)
        if k_offset is not None:
            a.flags |= _HAS_K_OFFSET
            a.k_offset = int(k_offset)
        return a, keep, out, lse, indices

    def _workspace_bytes(self, a):
        """The bytes of workspace the launch described by a needs (checks a)."""
        n = ctypes.c_uint64()
        _check(_library().attnrt_kernel_workspace_bytes(self._handle, ctypes.byref(a),
                                                        ctypes.byref(n)))
        return n.value

    def _allocate_workspace(self, a, keep, q, stream=None):
        """For a variant taking 'workspace' called without one: allocates the
        bytes the launch needs as a torch uint8 tensor on q's device, so that
        PyTorch's caching allocator serves it (rather than a cuMemAllocAsync
        per launch in the runtime), and puts it into a. stream: the launch's
        stream when it is not torch's current one (a torch.cuda.Stream or a
        handle): the tensor is recorded on it, so that the allocator reuses
        the memory only after the work enqueued there."""
        if "workspace" not in self._arg_names or a.workspace:
            return
        n = self._workspace_bytes(a)
        try:
            import torch
        except ImportError:
            raise Error("workspace: variant '%s' needs a workspace of %d bytes; pass workspace= "
                        "(a 1-D CUDA tensor of at least that many bytes), or install torch to have "
                        "it allocated" % (self.name, n), "ATTNRT_ERROR_INVALID_ARGUMENT", "workspace")
        ws = torch.empty((max(1, n),), dtype=torch.uint8, device=q.device)
        if stream is not None:
            if not isinstance(stream, torch.cuda.Stream):
                handle = int(getattr(stream, "cuda_stream", stream))
                stream = (torch.cuda.default_stream(q.device) if handle == 0
                          else torch.cuda.ExternalStream(handle, device=q.device))
            ws.record_stream(stream)
        d = _marshal("workspace", ws, getattr(q, "device", None))
        keep.extend([ws, d])
        a.workspace = ctypes.pointer(d)

    def __call__(self, q, k, v, *, sinks=None, inputs=None, q_offset=None, k_offset=None,
                 out=None, lse=None, indexer=None, indices=None, workspace=None, stream=None):
        """Checks the arguments and launches; returns (out, lse).

        q [B, Hq, Lq, D], k and v [B, Hkv, Lk, D] (bf16 or fp16); sinks [Hq]
        float32 for a variant with a sink; inputs {name: tensor} for the
        runtime inputs the variant reads; indexer (qI, w, kI) for a variant
        selecting by the DSA indexer; q_offset (default Lk - Lq) and k_offset
        (default 0) are absolute positions. out and lse (and indices, for a
        variant that writes selected indices: then (out, lse, indices) is
        returned) are allocated with torch when not given. workspace: the
        scratch of a variant with a chunked selection stage or a summary
        stage (masks reading inputs at token positions, such as documents;
        any 1-D CUDA tensor of at least check()["workspace_bytes"] bytes); default: a
        torch uint8 tensor on q's device, allocated per call. stream: a CUDA
        stream handle (int) or a torch.cuda.Stream; default: torch's current
        stream on q's device.
        """
        a, keep, out, lse, indices = self._prepare(q, k, v, sinks, inputs, q_offset, k_offset,
                                                   out, lse, indexer, indices, workspace)
        self._launch(a, keep, q, stream)
        return (out, lse, indices) if "indices" in self._arg_names else (out, lse)

    def _launch(self, a, keep, q, stream):
        """Allocates the workspace if needed and launches on stream (default:
        torch's current stream on q's device)."""
        device = getattr(q, "device", None)
        if stream is None:
            try:
                import torch
            except ImportError:
                torch = None
            if torch is not None and hasattr(torch, "cuda") and isinstance(device, torch.device):
                # q's device made current for the launch (when it is not already).
                on_device = (contextlib.nullcontext() if device.index in (None, torch.cuda.current_device())
                             else torch.cuda.device(device))
                with on_device:
                    s = torch.cuda.current_stream(device).cuda_stream
                    self._allocate_workspace(a, keep, q)
                    _check(_library().attnrt_kernel_launch(self._handle, ctypes.byref(a),
                                                           ctypes.c_void_p(s)))
                return
            self._allocate_workspace(a, keep, q)
            stream = 0
        else:
            self._allocate_workspace(a, keep, q, stream)
            if hasattr(stream, "cuda_stream"):
                stream = stream.cuda_stream
        _check(_library().attnrt_kernel_launch(self._handle, ctypes.byref(a),
                                               ctypes.c_void_p(int(stream) or None)))

    @property
    def has_backward(self):
        """Whether the module holds this variant's gradient kernels (the
        variant NAME.backward, compiled with --backward=on)."""
        return any(v["name"] == self.name + ".backward" for v in self._module.manifest["variants"])

    def backward(self, q, k, v, out, lse, dout, *, sinks=None, inputs=None, q_offset=None,
                 k_offset=None, dq=None, dk=None, dv=None, workspace=None, stream=None):
        """The gradients of sum(out * dout) through this variant: returns
        (dq, dk, dv), or (dq, dk, dv, dsinks) for a variant with a sink.

        q, k, v, sinks, inputs and the offsets are the forward call's, out and
        lse what it returned; dout is shaped like out. dq, dk and dv (shaped
        like q, k and v; dk and dv summed over a KV group's query heads) are
        allocated with torch when not given. Launches the variant
        NAME.backward of the same module (compile with --backward=on): a dQ
        kernel over query tiles, then a dK/dV kernel over key tiles, both
        deterministic. dsinks [Hq] f32 = -sum over rows of exp(sink - lse) *
        rowsum(dout * out), computed with torch.
        """
        bw = self.__dict__.get("_backward_kernel")  # looked up once: a Kernel reads its manifest entry
        if bw is None:
            if not self.has_backward:
                raise Error("variant '%s' has no gradient kernels in this module: compile it with "
                            "--backward=on (attnc's docs/codegen.md \"Backward\" says which variants can)"
                            % self.name, "ATTNRT_ERROR_NOT_FOUND")
            bw = self._backward_kernel = self._module.variant(self.name + ".backward")
        if dq is None or dk is None or dv is None or sinks is not None:
            import torch  # only needed to allocate gradients and for dsinks

            dq = torch.empty_like(q) if dq is None else dq
            dk = torch.empty_like(k) if dk is None else dk
            dv = torch.empty_like(v) if dv is None else dv
        a, keep, _, _, _ = bw._prepare(q, k, v, None, inputs, q_offset, k_offset, out, lse, None,
                                       None, workspace)
        device = getattr(q, "device", None)
        for name, t in (("dout", dout), ("dq", dq), ("dk", dk), ("dv", dv)):
            d = _marshal(name, t, device)
            keep.append(d)
            setattr(a, name, ctypes.pointer(d))
        bw._launch(a, keep, q, stream)
        if sinks is None:
            return dq, dk, dv
        # The sink's share of each row's softmax is exp(sink - lse); its
        # gradient, like a score's, is that share times (0 - Delta).
        delta = (dout.float() * out.float()).sum(-1)
        share = torch.exp(sinks.float().view(1, -1, 1) - lse)
        dsinks = -(share * delta).sum(dim=(0, 2))
        return dq, dk, dv, dsinks

    def check(self, q, k, v, **kwargs):
        """Checks the arguments like a call would, without launching (no GPU
        needed). Returns the launch plan as a dict: the primary kernel's
        symbol, grid, block and shared_bytes, and workspace_bytes, the
        scratch the launch needs (0 for a variant without a chunked
        selection stage); raises Error for a bad argument."""
        a, keep, *_ = self._prepare(q, k, v, kwargs.get("sinks"), kwargs.get("inputs"),
                                    kwargs.get("q_offset"), kwargs.get("k_offset"),
                                    kwargs.get("out"), kwargs.get("lse"), kwargs.get("indexer"),
                                    kwargs.get("indices"), kwargs.get("workspace"))
        plan = _Plan()
        _check(_library().attnrt_kernel_check(self._handle, ctypes.byref(a), ctypes.byref(plan)))
        workspace_bytes = self._workspace_bytes(a)
        del keep
        return {
            "kernel": self.spec["kernels"][plan.kernel_index]["symbol"],
            "grid": tuple(plan.grid),
            "block": tuple(plan.block),
            "shared_bytes": plan.shared_bytes,
            "workspace_bytes": workspace_bytes,
        }

    def describe(self, q, k, v, **kwargs):
        """Like check(), but returns the runtime's text description of the
        launch: the kernel, grid, block, shared memory and every packed
        parameter ("name=value" lines)."""
        a, keep, *_ = self._prepare(q, k, v, kwargs.get("sinks"), kwargs.get("inputs"),
                                    kwargs.get("q_offset"), kwargs.get("k_offset"),
                                    kwargs.get("out"), kwargs.get("lse"), kwargs.get("indexer"),
                                    kwargs.get("indices"), kwargs.get("workspace"))
        buf = ctypes.create_string_buffer(1 << 16)
        _check(_library().attnrt_kernel_describe_launch(self._handle, ctypes.byref(a), buf, len(buf)))
        del keep
        return buf.value.decode()


class Module:
    """A loaded attnc module: its manifest and its kernels."""

    def __init__(self, handle):
        self._handle = handle
        lib = _library()
        #: The manifest (docs/runtime.md), as a dict.
        self.manifest = json.loads(lib.attnrt_module_manifest_json(handle).decode())
        #: Number of layers of the module's model (0 without a model).
        self.num_layers = int(lib.attnrt_module_num_layers(handle))
        report = lib.attnrt_module_compile_report_json(handle).decode()
        #: For a module from compile(): what it did, as a dict ("cache": "hit",
        #: "miss" or "off"; "key", "cache_dir", "compile_seconds",
        #: "load_seconds", "ptx_bytes"); None for a loaded module.
        self.compile_report = json.loads(report) if report else None

    def __del__(self):
        if _lib is not None and getattr(self, "_handle", None):
            _lib.attnrt_module_free(self._handle)
            self._handle = None

    @property
    def variants(self):
        """The names of the module's attention variants."""
        return [v["name"] for v in self.manifest["variants"]]

    def variant(self, name):
        """The Kernel of the variant called name."""
        h = ctypes.c_void_p()
        _check(_library().attnrt_module_variant(self._handle, str(name).encode(), ctypes.byref(h)))
        return Kernel(self, h)

    def layer(self, i):
        """The Kernel that the module's model assigns to layer i."""
        h = ctypes.c_void_p()
        _check(_library().attnrt_module_layer(self._handle, int(i), ctypes.byref(h)))
        return Kernel(self, h)

    def __repr__(self):
        return "<attnc.Module %s: %s>" % (self.manifest.get("target"), ", ".join(self.variants))


def load(path, lazy=False):
    """Loads a module: PTX with its embedded manifest, or a cubin with its
    sidecar manifest (path + ".json"). lazy=True only reads the manifest; the
    CUDA module is loaded at the first launch (no GPU needed until then)."""
    h = ctypes.c_void_p()
    _check(_library().attnrt_module_load_file(os.fsencode(path), _LOAD_LAZY if lazy else 0,
                                              ctypes.byref(h)))
    return Module(h)


def load_data(image, manifest=None, lazy=False, name="<memory>"):
    """Loads a module from bytes (PTX, or cubin with manifest JSON given)."""
    if isinstance(image, str):
        image = image.encode()
    if isinstance(manifest, dict):
        manifest = json.dumps(manifest)
    h = ctypes.c_void_p()
    _check(_library().attnrt_module_load_data(image, len(image),
                                              manifest.encode() if manifest else None,
                                              _LOAD_LAZY if lazy else 0, name.encode(),
                                              ctypes.byref(h)))
    return Module(h)


def describe_compile_report(report):
    """One line saying what a compile() did (Module.compile_report)."""
    key = report["key"][:16]
    load = "loaded in %.1f ms" % (report["load_seconds"] * 1e3)
    size = "%d KB of PTX" % ((report["ptx_bytes"] + 1023) // 1024)
    if report["cache"] == "hit":
        return "attnc.compile: cache hit (%s in %s): read in %.1f ms, %s, %s" % (
            key, report["cache_dir"], report["compile_seconds"] * 1e3, load, size)
    where = ("cache miss, stored as %s in %s" % (key, report["cache_dir"])
             if report["cache"] == "miss" else "cache off")
    return "attnc.compile: compiled in %.2f s (%s), %s, %s" % (
        report["compile_seconds"], where, load, size)


def compile(source, *, target=None, cache_dir=None, use_cache=True, lazy=False, defines=None,
            options=None, verbose=None, **params):
    """Compiles attnc source in-process (through the disk cache) and loads it.

    Keyword arguments other than the named ones override `param`s, like
    ``attnc -D NAME=VALUE`` (use defines={...} for a param whose name clashes
    with a keyword). Raises Error with status ATTNRT_ERROR_NO_COMPILER in
    builds without the compiler (ATTNC_WITH_MLIR=OFF). `options` passes
    compiler options by name, e.g. {"head_dims": "128", "dtypes": "bf16"}
    (default: every head dim and dtype), and the driver's tuning flags
    ("tile", "ctas_per_sm", "kv_stages", "persistent", "overlap", "backend"), e.g.
    {"persistent": "on"}. verbose=True (default: the
    environment variable ATTNC_VERBOSE set to 1) prints one line to stderr
    saying what was done: compiled (how long) or served from the cache (a hit),
    and the time to load; the returned Module's compile_report has the same
    as a dict."""
    opts = []
    for k, v in sorted((options or {}).items()):
        opts.append("%s=%s" % (k, v))
    if target:
        opts.append("target=%s" % target)
    if cache_dir:
        opts.append("cache_dir=%s" % cache_dir)
    if not use_cache:
        opts.append("cache=0")
    if lazy:
        opts.append("lazy=1")
    merged = dict(defines or {})
    merged.update(params)
    for k, v in sorted(merged.items()):
        if isinstance(v, bool):
            v = "true" if v else "false"
        opts.append("-D%s=%s" % (k, v))
    arr = (ctypes.c_char_p * max(1, len(opts)))(*[o.encode() for o in opts])
    h = ctypes.c_void_p()
    _check(_library().attnrt_compile(source.encode(), arr, len(opts), ctypes.byref(h)))
    m = Module(h)
    if verbose is None:
        verbose = os.environ.get("ATTNC_VERBOSE", "") not in ("", "0")
    if verbose:
        import sys
        print(describe_compile_report(m.compile_report), file=sys.stderr, flush=True)
    return m
