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

Autograd: ``torch.ops.attnc.attention`` has a backward (register_autograd),
so ``loss.backward()`` gives q, k and v (and sinks) their gradients, in eager
mode and under torch.compile (the gradient kernels run as the operator
``torch.ops.attnc.attention_backward``, traced like the forward). It needs
the variant's gradient kernels: compile with ``options={"backward": "on"}``
(``attnc --backward=on``); a kernel without them raises attnc.Error when the
backward runs. Runtime inputs (document ids, flags, slopes) and offsets get
no gradient. A loss that uses the LSE (return_lse=True) is differentiated
through it too, at the price of one more launch of the gradient kernels.
Selecting variants have no backward yet: run them under torch.no_grad() or
torch.inference_mode().
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
                  k_offset: Optional[int], lse_gradient: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """One attnc launch: (out, lse) for the kernel whose Kernel.key is `kernel`.
    lse_gradient: whether the caller asked for the LSE, which is then
    differentiable (else it is marked non-differentiable, so that autograd,
    eager or compiled, never takes the LSE's share of the backward)."""
    return _kernel_by_key(kernel)(q, k, v, sinks=sinks, inputs=_inputs(input_names, input_tensors),
                                  q_offset=q_offset, k_offset=k_offset)


def _check_ranks(q, k, v):
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise Error("attnc.torch.attention: q, k and v must be 4-D [batch, heads, length, head_dim], "
                    "got %d-D, %d-D and %d-D" % (q.dim(), k.dim(), v.dim()),
                    "ATTNRT_ERROR_INVALID_ARGUMENT", "q" if q.dim() != 4 else ("k" if k.dim() != 4 else "v"))


@_attention_op.register_fake
def _attention_fake(q, k, v, kernel, sinks, input_names, input_tensors, q_offset, k_offset, lse_gradient):
    _check_ranks(q, k, v)
    return q.new_empty(q.shape), q.new_empty(q.shape[:3], dtype=torch.float32)


def _vector_aligned(t):
    """t itself if the kernels can read it (head dim contiguous, base and
    strides 16-byte aligned), else a contiguous copy: autograd hands the
    backward gradients of any layout, such as an expanded scalar's zero
    strides."""
    es, strides = t.element_size(), t.stride()
    if strides[-1] == 1 and t.data_ptr() % 16 == 0 and all(s * es % 16 == 0 for s in strides[:-1]):
        return t
    return t.contiguous()


