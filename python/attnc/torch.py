"""attnc.torch: attnc kernels as a PyTorch operator and module.

    import attnc, attnc.torch, torch
    kernel = attnc.compile("attention w { mask k <= q && q - k < 256; }").variant("w")
    out = attnc.torch.attention(q, k, v, kernel)          # q [B, Hq, Lq, D], k/v [B, Hkv, Lk, D]
    layer = attnc.torch.Attention(kernel)                  # an nn.Module doing the same
    out = torch.compile(model)(x)                          # traced without graph breaks

The kernel runs as the custom operator ``torch.ops.attnc.attention``
(torch.library.custom_op), with a fake implementation that gives
torch.compile (and FakeTensor / meta tracing) the shapes of its results:
out like q, and lse [B, Hq, Lq] float32. Under the operator is the same
launch as ``kernel(q, k, v, ...)``: the runtime checks every argument (an
attnc.Error names the bad one), tensors may have any strides PyTorch gives
them with the head dim contiguous (a [B, L, H, D] tensor's .transpose(1, 2)
works), and the kernel runs on PyTorch's current stream of q's device.

Runtime inputs of a pattern (document ids, flags, slopes) are keyword
arguments by their name in the source; sinks, q_offset and k_offset as for
Kernel.__call__. Variants that select keys (``select topk``, DeepSeek's
sparse attention) run as ``torch.ops.attnc.attention_select``, which also
returns the selected key indices [B, Hkv, Lq, K] int32 (-1 where a row has
fewer than K allowed keys); the indexer's tensors are ``indexer=(qI, w, kI)``.
There is no backward yet: no autograd formula is registered for either
operator (register_autograd comes with the backward kernels), so run them
under torch.no_grad() or torch.inference_mode(), as the GPU checks do.
"""

from typing import List, Optional, Tuple

import torch

from . import Error, Kernel, _live_kernels

__all__ = ["attention", "Attention"]


def _kernel_by_key(key):
    kernel = _live_kernels.get(key)
    if kernel is None:
        raise Error("attnc.torch: no live attnc kernel has key '%s' (the Kernel object was freed; "
                    "keep a reference to it, as attnc.torch.Attention does)" % key,
                    "ATTNRT_ERROR_INVALID_ARGUMENT", "kernel")
    return kernel


def _inputs(input_names, input_tensors):
    """The operators' runtime inputs as a dict: input_names is their names
    joined by commas (operator schemas take no list of strings; the names are
    identifiers)."""
    return dict(zip(input_names.split(",") if input_names else [], input_tensors))


