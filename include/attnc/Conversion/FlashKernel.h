//===- FlashKernel.h - What a generated kernel tells the runtime -*- C++ -*-===//
//
// The kernel ABI as the code generator records it: each kernel parameter's
// name and kind, and what the runtime needs to launch the kernel. The
// mma.sync backend (MmaBackend.h) writes it into the IR (attn.arg,
// attn.kernel_info); GenerateKernels.h reads it back for the manifest.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace attnc {

/// One kernel parameter as the runtime's manifest names it.
struct KernelArg {
  std::string name;       ///< docs/runtime.md's vocabulary: q, q_stride_b, qlen, input:doc, ...
  enum Kind { Ptr, I64, F32 } kind = Ptr;
};

/// The revision of the generated code: bump it whenever the kernels this
/// template produces change, so that JIT caches filled by an older compiler
/// (keyed by the compiler's version string) miss instead of serving them.
/// 2: lazy rescaling, 128x64 tiles, per-warp masks, shared-memory epilogue.
inline constexpr int kKernelRevision = 2;

/// What the runtime needs to launch the kernel.
struct KernelInfo {
  std::string symbol;
  int64_t blockM = 0, blockN = 0, threads = 0, sharedBytes = 0;
  std::vector<KernelArg> args;
};

} // namespace attnc