@torch.library.custom_op("attnc::attention_backward", mutates_args=())
def _attention_backward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
                           lse: torch.Tensor, dout: torch.Tensor, kernel: str,
                           sinks: Optional[torch.Tensor], input_names: str,
                           input_tensors: List[torch.Tensor], q_offset: Optional[int],
                           k_offset: Optional[int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradient kernels of `kernel` (Kernel.backward): (dq, dk, dv,
    dsinks), dsinks [Hq] float32, or empty ([0]) for a call without sinks."""
    grads = _kernel_by_key(kernel).backward(q, k, v, out, lse, _vector_aligned(dout), sinks=sinks,
                                            inputs=_inputs(input_names, input_tensors),
                                            q_offset=q_offset, k_offset=k_offset)
    dsinks = grads[3] if sinks is not None else q.new_empty((0,), dtype=torch.float32)
    return grads[0], grads[1], grads[2], dsinks


@_attention_backward_op.register_fake
def _attention_backward_fake(q, k, v, out, lse, dout, kernel, sinks, input_names, input_tensors,
                             q_offset, k_offset):
    dsinks = (q.new_empty((0,), dtype=torch.float32) if sinks is None
              else sinks.new_empty(sinks.shape, dtype=torch.float32))
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v), dsinks


def _attention_setup_context(ctx, inputs, output):
    q, k, v, kernel, sinks, input_names, input_tensors, q_offset, k_offset, lse_gradient = inputs
    out, lse = output
    if not lse_gradient:
        ctx.mark_non_differentiable(lse)
    # A gradient of None for an output the loss does not use (most often
    # lse), so that the backward skips the LSE's share.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(q, k, v, out, lse, sinks, *input_tensors)
    ctx.kernel, ctx.input_names, ctx.q_offset, ctx.k_offset = kernel, input_names, q_offset, k_offset


#: How many backward calls took the LSE's share (a loss using return_lse's
#: lse); the GPU checks read it.
lse_gradient_calls = 0


def _attention_autograd(ctx, grad_out, grad_lse):
    global lse_gradient_calls
    q, k, v, out, lse, sinks, *tensors = ctx.saved_tensors
    # One gradient per input, in the inputs' structure (a list for input_tensors).
    none = (None, None, None, None, None, None, [None] * len(tensors), None, None, None)
    if grad_out is None and grad_lse is None:
        return none
    rest = (ctx.kernel, sinks, ctx.input_names, tensors, ctx.q_offset, ctx.k_offset)
    dout = torch.zeros_like(out) if grad_out is None else grad_out
    dq, dk, dv, dsinks = _attention_backward_op(q, k, v, out, lse, dout, *rest)
    if grad_lse is not None:
        # d lse_i / d s_ij = P_ij (times a score rule's slope): the LSE's
        # gradient adds P_ij dlse_i to dS_ij = P_ij (dP_ij - Delta_i). That is
        # the dS of a second backward with dP = 0 (V = 0) and Delta_i =
        # -dlse_i (output rows e_0, output gradient rows -dlse_i e_0): its dq,
        # dk and dsinks are the LSE's share, with the masks, the score rule
        # and GQA as the kernels have them (its dv is discarded).
        lse_gradient_calls += 1
        dlse = torch.where(torch.isfinite(lse), grad_lse, torch.zeros_like(grad_lse))
        unit, dunit = torch.zeros_like(q), torch.zeros_like(q)
        unit[..., 0] = 1
        dunit[..., 0] = -dlse
        lq, lk, _, ls = _attention_backward_op(q, k, torch.zeros_like(v), unit, lse, dunit, *rest)
        dq = (dq.float() + lq.float()).to(dq.dtype)
        dk = (dk.float() + lk.float()).to(dk.dtype)
        if sinks is not None:
            dsinks = dsinks + ls
    return (dq, dk, dv, None, dsinks if sinks is not None else None) + none[5:]


torch.library.register_autograd("attnc::attention", _attention_autograd,
                                setup_context=_attention_setup_context)


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


def _attention_select_autograd(ctx, grad_out, grad_lse, grad_indices):
    raise Error("attnc.torch: variant %s selects keys (select topk), and selecting variants have no "
                "backward yet; run it under torch.no_grad() or torch.inference_mode()" % ctx.kernel,
                "ATTNRT_ERROR_USAGE", "kernel")


def _attention_select_setup_context(ctx, inputs, output):
    ctx.kernel = inputs[3]


torch.library.register_autograd("attnc::attention_select", _attention_select_autograd,
                                setup_context=_attention_select_setup_context)


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
        out, lse = _attention_op(q, k, v, key, sinks, ",".join(names), tensors, q_offset, k_offset,
                                 return_lse)
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
    tensor of sink logits for a variant with a sink, registered as a buffer,
    or as a parameter when it is a torch.nn.Parameter (learned sinks, which
    the backward gives a gradient); or pass sinks= per call."""

    def __init__(self, kernel, *, return_lse=False, return_indices=False, sinks=None):
        super().__init__()
        self.kernel_key = _key(kernel)
        self.selects = kernel.selects
        self._kernel = kernel
        self.return_lse = return_lse
        self.return_indices = return_indices
        if isinstance(sinks, torch.nn.Parameter):
            self.register_parameter("sinks", sinks)
        elif sinks is not None:
            self.register_buffer("sinks", sinks)
        else:
            self.sinks = None

    def forward(self, q, k, v, sinks=None, indexer=None, q_offset=None, k_offset=None, **inputs):
        return _launch(q, k, v, self.kernel_key, self.selects, self.sinks if sinks is None else sinks,
                       indexer, q_offset, k_offset, inputs, self.return_lse, self.return_indices)

    def extra_repr(self):
        return "kernel=%s" % self.kernel_key
