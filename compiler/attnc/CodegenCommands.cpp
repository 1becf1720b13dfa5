//===- CodegenCommands.cpp - `--emit=tiled|llvm|ptx` ----------------------===//
#ifdef ATTNC_WITH_MLIR
#include "CodegenCommands.h"

#include "attnc/Conversion/GenerateKernels.h"
#include "attnc/Conversion/Passes.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"
#include "attnc/Manifest.h"
#include "attnc/Target/PTX.h"
#include "attnc/dsl/MLIRGen.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/raw_os_ostream.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <chrono>
#include <sstream>
#include <stdexcept>

using namespace mlir;

namespace attnc {

std::string parseHeadDims(const std::string &text, std::vector<int64_t> &out) {
  out.clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item != "64" && item != "128" && item != "256")
      return "head dims must be among 64, 128, 256, got '" + item + "'";
    out.push_back(std::stoll(item));
  }
  return out.empty() ? "no head dims given" : "";
}

std::string parseDtypes(const std::string &text, std::vector<std::string> &out) {
  out.clear();
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item != "bf16" && item != "fp16")
      return "dtypes must be among bf16, fp16, got '" + item + "'";
    out.push_back(item);
  }
  return out.empty() ? "no dtypes given" : "";
}

namespace {
/// Each tuning option's values.
const std::vector<std::pair<std::string, std::vector<std::string>>> &tuningChoices() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> choices = {
      {"tile", {"64x64", "64x32", "128x128", "128x64", "128x32"}},
      {"ctas_per_sm", {"1", "2", "3", "4"}},
      {"kv_stages", {"2", "3", "4"}},
      {"persistent", {"on", "off"}},
      {"overlap", {"on", "off"}},
      {"backend", {"mma-sync", "wgmma"}},
      {"backward", {"on", "off"}},
  };
  return choices;
}
} // namespace

bool isTuningOption(const std::string &name) {
  for (const auto &[n, values] : tuningChoices())
    if (n == name)
      return true;
  return false;
}

std::string setTuningOption(const std::string &name, const std::string &value, CodegenOptions &cg) {
  for (const auto &[n, values] : tuningChoices()) {
    if (n != name)
      continue;
    if (std::find(values.begin(), values.end(), value) == values.end()) {
      std::string list; // "a, b or c"
      for (size_t i = 0; i < values.size(); ++i)
        list += (i == 0 ? "" : i + 1 == values.size() ? " or " : ", ") + values[i];
      return "must be " + list + ", got '" + value + "'";
    }
    if (name == "tile") {
      cg.blockM = std::stoll(value.substr(0, value.find('x')));
      cg.blockN = std::stoll(value.substr(value.find('x') + 1));
    } else if (name == "ctas_per_sm") {
      cg.ctasPerSm = std::stoll(value);
    } else if (name == "kv_stages") {
      cg.kvStages = std::stoll(value);
    } else if (name == "persistent") {
      cg.persistent = value == "on" ? 1 : 0;
    } else if (name == "overlap") {
      cg.overlap = value == "on" ? 1 : 0;
    } else if (name == "backward") {
      cg.backward = value == "on";
    } else {
      cg.backend = value;
    }
    return "";
  }
  return "is not a tuning option";
}

