//===- RunCommand.cpp - `attnc run`: execute a variant on .npy tensors ----===//
//
// Steps, in order; nothing is written unless every step succeeds:
//   1. parse the command line (CommandLine.cpp; exit 2 on a bad one);
//   2. parse and check the .attn file with -D overrides (exit 1 on errors);
//   3. pick the variant: --variant NAME, or --layer I of a model (--model NAME
//      when the file has several), or the file's only variant;
//   4. read every .npy (dtype and shape errors name the flag and the file);
//   5. run the reference executor (--reference: runReference), or the GPU
//      kernel through libattnrt (runGpu: K.ptx of --module, or FILE compiled
//      in process in builds with MLIR);
//   6. write O, LSE, the indices and the gradients (--grad-out with --dq,
//      --dk, --dv, --dsinks; the reference only) together, atomically.
// Exit codes: 0 success, 1 bad input, 2 bad command line, 3 internal error
// (an unexpected exception, or the in-process compiler's internal error).
//
//===----------------------------------------------------------------------===//
#include "RunCommand.h"
#include "CommandLine.h"

#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/Sema.h"
#include "reference/Reference.h"
#include "attnc/Runtime.h"
#include "support/Half.h"
#ifdef ATTNC_WITH_MLIR
#include "CodegenCommands.h"
#endif
#include <sstream>
#include "support/Npy.h"

#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

using attnc::support::NpyArray;
using attnc::support::NpyError;
namespace ref = attnc::reference;
namespace dsl = attnc::dsl;

using Options = attnc::RunCommandOptions;
using attnc::kExitInternal, attnc::kExitOk;
constexpr int kExitBadInput = attnc::kExitInput;

struct InputError {
  std::string msg;
};

/// A failure that is attnc's fault, not the input's (exit 3).
struct InternalError {
  std::string msg;
};

std::string joinNames(const std::vector<std::string> &v) {
  std::string s;
  for (const auto &x : v)
    s += (s.empty() ? "" : ", ") + x;
  return s;
}

/// Step 3: the variant index, and the layer for EvalEnv.
int pickVariant(const dsl::CheckedProgram &p, const Options &o, int64_t &layer) {
  std::vector<std::string> variants, models;
  for (const auto &a : p.ast.attentions)
    variants.push_back(a.name);
  for (const auto &m : p.ast.models)
    models.push_back(m.name);
  layer = 0;
  if (o.variant) {
    int idx = p.findVariant(*o.variant);
    if (idx < 0) {
      std::string hint = dsl::closestMatch(*o.variant, variants);
      throw InputError{"--variant: no attention variant named '" + *o.variant + "' in " + o.file +
                       (hint.empty() ? "" : "; did you mean '" + hint + "'?") +
                       (variants.empty() ? " (it has none)" : " (variants: " + joinNames(variants) + ")")};
    }
    return idx;
  }
  if (o.layer) {
    int m = -1;
    if (o.model) {
      m = p.findModel(*o.model);
      if (m < 0) {
        std::string hint = dsl::closestMatch(*o.model, models);
        throw InputError{"--model: no model named '" + *o.model + "' in " + o.file +
                         (hint.empty() ? "" : "; did you mean '" + hint + "'?")};
      }
    } else if (models.size() == 1) {
      m = 0;
    } else {
      throw InputError{"--layer: " + o.file +
                       (models.empty() ? std::string(" declares no model")
                                       : " has " + std::to_string(models.size()) + " models (" +
                                             joinNames(models) + "); choose one with --model")};
    }
    const dsl::ModelInfo &mi = p.models[size_t(m)];
    if (*o.layer < 0 || *o.layer >= int64_t(mi.layerVariant.size()))
      throw InputError{"--layer: layer " + std::to_string(*o.layer) + " is out of range: model '" +
                       models[size_t(m)] + "' has layers 0.." +
                       std::to_string(int64_t(mi.layerVariant.size()) - 1)};
    layer = *o.layer;
    return mi.layerVariant[size_t(*o.layer)];
  }
  if (variants.size() == 1)
    return 0;
  throw InputError{"choose a variant with --variant NAME or --layer I: " + o.file + " has " +
                   std::to_string(variants.size()) + " variants" +
                   (variants.empty() ? "" : " (" + joinNames(variants) + ")")};
}

