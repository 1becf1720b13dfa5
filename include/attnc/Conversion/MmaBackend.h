//===- MmaBackend.h - Where the tile stage meets the hardware ----*- C++ -*-===//
//
// The tile stage (attn.tile.*) says what one kernel instance computes on
// whole tiles; an MMA backend says how: the threads and their roles, the
// register layout of every tile (which lane holds which row and column, how
// S becomes the A operand of P V, how rows reduce), the shared-memory layout
// (padding or swizzle), how K/V loads are pipelined across the key loop and
// when the running maximum moves. `attn-tile-variants` asks it for tile
// sizes; `convert-attn-tile-to-gpu` asks it to lower each kernel.
//
// To add a backend (wgmma + TMA for sm_90a, say): implement this interface
// in lib/Conversion/AttnToGPU/, return it from createMmaBackend under a new
// name, and give it lit tests in test/Conversion/. docs/codegen.md walks
// through it.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/Analysis/KeyIntervals.h"

#include "mlir/Support/LogicalResult.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <memory>
#include <string>

namespace mlir {
class Operation;
namespace gpu {
class GPUModuleOp;
} // namespace gpu
} // namespace mlir

namespace attnc {
namespace attn {
class VariantOp;
class TileKernelOp;
} // namespace attn

/// The tile sizes and occupancy of one kernel (the attn.tile.kernel attributes).
struct TileChoice {
  int64_t blockM = 0, blockN = 0, ctasPerSm = 1;
};

/// Tuning overrides of the backend's choice (0: the backend's).
struct TileOverrides {
  int64_t blockM = 0, blockN = 0, ctasPerSm = 0;
};

/// Tuning overrides of how the backend lowers a kernel (0: the backend's).
struct LoweringOverrides {
  int64_t kvStages = 0; ///< K/V ring slots of the warp-specialised wgmma kernel (2-4)
  /// A persistent grid for the warp-specialised wgmma kernel: -1 the
  /// backend's choice (off: experimental), 0 off, 1 wherever it applies.
  int64_t persistent = -1;
  /// The warp-specialised wgmma kernel's softmax overlapped with its GEMMs
  /// inside each compute warpgroup: -1 the backend's choice (on), 0 off, 1 on.
  int64_t overlap = -1;
};

class MmaBackend {
public:
  virtual ~MmaBackend() = default;
  /// The name the passes' `backend=` option takes ("mma-sync").
  virtual llvm::StringRef name() const = 0;
  /// Tile sizes and occupancy for `variant` at `headDim`.
  virtual TileChoice chooseTiles(attn::VariantOp variant, const analysis::KeyIntervals &intervals, int64_t headDim,
                                 const TileOverrides &overrides) const = 0;
  /// Lowers `kernel` into `module` as one gpu.func that describes its
  /// runtime ABI (attn.arg on each argument, attn.kernel_info on the
  /// function). `intervals` are the kernel's variant's key intervals.
  virtual mlir::LogicalResult lowerKernel(attn::TileKernelOp kernel, const analysis::KeyIntervals &intervals,
                                          mlir::gpu::GPUModuleOp module) const = 0;
};

/// The backend named `name` for `target` (sm_80, sm_90a), or null after an
/// error on `diagnose` ("expected backend mma-sync or wgmma, got 'tcgen05'").
std::unique_ptr<MmaBackend> createMmaBackend(llvm::StringRef name, llvm::StringRef target, mlir::Operation *diagnose,
                                             LoweringOverrides overrides = {});

} // namespace attnc
