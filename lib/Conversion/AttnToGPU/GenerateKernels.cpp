//===- GenerateKernels.cpp - Reading the generated kernels back ----------===//
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
    for (unsigned a = 0; a < func.getNumArguments(); ++a) {
      Type t = func.getArgument(a).getType();
      KernelArg arg;
      arg.name = func.getArgAttrOfType<StringAttr>(a, "attn.arg").str();
      arg.kind = isa<MemRefType>(t) ? KernelArg::Ptr : t.isF32() ? KernelArg::F32 : KernelArg::I64;
      k.info.args.push_back(arg);
    }
    out.push_back(std::move(k));
  });
  return out;
}

} // namespace attnc
