//===- TileCommands.cpp - `--emit=mask` and `--emit=tiles` ----------------===//
#include "TileCommands.h"
#include "InputFiles.h"

#ifdef ATTNC_WITH_MLIR
#include "attnc/Analysis/TileAnalysis.h"
#include "attnc/Analysis/TileReport.h"
#include "attnc/Dialect/Attn/IR/AttnOps.h"
#include "attnc/dsl/MLIRGen.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/SymbolTable.h"
#endif

#include <map>
#include <memory>
#include <stdexcept>

namespace attnc {
namespace {

constexpr int kExitOk = 0, kExitInput = 1, kExitUsage = 2;

/// The variants a command is about, each with the model layers using it.
struct Selection {
  std::vector<int> variants;
  std::vector<std::vector<int64_t>> layers;
};

/// --variant NAME, --layer I (of the file's model), or everything: a model's
/// distinct variants when the file has one, else every variant.
bool select(const dsl::CheckedProgram &p, const TileOptions &o, bool single, Selection &out, std::string &error) {
  const dsl::ModelInfo *model = p.models.empty() ? nullptr : &p.models.front();
  std::string modelName = p.models.empty() ? "" : p.ast.models.front().name;
  if (!o.model.empty()) {
    int mi = p.findModel(o.model);
    if (mi < 0) {
      std::vector<std::string> names;
      for (auto &m : p.ast.models)
        names.push_back(m.name);
      std::string hint = dsl::closestMatch(o.model, names);
      error = "--model " + o.model + ": no such model" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)");
      return false;
    }
    model = &p.models[size_t(mi)];
    modelName = o.model;
  } else if (p.models.size() > 1 && o.layer) {
    error = "--layer: the file has " + std::to_string(p.models.size()) + " models; pick one with --model NAME";
    return false;
  }
  auto layersOf = [&](int v) {
    std::vector<int64_t> layers;
    if (model)
      for (size_t i = 0; i < model->layerVariant.size(); ++i)
        if (model->layerVariant[i] == v)
          layers.push_back(int64_t(i));
    return layers;
  };
  if (!o.variant.empty() && o.layer) {
    error = "give --variant or --layer, not both";
    return false;
  }
  if (!o.variant.empty()) {
    int v = p.findVariant(o.variant);
    if (v < 0) {
      std::vector<std::string> names;
      for (auto &a : p.ast.attentions)
        names.push_back(a.name);
      std::string hint = dsl::closestMatch(o.variant, names);
      error = "--variant " + o.variant + ": no such variant" + (hint.empty() ? "" : " (did you mean '" + hint + "'?)");
      return false;
    }
    out.variants = {v};
  } else if (o.layer) {
    if (!model) {
      error = "--layer needs a file with a model";
      return false;
    }
    if (*o.layer < 0 || *o.layer >= model->layers) {
      error = "--layer " + std::to_string(*o.layer) + ": model '" + modelName + "' has " +
              std::to_string(model->layers) + " layers (0.." + std::to_string(model->layers - 1) + ")";
      return false;
    }
    out.variants = {model->layerVariant[size_t(*o.layer)]};
  } else if (model) {
    out.variants = model->distinctVariants;
  } else {
    for (size_t i = 0; i < p.ast.attentions.size(); ++i)
      out.variants.push_back(int(i));
  }
  if (single && out.variants.size() > 1) {
    error = "the file has " + std::to_string(out.variants.size()) + " variants; pick one with --variant NAME or --layer I";
    return false;
  }
  for (int v : out.variants)
    out.layers.push_back(layersOf(v));
  return true;
}

bool checkLengths(const TileOptions &o, std::ostream &err, int64_t maxLen) {
  if (!o.qlen || !o.klen) {
    err << "attnc: error: --qlen and --klen are required\n";
    return false;
  }
  if (*o.qlen < 1 || *o.klen < 1 || *o.qlen > maxLen || *o.klen > maxLen) {
    err << "attnc: error: --qlen and --klen must be between 1 and " << maxLen << ", got " << *o.qlen << " and "
        << *o.klen << "\n";
    return false;
  }
  return true;
}

} // namespace

