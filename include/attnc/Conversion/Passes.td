//===- Passes.td - attnc's passes ---------------------------*- tablegen -*-===//
//
// The passes from attn.variant to kernels ready for the NVPTX backend, in
// pipeline order (Pipelines.cpp builds the pipelines from them):
//   attn-tile-variants          attn.variant -> attn.tile.kernel (tile stage)
//   convert-attn-tile-to-gpu    attn.tile.kernel -> gpu.module/gpu.func, per MMA backend
//   attn-lower-region-ops       attn.read, attn.floormod, math -> memref/arith/nvvm
//   attn-extern-dynamic-shared-memory   the kernels' dynamic shared memory as .extern .shared
//
//===----------------------------------------------------------------------===//
#ifndef ATTNC_CONVERSION_PASSES_TD
#define ATTNC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def AttnTileVariants : Pass<"attn-tile-variants", "mlir::ModuleOp"> {
  let summary = "Build the tile stage: one attn.tile.kernel per variant, head dim and dtype";
  let description = [{
    For every `attn.variant` of the module (in order), runs the tile
    analysis and, for every requested head dim and element type, appends an
    `attn.tile.kernel` whose tile sizes and occupancy the chosen MMA backend
    picks from the head dim, the target and the variant's register pressure
    (TilePolicy.h). The tile program is the same for every variant; what
    varies is which steps appear:

    1. `attn.tile.load_q`;
    2. `attn.tile.key_loop` (with `sink` when the variant has one), its body
       `load_k`, `qk`, a `score` step when the scale cannot be folded into
       the exponent (a score rule, or a non-positive scale), `mask` by
       intervals (solved masks) or by region (unsolved conditions),
       `rescale`, `exp`, `load_v`, `pv` and the running sum's `arith.addf`;
    3. `attn.tile.epilogue`.

    A variant with `topk` selection gets its select, topk and attention
    stages. With `backward`, every variant without a score rule or a
    selection also gets its two gradient kernels (stages backward_dq and
    backward_dkdv) at head dims 64 and 128; the others get a warning.

    ```
    attnc-opt --attn-tile-variants='head-dims=128 dtypes=bf16' in.mlir
    ```
  }];
  let options = [
    ListOption<"headDims", "head-dims", "int64_t", "Head dims to specialise for (64, 128, 256; default all)">,
    ListOption<"dtypes", "dtypes", "std::string", "Element types: bf16, fp16 (default both)">,
    Option<"backend", "backend", "std::string", /*default=*/"\"mma-sync\"", "The MMA backend that picks the tiles: mma-sync or wgmma">,
    Option<"target", "target", "std::string", /*default=*/"\"sm_90a\"", "The GPU: sm_80 or sm_90a">,
    Option<"blockM", "block-m", "int64_t", /*default=*/"0", "Query rows per tile (tuning; 0: the backend's)">,
    Option<"blockN", "block-n", "int64_t", /*default=*/"0", "Keys per tile (tuning; 0: the backend's)">,
    Option<"ctasPerSm", "ctas-per-sm", "int64_t", /*default=*/"0", "CTAs an SM should hold (tuning; 0: the backend's)">,
    Option<"backward", "backward", "bool", /*default=*/"false", "Also the gradient kernels (stages backward_dq, backward_dkdv)">,
  ];
  let dependentDialects = ["::attnc::attn::AttnDialect"];
}