/// Reads a float tensor (f2/f4/f8/bf16 bits) for `flag`.
ref::Tensor readFloat(const std::string &flag, const std::string &path) {
  try {
    NpyArray a = attnc::support::readNpy(path);
    ref::Tensor t;
    t.data = a.toFloat64(path);
    t.shape = a.shape;
    return t;
  } catch (const NpyError &e) {
    throw InputError{flag + ": " + e.what()};
  }
}

ref::InputTensor readInput(const dsl::InputDecl &decl, const std::string &path) {
  std::string flag = "--input " + decl.name;
  try {
    NpyArray a = attnc::support::readNpy(path);
    ref::InputTensor t;
    t.shape = a.shape;
    switch (decl.elem) {
    case dsl::ElemType::F32:
      t.floats = a.toFloat64(path + " (input '" + decl.name + " : f32')");
      break;
    case dsl::ElemType::Bool: {
      auto b = a.toBool(path + " (input '" + decl.name + " : bool')");
      t.ints.assign(b.begin(), b.end());
      break;
    }
    case dsl::ElemType::I32:
    case dsl::ElemType::I64:
      t.ints = a.toInt64(path + " (input '" + decl.name + " : " + dsl::elemTypeName(decl.elem) + "')");
      break;
    }
    return t;
  } catch (const NpyError &e) {
    throw InputError{flag + ": " + e.what()};
  }
}

/// The flag (and file) a ReferenceError's argument came from.
std::string describeArg(const Options &o, const std::string &arg) {
  if (arg == "q") return "--q " + o.q;
  if (arg == "k") return "--k " + o.k;
  if (arg == "v") return "--v " + o.v;
  if (arg == "sinks") return o.sinks.empty() ? "--sinks" : "--sinks " + o.sinks;
  if (arg == "indexer") return "--indexer";
  if (arg == "selection") return "--selection " + o.selection;
  if (arg == "indexer.qI") return "--indexer qI " + o.indexer[0];
  if (arg == "indexer.w") return "--indexer w " + o.indexer[1];
  if (arg == "indexer.kI") return "--indexer kI " + o.indexer[2];
  if (arg == "grad_out") return "--grad-out " + o.gradOut;
  if (arg == "q_offset") return "--q-offset";
  if (arg == "k_offset") return "--k-offset";
  if (arg.rfind("input:", 0) == 0) {
    std::string name = arg.substr(6);
    for (const auto &in : o.inputs)
      if (in.first == name)
        return "--input " + name + "=" + in.second;
    return "needs --input " + name + "=PATH";
  }
  if (arg == "variant")
    return o.variant ? "--variant " + *o.variant : o.layer ? "--layer " + std::to_string(*o.layer) : o.file;
  return arg;
}