@torch.library.custom_op("attnc::attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str,
                  sinks: Optional[torch.Tensor], input_names: str,
                  input_tensors: List[torch.Tensor], q_offset: Optional[int],
                  k_offset: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """One attnc launch: (out, lse) for the kernel whose Kernel.key is `kernel`."""
    return _kernel_by_key(kernel)(q, k, v, sinks=sinks, inputs=_inputs(input_names, input_tensors),
                                  q_offset=q_offset, k_offset=k_offset)


def _check_ranks(q, k, v):
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise Error("attnc.torch.attention: q, k and v must be 4-D [batch, heads, length, head_dim], "
                    "got %d-D, %d-D and %d-D" % (q.dim(), k.dim(), v.dim()),
                    "ATTNRT_ERROR_INVALID_ARGUMENT", "q" if q.dim() != 4 else ("k" if k.dim() != 4 else "v"))


@_attention_op.register_fake
def _attention_fake(q, k, v, kernel, sinks, input_names, input_tensors, q_offset, k_offset):
    _check_ranks(q, k, v)
    return q.new_empty(q.shape), q.new_empty(q.shape[:3], dtype=torch.float32)


@torch.library.custom_op("attnc::attention_select", mutates_args=())
def _attention_select_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kernel: str,
                         sinks: Optional[torch.Tensor], input_names: str,
                         input_tensors: List[torch.Tensor], q_offset: Optional[int],
                         k_offset: Optional[int], indexer_q: Optional[torch.Tensor],
                         indexer_w: Optional[torch.Tensor],
                         indexer_k: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One launch of a selecting variant: (out, lse, indices)."""
    indexer = None if indexer_q is None else (indexer_q, indexer_w, indexer_k)
    return _kernel_by_key(kernel)(q, k, v, sinks=sinks, inputs=_inputs(input_names, input_tensors),
                                  q_offset=q_offset, k_offset=k_offset, indexer=indexer)


@_attention_select_op.register_fake
def _attention_select_fake(q, k, v, kernel, sinks, input_names, input_tensors, q_offset, k_offset,
                           indexer_q, indexer_w, indexer_k):
    _check_ranks(q, k, v)
    topk = _kernel_by_key(kernel).spec["select"]["topk"]
    return (q.new_empty(q.shape), q.new_empty(q.shape[:3], dtype=torch.float32),
            q.new_empty((q.shape[0], k.shape[1], q.shape[2], topk), dtype=torch.int32))


def _key(kernel):
    if isinstance(kernel, Kernel):
        return kernel.key
    raise Error("attnc.torch: kernel must be an attnc.Kernel (module.variant(name) or "
                "module.layer(i)), got %s" % type(kernel).__name__, "ATTNRT_ERROR_INVALID_ARGUMENT",
                "kernel")


def _launch(q, k, v, key, selects, sinks, indexer, q_offset, k_offset, inputs, return_lse, return_indices):
    """The operator for the kernel `key` (whose variant selects keys if
    `selects`); returns out, then lse and indices as asked."""
    names = sorted(inputs)
    tensors = [inputs[n] for n in names]
    if selects:
        iq, iw, ik = indexer if indexer is not None else (None, None, None)
        out, lse, indices = _attention_select_op(q, k, v, key, sinks, ",".join(names), tensors,
                                                 q_offset, k_offset, iq, iw, ik)
    else:
        if indexer is not None or return_indices:
            raise Error("attnc.torch: kernel %s selects no keys: it takes no indexer and returns no "
                        "indices" % key, "ATTNRT_ERROR_INVALID_ARGUMENT",
                        "indexer" if indexer is not None else "kernel")
        out, lse = _attention_op(q, k, v, key, sinks, ",".join(names), tensors, q_offset, k_offset)
        indices = None
    result = (out,) + ((lse,) if return_lse else ()) + ((indices,) if return_indices else ())
    return result if len(result) > 1 else out


def attention(q, k, v, kernel, *, sinks=None, indexer=None, q_offset=None, k_offset=None,
              return_lse=False, return_indices=False, **inputs):
    """Attention of q over k and v under the pattern of `kernel` (an
    attnc.Kernel). q [B, Hq, Lq, D], k and v [B, Hkv, Lk, D], bf16 or fp16;
    inputs: the variant's runtime input tensors by name; indexer: (qI, w, kI)
    for a variant selecting by the DSA indexer. Returns out (like q), or a
    tuple of out, lse (return_lse=True: [B, Hq, Lq] float32, natural log,
    -inf for a row that attends to nothing) and indices (return_indices=True,
    selecting variants only: [B, Hkv, Lq, K] int32, -1 past a row's allowed
    keys), in that order."""
    return _launch(q, k, v, _key(kernel), kernel.selects, sinks, indexer, q_offset, k_offset, inputs,
                   return_lse, return_indices)


class Attention(torch.nn.Module):
    """attention() as a module: ``Attention(kernel)(q, k, v, **inputs)``.

    kernel: an attnc.Kernel (held, so it stays alive as long as the module).
    return_lse, return_indices: as for attention(). sinks: a [Hq] float32
    tensor of sink logits for a variant with a sink, registered as a buffer
    (or pass sinks= per call)."""

    def __init__(self, kernel, *, return_lse=False, return_indices=False, sinks=None):
        super().__init__()
        self.kernel_key = _key(kernel)
        self.selects = kernel.selects
        self._kernel = kernel
        self.return_lse = return_lse
        self.return_indices = return_indices
        if sinks is not None:
            self.register_buffer("sinks", sinks)
        else:
            self.sinks = None

    def forward(self, q, k, v, sinks=None, indexer=None, q_offset=None, k_offset=None, **inputs):
        return _launch(q, k, v, self.kernel_key, self.selects, self.sinks if sinks is None else sinks,
                       indexer, q_offset, k_offset, inputs, self.return_lse, self.return_indices)

    def extra_repr(self):
        return "kernel=%s" % self.kernel_key