int emitMask(std::ostream &out, std::ostream &err, const dsl::CheckedProgram &program, const TileOptions &o) {
  constexpr int64_t kMaxMaskLength = 4096;
  if (!checkLengths(o, err, kMaxMaskLength))
    return kExitUsage;
  Selection sel;
  std::string error;
  if (!select(program, o, /*single=*/true, sel, error)) {
    err << "attnc: error: " << error << "\n";
    return kExitUsage;
  }
  try {
    InputFiles inputs(program, o.inputs);
    const dsl::AttentionDecl &v = program.ast.attentions[sel.variants[0]];
    dsl::EvalEnv env;
    env.program = &program;
    env.variant = &v;
    env.inputs = &inputs;
    env.qlen = *o.qlen;
    env.klen = *o.klen;
    env.b = o.batch;
    env.h = o.head;
    int64_t qOff = o.qOffset.value_or(*o.klen - *o.qlen), kOff = o.kOffset.value_or(0);
    std::string grid;
    int64_t allowed = 0;
    for (int64_t row = 0; row < *o.qlen; ++row) {
      env.q = row + qOff;
      for (int64_t col = 0; col < *o.klen; ++col) {
        env.k = col + kOff;
        bool m;
        try {
          m = dsl::evalMask(v, env);
        } catch (const dsl::EvalError &e) {
          throw std::runtime_error(std::string(e.what()) + " (at q = " + std::to_string(env.q) +
                                   ", k = " + std::to_string(env.k) + ", row " + std::to_string(row) + ", column " +
                                   std::to_string(col) + ")");
        }
        allowed += m;
        grid += m ? '#' : '.';
      }
      grid += '\n';
    }
    out << "# mask of " << v.name << ": " << *o.qlen << " queries (rows, q = row + " << qOff << ") x " << *o.klen
        << " keys (columns, k = col + " << kOff << "), batch " << o.batch << ", head " << o.head << "; " << allowed
        << " allowed pairs\n"
        << grid;
  } catch (const std::exception &e) {
    err << "attnc: error: " << e.what() << "\n";
    return kExitInput;
  }
  return kExitOk;
}

#ifdef ATTNC_WITH_MLIR
namespace {

/// Input values for the classifier: min/max over the positions asked for.
class FileInputValues : public analysis::InputValues {
public:
  explicit FileInputValues(const InputFiles &files) : files_(files) {}
  analysis::Range range(const analysis::Term &read, int64_t b, int64_t h, analysis::Range positions) const override {
    int64_t lo, hi;
    if (!files_.range(read.input, b, h, positions.lo, positions.hi, lo, hi))
      return analysis::Range::all();
    return {lo, hi};
  }

private:
  const InputFiles &files_;
};

} // namespace

int emitTiles(std::ostream &out, std::ostream &err, const dsl::CheckedProgram &program, const dsl::SourceFile &file,
              const TileOptions &o) {
  constexpr int64_t kMaxTileLength = int64_t(1) << 24;
  if (!checkLengths(o, err, kMaxTileLength))
    return kExitUsage;
  if (o.blockM < 16 || o.blockM > 256 || o.blockN < 16 || o.blockN > 256) {
    err << "attnc: error: --block-m and --block-n must be between 16 and 256, got " << o.blockM << " and "
        << o.blockN << "\n";
    return kExitUsage;
  }
  if (o.format != "text" && o.format != "json" && o.format != "svg") {
    err << "attnc: error: --format must be text, json or svg, got '" << o.format << "'\n";
    return kExitUsage;
  }
  Selection sel;
  std::string error;
  if (!select(program, o, /*single=*/false, sel, error)) {
    err << "attnc: error: " << error << "\n";
    return kExitUsage;
  }
  std::unique_ptr<InputFiles> files;
  try {
    files = std::make_unique<InputFiles>(program, o.inputs);
  } catch (const std::exception &e) {
    err << "attnc: error: " << e.what() << "\n";
    return kExitInput;
  }
  FileInputValues values(*files);

  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module = dsl::mlirGen(context, program, file);
  analysis::TileGeometry geo;
  geo.qlen = *o.qlen;
  geo.klen = *o.klen;
  geo.qOffset = o.qOffset.value_or(*o.klen - *o.qlen);
  geo.kOffset = o.kOffset.value_or(0);
  geo.blockM = o.blockM;
  geo.blockN = o.blockN;
  geo.batch = o.batch;
  geo.head = o.head;

  std::vector<std::unique_ptr<analysis::TileAnalysis>> analyses;
  std::vector<std::unique_ptr<analysis::TileClassifier>> classifiers;
  std::vector<analysis::VariantTiles> report;
  for (size_t i = 0; i < sel.variants.size(); ++i) {
    const std::string &name = program.ast.attentions[sel.variants[i]].name;
    auto op = mlir::SymbolTable::lookupNearestSymbolFrom<attn::VariantOp>(
        *module, mlir::StringAttr::get(&context, name));
    if (!op) {
      err << "attnc: internal error: no attn.variant @" << name << " in the generated module\n";
      return 3;
    }
    analyses.push_back(std::make_unique<analysis::TileAnalysis>(op.getOperation()));
    classifiers.push_back(
        std::make_unique<analysis::TileClassifier>(analyses.back()->keyIntervals(), geo, &values));
    analysis::VariantTiles v;
    v.name = name;
    v.layers = sel.layers[i];
    v.intervals = &analyses.back()->keyIntervals();
    v.classifier = classifiers.back().get();
    v.affine = analyses.back()->isAffine();
    for (int in : program.variants[sel.variants[i]].inputsUsed) {
      v.inputsRead.push_back(program.ast.inputs[in].name);
      if (!files->has(in))
        v.inputsMissing.push_back(program.ast.inputs[in].name);
    }
    report.push_back(v);
  }
  if (o.format == "json")
    analysis::writeTilesJson(out, report, {o.rows});
  else if (o.format == "svg")
    analysis::writeTilesSvg(out, report);
  else
    analysis::writeTilesText(out, report);
  return kExitOk;
}
#endif

} // namespace attnc