int runReference(const Options &o) {
  // Step 2: the program.
  std::string text;
  try {
    text = attnc::support::readFile(o.file);
  } catch (const NpyError &e) {
    throw InputError{e.what()};
  }
  dsl::SourceFile src(o.file, std::move(text));
  dsl::DiagnosticEngine diags(src);
  std::optional<dsl::CheckedProgram> checked = dsl::parseAndCheck(src, diags, o.overrides);
  if (!diags.diagnostics().empty())
    diags.print(std::cerr);
  if (!checked || diags.errorCount())
    return kExitBadInput;
  const dsl::CheckedProgram &p = *checked;

  // Step 3.
  ref::Request req;
  req.program = &p;
  req.variant = pickVariant(p, o, req.layer);
  const dsl::AttentionDecl &variant = p.ast.attentions[size_t(req.variant)];
  if (!o.indices.empty() && !variant.select)
    throw InputError{"--indices: variant '" + variant.name +
                     "' has no `select topk(...)` clause, so there are no indices to write"};

  // Step 4: tensors.
  req.q = readFloat("--q", o.q);
  req.k = readFloat("--k", o.k);
  req.v = readFloat("--v", o.v);
  if (!o.sinks.empty())
    req.sinks = readFloat("--sinks", o.sinks);
  if (!o.indexer.empty()) {
    ref::IndexerTensors ix;
    ix.qI = readFloat("--indexer (qI)", o.indexer[0]);
    ix.w = readFloat("--indexer (w)", o.indexer[1]);
    ix.kI = readFloat("--indexer (kI)", o.indexer[2]);
    req.indexer = std::move(ix);
  }
  if (!o.selection.empty()) {
    if (!variant.select)
      throw InputError{"--selection: variant '" + variant.name + "' has no `select topk(...)` clause"};
    try {
      NpyArray a = attnc::support::readNpy(o.selection);
      ref::InputTensor t;
      t.shape = a.shape;
      t.ints = a.toInt64(o.selection + " (selection)");
      req.selection = std::move(t);
    } catch (const NpyError &e) {
      throw InputError{"--selection: " + std::string(e.what())};
    }
  }
  for (const auto &[name, path] : o.inputs) {
    int idx = p.findInput(name);
    if (idx < 0) {
      std::vector<std::string> names;
      for (const auto &in : p.ast.inputs)
        names.push_back(in.name);
      std::string hint = dsl::closestMatch(name, names);
      throw InputError{"--input " + name + "=" + path + ": " + o.file + " declares no input '" + name +
                       "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?")};
    }
    req.inputs[name] = readInput(p.ast.inputs[size_t(idx)], path);
  }
  if (!o.dsinks.empty() && !variant.sink)
    throw InputError{"--dsinks: variant '" + variant.name +
                     "' has no `sink;` clause, so there is no sink gradient to write"};
  if (!o.gradOut.empty())
    req.gradOut = readFloat("--grad-out", o.gradOut);
  req.qOffset = o.qOffset;
  req.kOffset = o.kOffset;
  req.threads = o.threads;

  // Step 5.
  ref::Result r;
  try {
    r = ref::run(req);
  } catch (const ref::ReferenceError &e) {
    throw InputError{std::string(e.what()) + " (" + describeArg(o, e.arg) + ")"};
  }

  // Step 6: every output at once.
  auto floats = [&](const ref::Tensor &t) {
    return attnc::support::encodeNpy(o.f64 ? NpyArray::fromFloat64(t.shape, t.data)
                                           : NpyArray::fromFloat32(t.shape, t.data));
  };
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back(o.out, floats(r.o));
  if (!o.lse.empty())
    files.emplace_back(o.lse, floats(r.lse));
  if (!o.indices.empty())
    files.emplace_back(o.indices, attnc::support::encodeNpy(
                                      NpyArray::fromInt64(r.indicesShape, r.indices)));
  if (!o.dq.empty())
    files.emplace_back(o.dq, floats(*r.dq));
  if (!o.dk.empty())
    files.emplace_back(o.dk, floats(*r.dk));
  if (!o.dv.empty())
    files.emplace_back(o.dv, floats(*r.dv));
  if (!o.dsinks.empty())
    files.emplace_back(o.dsinks, floats(*r.dsinks));
  try {
    attnc::support::writeFilesAtomic(files);
  } catch (const std::exception &e) {
    throw InputError{e.what()};
  }
  return kExitOk;
}

/// The program of o.file, checked (diagnostics printed); nullopt on errors.
std::optional<dsl::CheckedProgram> loadProgram(const Options &o, std::unique_ptr<dsl::SourceFile> &src) {
  std::string text;
  try {
    text = attnc::support::readFile(o.file);
  } catch (const NpyError &e) {
    throw InputError{e.what()};
  }
  src = std::make_unique<dsl::SourceFile>(o.file, std::move(text));
  dsl::DiagnosticEngine diags(*src);
  std::optional<dsl::CheckedProgram> checked = dsl::parseAndCheck(*src, diags, o.overrides);
  if (!diags.diagnostics().empty())
    diags.print(std::cerr);
  if (!checked || diags.errorCount())
    return std::nullopt;
  return checked;
}

