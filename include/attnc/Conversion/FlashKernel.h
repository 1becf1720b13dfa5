//===- FlashKernel.h - The fused attention kernel template -------*- C++ -*-===//
//
// One kernel template, specialised by the tile analysis: a FlashAttention-2
// style forward kernel for sm_80+ (mma.sync m16n8k16 with fp32 accumulation,
// ldmatrix, cp.async), built as a gpu.func in the gpu/scf/arith/memref/
// vector/nvgpu/nvvm dialects. What varies per variant is spliced in from the
// attn.variant: the key-tile loop bounds and tile classes come from the key
// intervals (closed forms evaluated per query tile), the mask and score
// regions are cloned into the per-element code of partial tiles, and the
// sink and scale are folded in.
//
// Layout of one CTA (4 warps, 128 threads): block_m query rows (64 or 128),
// block_m / 4 per warp; keys stream in tiles of block_n (32 or 64) through
// double-buffered shared memory; each warp keeps its output accumulator and
// its running max and sum in registers. TilePolicy.h chooses the tiles from
// the head dim, the variant's register pressure and the target. See
// docs/codegen.md.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/KeyIntervals.h"
#include "attnc/Conversion/TilePolicy.h"

#include "mlir/IR/Builders.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::gpu {
class GPUModuleOp;
} // namespace mlir::gpu

namespace attnc {
namespace attn {
class VariantOp;
} // namespace attn

/// What one specialisation is for.
struct KernelConfig {
  int64_t headDim = 128;  ///< 64, 128 or 256
  bool bf16 = true;       ///< else fp16
  std::string symbol;     ///< the kernel's name
  int64_t blockM = 0;     ///< 0: flashBlockM(headDim); else 64 or 128 (tuning)
  int64_t blockN = 0;     ///< 0: flashBlockN(headDim); else 32 or 64 (tuning)
  int64_t ctasPerSm = 0;  ///< 0: flashCtasPerSm (1 with a --tile override); else the CTAs an SM should fit (tuning)
  bool hopper = true;     ///< for sm_90a, else sm_80 (ptxas allocates registers differently)
};

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

/// Builds the kernel for `variant` into `module`. `inputs` names the module's
/// attn.input symbols the variant reads (in the order their pointers are
/// passed).
KernelInfo buildFlashKernel(mlir::OpBuilder &builder, mlir::gpu::GPUModuleOp module, attn::VariantOp variant,
                            const analysis::KeyIntervals &intervals, const KernelConfig &config);

} // namespace attnc
