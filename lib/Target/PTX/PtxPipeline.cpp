//===- PtxPipeline.cpp - The lowered kernels to PTX, in process -----------===//
//
// The dialects the pipeline needs, and the NVPTX backend run on every
// gpu.module at once (the lowering itself is the attn-gpu-to-nvvm pipeline,
// Pipelines.cpp).
//
//===----------------------------------------------------------------------===//
#include "attnc/Target/PTX.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/Transforms/Passes.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVM/NVVM/Target.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/GPU/GPUToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Transforms/Passes.h"

#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Threading.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <set>
#include <sstream>

using namespace mlir;

namespace attnc {

void registerPtxPipelineDialects(DialectRegistry &registry) {
  registry.insert<arith::ArithDialect, gpu::GPUDialect, LLVM::LLVMDialect, math::MathDialect, memref::MemRefDialect,
                  NVVM::NVVMDialect, nvgpu::NVGPUDialect, scf::SCFDialect, vector::VectorDialect>();
  registerBuiltinDialectTranslation(registry);
  registerGPUDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerNVVMDialectTranslation(registry);
  NVVM::registerNVVMTargetInterfaceExternalModels(registry);
  // The ConvertToLLVM interfaces convert-gpu-to-nvvm uses for cf, arith, ...
  registerAllExtensions(registry);
}

std::string joinPtxModules(const std::vector<std::string> &modules) {
  std::string out;
  std::set<std::string> declared;
  for (size_t i = 0; i < modules.size(); ++i) {
    std::istringstream in(modules[i]);
    bool inHeader = i > 0; // later modules: drop everything to .address_size
    for (std::string line; std::getline(in, line);) {
      if (inHeader) {
        inHeader = line.rfind(".address_size", 0) != 0;
        continue;
      }
      if (line.rfind(".extern ", 0) == 0 && !declared.insert(line).second)
        continue;
      out += line;
      out += '\n';
    }
  }
  return out;
}

FailureOr<std::string> serializeToPtx(ModuleOp module) {
  static bool initialised = [] {
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
    // 32-bit shared-memory pointers (PTX's .shared window is 32-bit): halves
    // the registers and integer work of every ldmatrix/cp.async address.
    auto &options = llvm::cl::getRegisteredOptions();
    auto it = options.find("nvptx-short-ptr");
    if (it != options.end())
      static_cast<llvm::cl::opt<bool> *>(it->second)->setValue(true);
    return true;
  }();
  (void)initialised;
  SmallVector<gpu::GPUModuleOp> gpuModules;
  module.walk([&](gpu::GPUModuleOp m) { gpuModules.push_back(m); });
  if (gpuModules.empty()) {
    module.emitError() << "internal error: no gpu.module to serialise";
    return failure();
  }
  // What gpu-module-to-binary does for one module, for every module at once
  // (each translation has its own LLVMContext; the MLIR side only reads).
  SymbolTable symbols(module);
  std::vector<std::string> texts(gpuModules.size());
  LogicalResult ok = failableParallelForEachN(module.getContext(), 0, gpuModules.size(), [&](size_t i) {
    gpu::GPUModuleOp m = gpuModules[i];
    auto target = dyn_cast_or_null<gpu::TargetAttrInterface>(m.getTargetsAttr() ? m.getTargetsAttr()[0] : Attribute());
    if (!target)
      return LogicalResult(m.emitError() << "internal error: the gpu.module has no NVVM target");
    gpu::TargetOptions options({}, {}, {}, {}, gpu::CompilationTarget::Assembly, [&]() { return &symbols; });
    std::optional<SmallVector<char, 0>> object = target.serializeToObject(m, options);
    if (!object)
      return LogicalResult(m.emitError() << "internal error: the NVPTX backend produced no PTX");
    std::string &ptx = texts[i];
    ptx.assign(object->begin(), object->end());
    // The backend's text ends with a NUL byte: keep PTX a text file.
    while (!ptx.empty() && ptx.back() == '\0')
      ptx.pop_back();
    return success();
  });
  if (failed(ok))
    return failure();
  return joinPtxModules(texts);
}

} // namespace attnc