/// The runtime's dtype of an .npy array (bf16 arrives as raw 16-bit ints).
attnc::DType runtimeDType(const NpyArray &a, const std::string &flag) {
  switch (a.dtype) {
  case attnc::support::DType::F16: return attnc::DType::F16;
  case attnc::support::DType::U16:
  case attnc::support::DType::I16: return attnc::DType::BF16;
  case attnc::support::DType::F32: return attnc::DType::F32;
  case attnc::support::DType::I32: return attnc::DType::I32;
  case attnc::support::DType::I64: return attnc::DType::I64;
  case attnc::support::DType::Bool:
  case attnc::support::DType::U8: return attnc::DType::Bool;
  default: throw InputError{flag + ": " + attnc::support::dtypeName(a.dtype) + " tensors cannot be passed to a kernel"};
  }
}

/// Device copies of .npy arrays, freed on scope exit.
struct DeviceTensors {
  std::vector<uint64_t> buffers;
  ~DeviceTensors() {
    for (uint64_t p : buffers)
      try {
        attnc::device::free(p);
      } catch (...) {
      }
  }
  attnc::TensorRef upload(const NpyArray &a, attnc::DType dt) {
    uint64_t p = attnc::device::alloc(std::max<size_t>(a.data.size(), 16));
    buffers.push_back(p);
    attnc::device::copyToDevice(p, a.data.data(), a.data.size());
    return attnc::TensorRef::contiguous(p, dt, a.shape);
  }
  attnc::TensorRef allocate(attnc::DType dt, std::vector<int64_t> shape) {
    size_t n = 1;
    for (int64_t d : shape)
      n *= size_t(d);
    uint64_t p = attnc::device::alloc(std::max<size_t>(n * attnc::dtypeSize(dt), 16));
    buffers.push_back(p);
    attnc::device::memset(p, 0xff, n * attnc::dtypeSize(dt)); // NaN: unwritten elements show
    return attnc::TensorRef::contiguous(p, dt, std::move(shape));
  }
};

NpyArray readArray(const std::string &flag, const std::string &path) {
  try {
    return attnc::support::readNpy(path);
  } catch (const NpyError &e) {
    throw InputError{flag + ": " + e.what()};
  }
}

