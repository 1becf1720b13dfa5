//===- GenerateKernels.cpp - Reading the generated kernels back ----------===//
//
// collectKernels(): the kernel ABI (FlashKernel.h) from the attributes a
// backend left on each gpu.func and its arguments.
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/GenerateKernels.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"

using namespace mlir;

namespace attnc {

std::string kernelSymbol(const std::string &variant, int64_t headDim, bool bf16) {
  return variant + "_d" + std::to_string(headDim) + (bf16 ? "_bf16" : "_fp16");
}

std::vector<GeneratedKernel> collectKernels(ModuleOp module) {
  std::vector<GeneratedKernel> out;
  module.walk([&](gpu::GPUFuncOp func) {
    auto info = func->getAttrOfType<DictionaryAttr>("attn.kernel_info");
    if (!info)
      return;
    auto i64 = [&](const char *key) { return cast<IntegerAttr>(info.get(key)).getInt(); };
    GeneratedKernel k;
    k.variant = cast<StringAttr>(info.get("variant")).str();
    k.headDim = i64("head_dim");
    k.bf16 = cast<TypeAttr>(info.get("elem")).getValue().isBF16();
    k.info.symbol = func.getName().str();
    k.info.blockM = i64("block_m");
    k.info.blockN = i64("block_n");
    k.info.threads = i64("threads");
    k.info.sharedBytes = i64("shared_bytes");
    if (auto stage = info.getAs<StringAttr>("stage"))
      k.info.stage = stage.str();
    if (auto grid = info.getAs<StringAttr>("grid"))
      k.info.grid = grid.str();
    if (auto ws = info.getAs<IntegerAttr>("workspace_per_key"))
      k.info.workspacePerKey = ws.getInt();
    if (auto ws = info.getAs<IntegerAttr>("workspace_per_tile"))
      k.info.workspacePerTile = ws.getInt();
    if (auto ws = info.getAs<IntegerAttr>("workspace_per_row"))
      k.info.workspacePerRow = ws.getInt();
    for (unsigned a = 0; a < func.getNumArguments(); ++a) {
      Type t = func.getArgument(a).getType();
      KernelArg arg;
      arg.name = func.getArgAttrOfType<StringAttr>(a, "attn.arg").str();
      if (auto tmap = func.getArgAttrOfType<DictionaryAttr>(a, "attn.tensormap")) {
        arg.kind = KernelArg::TensorMap;
        arg.tensor = cast<StringAttr>(tmap.get("tensor")).str();
        for (int64_t b : cast<DenseI64ArrayAttr>(tmap.get("box")).asArrayRef())
          arg.box.push_back(b);
        arg.swizzleBytes = cast<IntegerAttr>(tmap.get("swizzle")).getInt();
      } else {
        arg.kind = isa<MemRefType>(t) ? KernelArg::Ptr : t.isF32() ? KernelArg::F32 : KernelArg::I64;
      }
      k.info.args.push_back(arg);
    }
    out.push_back(std::move(k));
  });
  return out;
}

} // namespace attnc