namespace {

using Clock = std::chrono::steady_clock;

/// The manifest of the generated module (docs/runtime.md).
/// The manifest's form of a kernel parameter.
ArgSpec argSpecOf(const KernelArg &arg) {
  ArgSpec a;
  a.name = arg.name;
  switch (arg.kind) {
  case KernelArg::Ptr: a.kind = ArgKind::Ptr; break;
  case KernelArg::I64: a.kind = ArgKind::I64; break;
  case KernelArg::F32: a.kind = ArgKind::F32; break;
  case KernelArg::TensorMap:
    a.kind = ArgKind::TensorMap;
    a.tensor = arg.tensor;
    a.box = arg.box;
    a.swizzle = arg.swizzleBytes == 128 ? Swizzle::B128
                : arg.swizzleBytes == 64 ? Swizzle::B64
                : arg.swizzleBytes == 32 ? Swizzle::B32
                                         : Swizzle::None;
    break;
  }
  return a;
}

/// Whether two kernels' parameter lists are the same, name for name (and,
/// for TMA descriptors, the box and swizzle each encodes).
bool sameParameters(const std::vector<ArgSpec> &x, const std::vector<ArgSpec> &y) {
  return std::equal(x.begin(), x.end(), y.begin(), y.end(), [](const ArgSpec &a, const ArgSpec &b) {
    return a.name == b.name && a.kind == b.kind && a.tensor == b.tensor && a.box == b.box && a.swizzle == b.swizzle;
  });
}

/// A grid rule by its manifest name (a backend writes one of these).
GridRule gridRuleOf(const std::string &name) {
  for (GridRule g : {GridRule::QTilesHeadsBatch, GridRule::QTilesKvHeadsBatch, GridRule::ChunkedRowBlocks,
                     GridRule::RowsKvHeadsBatch, GridRule::TilesHeadsBatch, GridRule::PersistentTiles,
                     GridRule::KTilesKvHeadsBatch})
    if (name == gridRuleName(g))
      return g;
  throw std::logic_error("a kernel names the unknown grid rule '" + name + "'");
}

/// Why the code generator cannot compile variant `i`'s selection yet, or "".
std::string selectionUnsupported(const dsl::CheckedProgram &program, int i) {
  const dsl::SelectClause &sel = *program.ast.attentions[size_t(i)].select;
  const dsl::VariantInfo &info = program.variants[size_t(i)];
  if (!sel.byIndexer)
    return "";
  if (sel.indexerDType == dsl::IndexerDType::FP32)
    return "the code generator has no kernel for indexer dtype fp32 yet (fp8, bf16 and fp16 it has)";
  if (info.indexerDim % 16 != 0 || info.indexerDim > 256)
    return "the code generator needs an indexer dim that is a multiple of 16 up to 256, got " +
           std::to_string(info.indexerDim);
  if (info.indexerHeads > 64) // a warp's m-tiles hold one row's heads (SelectStage.cpp)
    return "the code generator takes up to 64 indexer heads, got " + std::to_string(info.indexerHeads);
  return "";
}

/// Appends generated kernel k to variant v (whose kernels share one parameter list).
void addKernel(VariantSpec &v, const GeneratedKernel &k) {
  KernelSpec ks;
  ks.symbol = k.info.symbol;
  ks.headDim = k.headDim;
  ks.dtype = k.bf16 ? DType::BF16 : DType::F16;
  ks.blockM = k.info.blockM;
  ks.blockN = k.info.blockN;
  ks.threads = k.info.threads;
  ks.sharedBytes = k.info.sharedBytes;
  if (!k.info.stage.empty())
    ks.stage = k.info.stage;
  if (!k.info.grid.empty())
    ks.grid = gridRuleOf(k.info.grid);
  if (k.info.workspacePerKey)
    ks.workspacePerKey = k.info.workspacePerKey;
  if (k.info.workspacePerTile)
    ks.workspacePerTile = k.info.workspacePerTile;
  if (k.info.workspacePerRow)
    ks.workspacePerRow = k.info.workspacePerRow;
  v.kernels.push_back(ks);
  std::vector<ArgSpec> args;
  for (const KernelArg &arg : k.info.args)
    args.push_back(argSpecOf(arg));
  if (v.args.empty())
    v.args = args;
  else if (!sameParameters(args, v.args)) // the manifest has one list a variant
    throw std::logic_error("kernel '" + k.info.symbol + "' takes other parameters than '" + v.kernels[0].symbol +
                           "' of the same variant");
}

Manifest buildManifest(ModuleOp module, const dsl::CheckedProgram &program,
                       const std::vector<GeneratedKernel> &kernels, const CodegenOptions &o) {
  Manifest m;
  m.attncVersion = ATTNC_VERSION;
  m.target = o.target;
  for (const dsl::AttentionDecl &a : program.ast.attentions) {
    VariantSpec v;
    v.name = a.name;
    auto op = SymbolTable::lookupNearestSymbolFrom<attn::VariantOp>(module, StringAttr::get(module.getContext(), a.name));
    for (const GeneratedKernel &k : kernels) {
      if (k.variant != a.name || k.info.stage.rfind("backward_", 0) == 0)
        continue;
      addKernel(v, k);
    }
    v.headDims = o.headDims;
    std::sort(v.headDims.begin(), v.headDims.end());
    for (const std::string &d : o.dtypes)
      v.dtypes.push_back(d == "bf16" ? DType::BF16 : DType::F16);
    v.grid = GridRule::QTilesHeadsBatch;
    if (op.getScale())
      v.scale = op.getScale()->convertToDouble();
    v.sink = op.getSink();
    if (auto topk = op.getTopk()) {
      SelectSpec sel;
      sel.topk = int64_t(*topk);
      if (DictionaryAttr ix = op.getIndexerAttr()) {
        IndexerSpec spec;
        spec.heads = cast<IntegerAttr>(ix.get("heads")).getInt();
        spec.dim = cast<IntegerAttr>(ix.get("dim")).getInt();
        std::string dt = cast<StringAttr>(ix.get("dtype")).str();
        spec.dtype = dt == "fp8" ? DType::F8E4M3 : dt == "bf16" ? DType::BF16 : DType::F16;
        sel.indexer = spec;
      }
      v.select = sel;
    }
    for (const ArgSpec &arg : v.args) {
      if (arg.name.rfind("input:", 0) != 0 || arg.name.find(':', 6) != std::string::npos)
        continue;
      std::string name = arg.name.substr(6);
      const dsl::InputDecl &decl = program.ast.inputs[size_t(program.findInput(name))];
      InputSpec in;
      in.name = name;
      in.elem = decl.elem == dsl::ElemType::I32   ? DType::I32
                : decl.elem == dsl::ElemType::I64 ? DType::I64
                : decl.elem == dsl::ElemType::F32 ? DType::F32
                                                  : DType::Bool;
      for (dsl::Axis ax : decl.axes)
        in.axes.push_back(ax == dsl::Axis::Batch ? Axis::Batch : ax == dsl::Axis::Head ? Axis::Head : Axis::Token);
      v.inputs.push_back(in);
    }
    m.variants.push_back(std::move(v));
  }
  // The gradient kernels of each variant that has them: variant
  // NAME.backward, after every forward variant (the model's layers index
  // those), with the forward's scale and inputs, no sink (the LSE holds its
  // share) and its own parameters (docs/runtime.md "Backward").
  const size_t forwardVariants = m.variants.size();
  for (size_t vi = 0; vi < forwardVariants; ++vi) {
    VariantSpec bw;
    const VariantSpec &fw = m.variants[vi];
    bw.name = fw.name + ".backward";
    bw.backwardOf = fw.name;
    for (const GeneratedKernel &k : kernels) {
      if (k.variant != fw.name || k.info.stage.rfind("backward_", 0) != 0)
        continue;
      addKernel(bw, k);
      if (std::find(bw.headDims.begin(), bw.headDims.end(), k.headDim) == bw.headDims.end())
        bw.headDims.push_back(k.headDim);
    }
    if (bw.kernels.empty())
      continue;
    std::sort(bw.headDims.begin(), bw.headDims.end());
    bw.dtypes = fw.dtypes;
    bw.grid = GridRule::QTilesHeadsBatch;
    bw.scale = fw.scale;
    bw.inputs = fw.inputs;
    m.variants.push_back(std::move(bw));
  }
  if (!program.models.empty()) {
    m.kind = ModuleKind::Model;
    ModelSpec model;
    model.name = program.ast.models.front().name;
    for (int v : program.models.front().layerVariant)
      model.layers.push_back(v);
    m.model = model;
  }
  return m;
}

} // namespace