def ConvertAttnTileToGPU : Pass<"convert-attn-tile-to-gpu", "mlir::ModuleOp"> {
  let summary = "Lower each attn.tile.kernel into a gpu.func of its own gpu.module";
  let description = [{
    Replaces every `attn.tile.kernel @K` by `gpu.module @attnc_K` holding
    the kernel `gpu.func @K` (and marks the module a GPU container). The MMA
    backend (`backend`, MmaBackend.h) owns everything the tile stage leaves
    open: threads and warps, the register layout of every tile (a fragment
    class), the shared-memory layout, how K/V loads are pipelined across the
    key loop, when the running maximum moves. The variant's mask and score
    regions are cloned where the backend evaluates them per element, then
    lowered by `attn-lower-region-ops`' patterns.

    The kernel describes itself for the runtime: each argument carries
    `attn.arg` (its name in docs/runtime.md's vocabulary: `q`,
    `q_stride_b`, `input:doc`, ...) and the function `attn.kernel_info`
    (`block_m`, `block_n`, `threads`, `shared_bytes`, `head_dim`, `elem`,
    `variant`).

    Backends: `mma-sync` (mma.sync m16n8k16, ldmatrix, cp.async; sm_80 and
    newer).
  }];
  let options = [
    Option<"backend", "backend", "std::string", /*default=*/"\"mma-sync\"", "The MMA backend: mma-sync (sm_80, sm_90a) or wgmma (sm_90a; the driver's default there)">,
    Option<"target", "target", "std::string", /*default=*/"\"sm_90a\"", "The GPU: sm_80 or sm_90a">,
    Option<"kvStages", "kv-stages", "int64_t", /*default=*/"0", "K/V ring slots of the warp-specialised wgmma kernel, 2-4 (tuning; 0: the backend's, 2)">,
    Option<"persistent", "persistent", "int64_t", /*default=*/"-1", "A persistent grid for the warp-specialised wgmma kernel: 1 wherever it applies, 0 never, -1 the backend's choice (off; experimental)">,
    Option<"overlap", "overlap", "int64_t", /*default=*/"-1", "The warp-specialised wgmma kernel's softmax overlapped with its GEMMs inside each compute warpgroup: 1 on, 0 off, -1 the backend's choice (on)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::gpu::GPUDialect", "::mlir::LLVM::LLVMDialect",
    "::mlir::memref::MemRefDialect", "::mlir::NVVM::NVVMDialect", "::mlir::nvgpu::NVGPUDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect"
  ];
}

def AttnLowerRegionOps : Pass<"attn-lower-region-ops"> {
  let summary = "Lower the ops of cloned mask and score regions inside kernels";
  let description = [{
    Rewrite patterns (`populateAttnRegionOpLoweringPatterns`) for the ops a
    variant's regions use that have no direct GPU lowering, applied inside
    every function whose arguments carry `attn.arg` names:

    - `attn.read @doc[i, j]` -> a load from the argument `input:doc` at
      `i * stride0 + j * stride1` (`input:doc:stride:<axis>`); `i1` inputs
      are stored as bytes and compared with 0;
    - `attn.floormod x, d` -> `x - d * floordivsi(x, d)`;
    - `math.exp`/`math.log` -> `ex2`/`lg2.approx.ftz` (times log2 e or ln 2),
      `math.sqrt` -> `sqrt.rn`, `math.absf` -> `abs.f32`, `math.tanh` ->
      `sign(x) (1 - 2 / (e^(2|x|) + 1))`, `math.absi` -> a select: no
      libdevice.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def AttnExternDynamicSharedMemory : Pass<"attn-extern-dynamic-shared-memory", "mlir::gpu::GPUModuleOp"> {
  let summary = "Give the dynamic shared memory global external linkage";
  let description = [{
    `gpu.dynamic_shared_memory` lowers to an internal zero-sized global,
    which the NVPTX backend would demote to a one-byte static array; the
    kernels need PTX's `.extern .shared` array instead. Runs after the
    lowering to the LLVM dialect.
  }];
}

def AttnGridConstantParams : Pass<"attn-grid-constant-params", "mlir::gpu::GPUModuleOp"> {
  let summary = "Pass the kernels' TMA descriptors by value, in parameter space";
  let description = [{
    A kernel's tensormap arguments (`attn.tensormap_args` on the function:
    their indices) are 128-byte CUtensorMaps the runtime passes by value.
    The lowering to the LLVM dialect keeps them as plain pointers; this pass
    marks each `llvm.byval` of 128 bytes and `nvvm.grid_constant`, so that
    the NVPTX backend declares `.param .align 64 .b8 NAME[128]` and the
    kernel uses the parameter in place (its generic address, as TMA needs)
    instead of a local copy. Runs after the lowering to the LLVM dialect.
  }];
}

#endif // ATTNC_CONVERSION_PASSES_TD
