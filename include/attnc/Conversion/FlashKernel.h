//===- FlashKernel.h - What a generated kernel tells the runtime -*- C++ -*-===//
//
// The kernel ABI as the code generator records it: each kernel parameter's
// name and kind, and what the runtime needs to launch the kernel. A backend
// (MmaBackend.h) writes it into the IR: on each gpu.func argument
// `attn.arg` (the name) and, for a TMA descriptor, `attn.tensormap`
// ({tensor, box, swizzle}); on the gpu.func `attn.kernel_info` (variant,
// head_dim, elem, block_m, block_n, threads, shared_bytes, and optionally
// stage and grid for a variant of several kernels). GenerateKernels.h reads
// it back for the manifest (docs/runtime.md).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnc {

/// One kernel parameter as the runtime's manifest names it.
struct KernelArg {
  std::string name;       ///< docs/runtime.md's vocabulary: q, q_stride_b, qlen, input:doc, tmap:q, ...
  enum Kind { Ptr, I64, F32, TensorMap } kind = Ptr;
  // For a TensorMap (a 128-byte CUtensorMap the runtime encodes at launch):
  std::string tensor;        ///< the tensor it describes: q, k, v or o
  std::vector<int64_t> box;  ///< the tile one TMA copy moves, in elements, outermost first
  int64_t swizzleBytes = 0;  ///< 0 (none), 32, 64 or 128
};

/// The revision of the generated code: bump it whenever the kernels this
/// template produces change, so that JIT caches filled by an older compiler
/// (keyed by the compiler's version string) miss instead of serving them.
/// 2: lazy rescaling, 128x64 tiles, per-warp masks, shared-memory epilogue.
/// 3: the wgmma backend by default on sm_90a; the epilogue waits for every
///    copy and synchronises before reusing the Q tile.
/// 4: wgmma at 128 rows warp specialised (TMA producer, ping-pong), 128 x 128
///    tiles at d <= 128.
/// 5: DSA's three stages; masks reading inputs at token positions
///    (documents) get a summary stage and the warp-specialised kernel.
/// 6: a floor division of k inside a sum is solved into key bounds (chunks
///    with look-back get closed-form tile bounds, no mask kept as rest).
/// 7: the gradient kernels (--backward=on).
/// 8: sm_90a's gradient kernels on wgmma; the warp-specialised kernel's
///    softmax overlapped with its GEMMs (--overlap).
/// 9: DSA: the fp8 wgmma indexer, the two-pass top-k and its branch-free
///    loads.
inline constexpr int kKernelRevision = 9;

/// What the runtime needs to launch the kernel.
struct KernelInfo {
  std::string symbol;
  int64_t blockM = 0, blockN = 0, threads = 0, sharedBytes = 0;
  std::vector<KernelArg> args;
  /// For a variant of several kernels: this one's step ("indexer", "topk",
  /// "attention", ...), in launch order of the module; "" for the only one.
  std::string stage;
  /// Its own grid rule ("qtiles_heads_batch", ...), "" for the variant's.
  std::string grid;
  /// Bytes of workspace per key and query row (a select stage), else 0.
  int64_t workspacePerKey = 0;
  /// Bytes of workspace per (batch entry, query head, tile) (a summary stage), else 0.
  int64_t workspacePerTile = 0;
  /// Bytes of workspace per (batch entry, query head, query row) (the
  /// gradient kernels' Delta), else 0.
  int64_t workspacePerRow = 0;
};

} // namespace attnc