/// `attnc run` on the GPU: the kernel of the chosen variant through the C++
/// API of libattnrt, on the .npy tensors, with the reference's outputs.
int runGpu(const Options &o) {
  std::unique_ptr<dsl::SourceFile> src;
  std::optional<dsl::CheckedProgram> checked = loadProgram(o, src);
  if (!checked)
    return kExitBadInput;
  const dsl::CheckedProgram &p = *checked;
  int64_t layer = -1;
  int vi = pickVariant(p, o, layer);
  const std::string &variant = p.ast.attentions[size_t(vi)].name;
  if (!o.selection.empty())
    throw InputError{"--selection: only the reference (--reference) attends over a given selection"};

  NpyArray q = readArray("--q", o.q), k = readArray("--k", o.k), v = readArray("--v", o.v);
  attnc::DType dt = runtimeDType(q, "--q");
  if (dt != attnc::DType::BF16 && dt != attnc::DType::F16)
    throw InputError{"--q: the GPU kernels take bf16 (raw <u2/<i2) or fp16 (<f2), got " +
                     std::string(attnc::support::dtypeName(q.dtype))};

  attnc::Module module = [&] {
    if (!o.module.empty())
      return attnc::Module::loadFile(o.module);
#ifdef ATTNC_WITH_MLIR
    attnc::CodegenOptions cg;
    int64_t d = q.shape.size() == 4 ? q.shape[3] : 0;
    if (d != 64 && d != 128 && d != 256)
      throw InputError{"--q: head dim " + std::to_string(d) + " has no kernel (64, 128 or 256)"};
    cg.headDims = {d};
    cg.dtypes = {dt == attnc::DType::BF16 ? "bf16" : "fp16"};
    std::ostringstream ptx;
    if (int rc = attnc::emitCode(ptx, std::cerr, p, *src, "ptx", cg)) {
      std::string msg = "compiling " + o.file + " failed (exit " + std::to_string(rc) + ")";
      if (rc == kExitInternal)
        throw InternalError{msg};
      throw InputError{msg};
    }
    return attnc::Module::loadData(ptx.str(), "", {}, o.file);
#else
    throw InputError{"this build has no compiler (ATTNC_WITH_MLIR=OFF): give the kernels with --module K.ptx "
                     "(attnc " + o.file + " -o K.ptx on a build machine)"};
#endif
  }();
  attnc::Kernel kernel = module.variant(variant);

  DeviceTensors dev;
  attnc::LaunchArgs a;
  a.q = dev.upload(q, dt);
  a.k = dev.upload(k, runtimeDType(k, "--k"));
  a.v = dev.upload(v, runtimeDType(v, "--v"));
  a.o = dev.allocate(dt, q.shape);
  std::vector<int64_t> lseShape(q.shape.begin(), q.shape.end() - (q.shape.empty() ? 0 : 1));
  a.lse = dev.allocate(attnc::DType::F32, lseShape);
  if (!o.sinks.empty()) {
    NpyArray sk = readArray("--sinks", o.sinks);
    a.sinks = dev.upload(sk, runtimeDType(sk, "--sinks"));
  }
  for (const auto &[name, path] : o.inputs) {
    NpyArray in = readArray("--input " + name, path);
    a.inputs[name] = dev.upload(in, runtimeDType(in, "--input " + name));
  }
  a.qOffset = o.qOffset;
  a.kOffset = o.kOffset;
  kernel.launch(a);
  attnc::device::synchronize();

  // O back to the host, as f32/f64 like the reference's.
  size_t n = 1;
  for (int64_t d : q.shape)
    n *= size_t(d);
  std::vector<uint16_t> bits(n);
  attnc::device::copyToHost(bits.data(), a.o.data, n * 2);
  std::vector<double> ov(n);
  for (size_t i = 0; i < n; ++i)
    ov[i] = dt == attnc::DType::BF16 ? attnc::support::bf16ToFloat(bits[i]) : attnc::support::halfToFloat(bits[i]);
  size_t rows = n / size_t(q.shape.back());
  std::vector<float> lf(rows);
  attnc::device::copyToHost(lf.data(), a.lse.data, rows * 4);
  std::vector<double> lv(lf.begin(), lf.end());
  auto encode = [&](const std::vector<int64_t> &shape, const std::vector<double> &v) {
    return attnc::support::encodeNpy(o.f64 ? NpyArray::fromFloat64(shape, v) : NpyArray::fromFloat32(shape, v));
  };
  std::vector<std::pair<std::string, std::string>> files;
  files.emplace_back(o.out, encode(q.shape, ov));
  if (!o.lse.empty())
    files.emplace_back(o.lse, encode(lseShape, lv));
  try {
    attnc::support::writeFilesAtomic(files);
  } catch (const std::exception &e) {
    throw InputError{e.what()};
  }
  return kExitOk;
}

} // namespace

int runCommand(int argc, char **argv) {
  Options o;
  if (std::optional<int> rc = attnc::parseRunCommandLine(argc, argv, o))
    return *rc;
  try {
    return o.reference ? runReference(o) : runGpu(o);
  } catch (const attnc::Error &e) {
    std::cerr << "attnc run: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const InputError &e) {
    std::cerr << "attnc run: error: " << e.msg << "\n";
    return kExitBadInput;
  } catch (const std::bad_alloc &) {
    std::cerr << "attnc run: error: out of memory\n";
    return kExitBadInput;
  } catch (const InternalError &e) {
    std::cerr << "attnc run: internal error: " << e.msg << "\n";
    return kExitInternal;
  } catch (const std::exception &e) {
    // Every expected failure has its own type above: this is a bug.
    std::cerr << "attnc run: internal error: " << e.what() << " (please report it with the input)\n";
    return kExitInternal;
  } catch (...) {
    std::cerr << "attnc run: internal error: an unknown exception (please report it with the input)\n";
    return kExitInternal;
  }
}