int emitCode(std::ostream &out, std::ostream &err, const dsl::CheckedProgram &program, const dsl::SourceFile &file,
             const std::string &stage, const CodegenOptions &o) {
  // Selection: what its kernels (SelectStage.cpp) do not cover yet is
  // refused where the selection is written.
  for (size_t i = 0; i < program.ast.attentions.size(); ++i) {
    if (!program.variants[i].topk)
      continue;
    const dsl::AttentionDecl &a = program.ast.attentions[i];
    std::string why = selectionUnsupported(program, int(i));
    if (why.empty())
      continue;
    auto [line, col] = file.lineCol(a.select->range.begin);
    err << file.name() << ":" << line << ":" << col << ": error: variant '" << a.name << "': " << why
        << " (use attnc run --reference)\n";
    return 1;
  }

  // An input with two token axes (allow[q, k]) is valid, but the runtime's
  // argument vocabulary names one stride per axis name (docs/runtime.md),
  // so such a kernel could not be described: refuse it where it is declared.
  for (size_t i = 0; i < program.ast.attentions.size(); ++i)
    for (int in : program.variants[i].inputsUsed) {
      const dsl::InputDecl &d = program.ast.inputs[size_t(in)];
      if (std::count(d.axes.begin(), d.axes.end(), dsl::Axis::Token) < 2)
        continue;
      auto [line, col] = file.lineCol(d.range.begin);
      err << file.name() << ":" << line << ":" << col << ": error: variant '" << program.ast.attentions[i].name
          << "' reads input '" << d.name
          << "', which has two token axes: the code generator has no kernel for such inputs yet (use attnc run "
             "--reference)\n";
      return 1;
    }

  auto t0 = Clock::now();
  auto lap = [&](const char *what) {
    if (!o.timing)
      return;
    auto t1 = Clock::now();
    err << "attnc: " << what << ": " << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms\n";
    t0 = t1;
  };
  DialectRegistry registry;
  dsl::registerMLIRGenDialects(registry);
  registerPtxPipelineDialects(registry);
  MLIRContext context(registry);
  context.loadAllAvailableDialects();
  std::string diagText;
  llvm::raw_string_ostream diagStream(diagText);
  // Warnings (a variant left without its backward kernels, ...) reach the
  // user at once; anything else is kept for an internal error's report.
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &d) {
    if (d.getSeverity() == DiagnosticSeverity::Warning) {
      std::string where;
      llvm::raw_string_ostream os(where);
      if (auto loc = dyn_cast<FileLineColLoc>(d.getLocation()))
        os << loc.getFilename().getValue() << ":" << loc.getLine() << ":" << loc.getColumn();
      else
        os << d.getLocation();
      err << where << ": warning: " << d.str() << "\n";
      return success();
    }
    diagStream << d.getLocation() << ": " << d << "\n";
    return success();
  });
  auto internal = [&](const char *what) {
    err << "attnc: internal error: " << what << "\n" << diagText;
    return 3;
  };

  OwningOpRef<ModuleOp> module = dsl::mlirGen(context, program, file);
  if (failed(verify(*module)))
    return internal("MLIRGen produced IR that does not verify");
  lap("attn dialect");

  // The pipeline, stage by stage (Passes.h), each in a PassManager that
  // honours --mlir-print-ir-after-all and the crash reproducer.
  AttnPipelineOptions pipeline;
  pipeline.headDims = ArrayRef<int64_t>(o.headDims);
  pipeline.dtypes = ArrayRef<std::string>(o.dtypes);
  pipeline.target = o.target;
  pipeline.blockM = o.blockM;
  pipeline.blockN = o.blockN;
  pipeline.ctasPerSm = o.ctasPerSm;
  pipeline.kvStages = o.kvStages;
  pipeline.persistent = o.persistent;
  pipeline.overlap = o.overlap;
  pipeline.backward = o.backward;
  pipeline.backend = o.backendOrDefault();
  auto runStage = [&](const std::function<void(OpPassManager &)> &build) {
    PassManager pm(&context);
    if (o.printIrAfterAll) {
      context.disableMultithreading(); // IR printing of nested passes in order
      pm.enableIRPrinting([](Pass *, Operation *) { return false; }, [](Pass *, Operation *) { return true; },
                          /*printModuleScope=*/false, /*printAfterOnlyOnChange=*/false);
    }
    if (!o.crashReproducer.empty())
      pm.enableCrashReproducerGeneration(o.crashReproducer);
    build(pm);
    return pm.run(*module);
  };
  llvm::raw_os_ostream os(out);
  if (failed(runStage([&](OpPassManager &pm) { pm.addPass(createAttnTileVariants(tileVariantsOptions(pipeline))); })))
    return internal("attn-tile-variants failed");
  lap("tile stage");
  if (stage == "tiled") {
    module->print(os);
    return 0;
  }
  if (failed(runStage([&](OpPassManager &pm) {
        pm.addPass(createConvertAttnTileToGPU(ConvertAttnTileToGPUOptions{pipeline.backend, o.target, o.kvStages, o.persistent, o.overlap}));
      }))) {
    if (o.blockM) { // a tile the user chose that the backend cannot build (shared memory, shape)
      err << "attnc: error: --tile=" << o.blockM << "x" << o.blockN << " cannot be compiled:\n" << diagText;
      return 2;
    }
    return internal("convert-attn-tile-to-gpu failed");
  }
  std::vector<GeneratedKernel> kernels = collectKernels(*module);
  lap("kernel generation");
  if (stage == "gpu") {
    module->print(os);
    return 0;
  }

  if (failed(runStage([&](OpPassManager &pm) { buildAttnGpuToNvvmPipeline(pm, pipeline); })))
    return internal("lowering the kernels to LLVM failed");
  lap("lowering to LLVM");
  if (stage == "llvm") {
    // One LLVM module per kernel, printed one after another.
    WalkResult walk = module->walk([&](gpu::GPUModuleOp gpuModule) {
      llvm::LLVMContext llvmContext;
      std::unique_ptr<llvm::Module> ir = translateModuleToLLVMIR(gpuModule, llvmContext, gpuModule.getName());
      if (!ir)
        return WalkResult::interrupt();
      ir->print(os, nullptr);
      return WalkResult::advance();
    });
    if (walk.wasInterrupted())
      return internal("translating the kernels to LLVM IR failed");
    return 0;
  }

  FailureOr<std::string> ptx = serializeToPtx(*module);
  if (failed(ptx))
    return internal("the NVPTX backend failed");
  lap("NVPTX backend");
  try {
    Manifest manifest = buildManifest(*module, program, kernels, o);
    out << embedManifestInPtx(*ptx, manifest);
  } catch (const std::exception &e) {
    err << "attnc: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}

} // namespace attnc
#endif
