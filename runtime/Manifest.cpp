//===- Manifest.cpp - Read, validate and write the module manifest --------===//
//
// The strict reader and the writer of the manifest (docs/runtime.md defines
// the schema), the PTX comment-block embedding, and the cross-check of a
// manifest against the `.entry` parameter lists of its PTX. Every error is an
// attnc::Error(ErrorCode::Manifest) that names the JSON path of the offending
// field and says what was expected and what was found.
//
//===----------------------------------------------------------------------===//
#include "attnc/Manifest.h"
#include "runtime/Json.h"
#include "runtime/TensorMap.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <cstring>
#include <sstream>

namespace attnc {

using rt::json::Value;
namespace json = rt::json;

//===----------------------------------------------------------------------===//
// Enum spellings
//===----------------------------------------------------------------------===//

const char *dtypeName(DType t) {
  switch (t) {
  case DType::BF16: return "bf16";
  case DType::F16: return "fp16";
  case DType::F32: return "f32";
  case DType::I32: return "i32";
  case DType::I64: return "i64";
  case DType::Bool: return "bool";
  case DType::U8: return "u8";
  case DType::F8E4M3: return "fp8_e4m3";
  case DType::F8E5M2: return "fp8_e5m2";
  }
  return "invalid";
}

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::BF16:
  case DType::F16: return 2;
  case DType::F32:
  case DType::I32: return 4;
  case DType::I64: return 8;
  case DType::Bool:
  case DType::U8:
  case DType::F8E4M3:
  case DType::F8E5M2: return 1;
  }
  return 0;
}

std::optional<DType> dtypeFromName(const std::string &s) {
  for (DType t : {DType::BF16, DType::F16, DType::F32, DType::I32, DType::I64, DType::Bool,
                  DType::U8, DType::F8E4M3, DType::F8E5M2})
    if (s == dtypeName(t))
      return t;
  return std::nullopt;
}

const char *argKindName(ArgKind k) {
  switch (k) {
  case ArgKind::Ptr: return "ptr";
  case ArgKind::I32: return "i32";
  case ArgKind::I64: return "i64";
  case ArgKind::F32: return "f32";
  case ArgKind::TensorMap: return "tensormap";
  }
  return "?";
}

const char *swizzleName(Swizzle s) {
  switch (s) {
  case Swizzle::None: return "none";
  case Swizzle::B32: return "32b";
  case Swizzle::B64: return "64b";
  case Swizzle::B128: return "128b";
  }
  return "?";
}

int64_t swizzleBytes(Swizzle s) {
  switch (s) {
  case Swizzle::None: return 0;
  case Swizzle::B32: return 32;
  case Swizzle::B64: return 64;
  case Swizzle::B128: return 128;
  }
  return 0;
}

const char *gridRuleName(GridRule g) {
  switch (g) {
  case GridRule::QTilesHeadsBatch: return "qtiles_heads_batch";
  case GridRule::QTilesKvHeadsBatch: return "qtiles_kvheads_batch";
  case GridRule::ChunkedRowBlocks: return "chunked_row_blocks";
  case GridRule::RowsKvHeadsBatch: return "rows_kvheads_batch";
  case GridRule::TilesHeadsBatch: return "tiles_heads_batch";
  case GridRule::PersistentTiles: return "persistent";
  case GridRule::KTilesKvHeadsBatch: return "ktiles_kvheads_batch";
  }
  return "?";
}

const char *axisName(Axis a) {
  switch (a) {
  case Axis::Batch: return "batch";
  case Axis::Head: return "head";
  case Axis::Token: return "token";
  }
  return "?";
}

const KernelSpec *VariantSpec::findKernel(int64_t d, DType t) const {
  std::vector<const KernelSpec *> stages = findStages(d, t);
  for (const KernelSpec *k : stages)
    if (k->stage == kAttentionStage)
      return k;
  return stages.empty() ? nullptr : stages.back();
}

std::vector<const KernelSpec *> VariantSpec::findStages(int64_t d, DType t) const {
  std::vector<const KernelSpec *> out;
  for (const auto &k : kernels)
    if (k.headDim == d && k.dtype == t)
      out.push_back(&k);
  return out;
}

int VariantSpec::findArg(const std::string &n) const {
  for (size_t i = 0; i < args.size(); ++i)
    if (args[i].name == n)
      return int(i);
  return -1;
}

const InputSpec *VariantSpec::findInput(const std::string &n) const {
  for (const auto &in : inputs)
    if (in.name == n)
      return &in;
  return nullptr;
}

int Manifest::findVariant(const std::string &n) const {
  for (size_t i = 0; i < variants.size(); ++i)
    if (variants[i].name == n)
      return int(i);
  return -1;
}

namespace {

[[noreturn]] void fail(const std::string &path, const std::string &msg) {
  throw Error(ErrorCode::Manifest, "manifest: " + (path.empty() ? "" : path + ": ") + msg);
}

std::string quoted(const std::string &s) { return "'" + s + "'"; }

/// A short rendering of a JSON value for "got ..." parts of messages.
std::string describe(const Value &v) {
  switch (v.kind) {
  case Value::Kind::String: return quoted(v.string);
  case Value::Kind::Number:
  case Value::Kind::Bool:
  case Value::Kind::Null: return json::write(v, -1);
  default: return json::kindName(v.kind);
  }
}

std::string joinNames(const std::vector<std::string> &names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i)
    s += (i ? ", " : "") + names[i];
  return s;
}

bool isIdentifier(const std::string &s, bool ptx) {
  if (s.empty())
    return false;
  auto first = [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (ptx && c == '$');
  };
  if (!first(s[0]))
    return false;
  for (char c : s)
    if (!first(c) && !(c >= '0' && c <= '9'))
      return false;
  return true;
}

/// Object member access with path tracking and strict key sets.
class Obj {
public:
  Obj(const Value &v, std::string path, std::vector<std::string> required,
      std::vector<std::string> optional = {})
      : v_(v), path_(std::move(path)) {
    if (v.kind != Value::Kind::Object)
      fail(path_, std::string("expected an object, got ") + json::kindName(v.kind));
    std::vector<std::string> all = required;
    all.insert(all.end(), optional.begin(), optional.end());
    for (const auto &m : v.object)
      if (std::find(all.begin(), all.end(), m.first) == all.end())
        fail(sub(m.first), "unknown field (expected one of: " + joinNames(all) + ")");
    for (const auto &r : required)
      if (!v.find(r))
        fail(path_, "missing required field '" + r + "'");
  }

  std::string sub(const std::string &key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  const std::string &path() const { return path_; }
  const Value *get(const std::string &key) const { return v_.find(key); }
  const Value &at(const std::string &key) const { return *v_.find(key); }

  std::string str(const std::string &key) const {
    const Value &x = at(key);
    if (x.kind != Value::Kind::String)
      fail(sub(key), "expected a string, got " + describe(x));
    return x.string;
  }

  int64_t integer(const std::string &key, int64_t lo, int64_t hi) const {
    return intValue(at(key), sub(key), lo, hi);
  }

  bool boolean(const std::string &key) const {
    const Value &x = at(key);
    if (x.kind != Value::Kind::Bool)
      fail(sub(key), "expected true or false, got " + describe(x));
    return x.boolean;
  }

  const std::vector<Value> &array(const std::string &key, bool nonEmpty) const {
    const Value &x = at(key);
    if (x.kind != Value::Kind::Array)
      fail(sub(key), std::string("expected an array, got ") + json::kindName(x.kind));
    if (nonEmpty && x.array.empty())
      fail(sub(key), "expected a non-empty array");
    return x.array;
  }

  static int64_t intValue(const Value &x, const std::string &path, int64_t lo, int64_t hi) {
    if (x.kind != Value::Kind::Number || !x.isInteger)
      fail(path, "expected an integer, got " + describe(x));
    if (x.integer < lo || x.integer > hi)
      fail(path, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                     "], got " + std::to_string(x.integer));
    return x.integer;
  }

private:
  const Value &v_;
  std::string path_;
};

std::string idx(const std::string &path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

template <typename T>
T enumValue(const Value &x, const std::string &path, const std::vector<std::pair<const char *, T>> &table) {
  std::vector<std::string> names;
  for (const auto &e : table)
    names.push_back(e.first);
  if (x.kind != Value::Kind::String)
    fail(path, "expected one of " + joinNames(names) + ", got " + describe(x));
  for (const auto &e : table)
    if (x.string == e.first)
      return e.second;
  fail(path, "expected one of " + joinNames(names) + ", got " + quoted(x.string));
}

std::vector<std::pair<const char *, DType>> dtypeTable(std::initializer_list<DType> ts) {
  std::vector<std::pair<const char *, DType>> t;
  for (DType d : ts)
    t.push_back({dtypeName(d), d});
  return t;
}

const std::vector<std::pair<const char *, ArgKind>> kArgKinds = {
    {"ptr", ArgKind::Ptr}, {"i32", ArgKind::I32}, {"i64", ArgKind::I64}, {"f32", ArgKind::F32},
    {"tensormap", ArgKind::TensorMap}};
const std::vector<std::pair<const char *, Swizzle>> kSwizzles = {
    {"none", Swizzle::None}, {"32b", Swizzle::B32}, {"64b", Swizzle::B64}, {"128b", Swizzle::B128}};
/// The tensors a tensormap argument can describe.
const std::vector<std::pair<const char *, std::string>> kTensorMapTensors = {
    {"q", "q"}, {"k", "k"}, {"v", "v"}, {"o", "o"}};
const std::vector<std::pair<const char *, GridRule>> kGridRules = {
    {"qtiles_heads_batch", GridRule::QTilesHeadsBatch},
    {"qtiles_kvheads_batch", GridRule::QTilesKvHeadsBatch},
    {"chunked_row_blocks", GridRule::ChunkedRowBlocks},
    {"rows_kvheads_batch", GridRule::RowsKvHeadsBatch},
    {"tiles_heads_batch", GridRule::TilesHeadsBatch},
    {"persistent", GridRule::PersistentTiles},
    {"ktiles_kvheads_batch", GridRule::KTilesKvHeadsBatch}};
const std::vector<std::pair<const char *, Axis>> kAxes = {
    {"batch", Axis::Batch}, {"head", Axis::Head}, {"token", Axis::Token}};
const std::vector<std::pair<const char *, ModuleKind>> kModuleKinds = {
    {"variants", ModuleKind::Variants}, {"model", ModuleKind::Model}};

constexpr int64_t kMaxI32 = 2147483647;

/// What an argument name means, by the vocabulary of docs/runtime.md.
struct ArgMeaning {
  enum Class { Pointer, Integer, Float, TensorMap, Unknown } cls = Unknown;
  std::string tensor; ///< the pointer argument a stride/size argument belongs to ("" if none)
  std::string why;    ///< for Unknown: an explanation
};

/// Stride-argument suffixes per tensor.
const std::map<std::string, std::vector<std::string>> kStrideAxes = {
    {"q", {"b", "h", "l"}},         {"k", {"b", "h", "l"}},
    {"v", {"b", "h", "l"}},         {"o", {"b", "h", "l"}},
    {"lse", {"b", "h"}},            {"indices", {"b", "h", "l"}},
    {"indexer.qI", {"b", "l", "h"}}, {"indexer.w", {"b", "l"}},
    {"indexer.kI", {"b", "l"}},
    {"dout", {"b", "h", "l"}},       {"dq", {"b", "h", "l"}},
    {"dk", {"b", "h", "l"}},         {"dv", {"b", "h", "l"}}};

const std::set<std::string> kPointerNames = {"q",     "k",       "v",          "o",
                                             "lse",   "sinks",   "indices",    "indexer.qI",
                                             "indexer.w", "indexer.kI", "workspace",
                                             "dout",  "dq",      "dk",         "dv"};
const std::set<std::string> kIntegerNames = {"batch",    "heads_q",  "heads_kv", "qlen",
                                             "klen",     "head_dim", "q_offset", "k_offset",
                                             "topk",     "block_first"};

ArgMeaning classifyArg(const std::string &n, const VariantSpec &v) {
  ArgMeaning m;
  if (kPointerNames.count(n)) {
    m.cls = ArgMeaning::Pointer;
    return m;
  }
  if (kIntegerNames.count(n)) {
    m.cls = ArgMeaning::Integer;
    return m;
  }
  if (n == "scale") {
    m.cls = ArgMeaning::Float;
    return m;
  }
  if (n.rfind("tmap:", 0) == 0) {
    if (isIdentifier(n.substr(5), false))
      m.cls = ArgMeaning::TensorMap;
    else
      m.why = "a tensormap argument is named tmap:NAME with NAME an identifier";
    return m;
  }
  size_t s = n.rfind("_stride_");
  if (s != std::string::npos && n.rfind("input:", 0) != 0) {
    std::string tensor = n.substr(0, s), axis = n.substr(s + 8);
    auto it = kStrideAxes.find(tensor);
    if (it != kStrideAxes.end()) {
      if (std::find(it->second.begin(), it->second.end(), axis) == it->second.end()) {
        std::vector<std::string> ok;
        for (const auto &a : it->second)
          ok.push_back(tensor + "_stride_" + a);
        m.why = "'" + tensor + "' has stride arguments " + joinNames(ok);
        return m;
      }
      m.cls = ArgMeaning::Integer;
      m.tensor = tensor;
      return m;
    }
  }
  if (n.rfind("input:", 0) == 0) {
    std::string rest = n.substr(6);
    size_t c = rest.find(':');
    std::string in = rest.substr(0, c);
    const InputSpec *spec = v.findInput(in);
    if (!spec) {
      m.why = "variant '" + v.name + "' declares no input '" + in + "' in its inputs";
      return m;
    }
    if (c == std::string::npos) {
      m.cls = ArgMeaning::Pointer;
      return m;
    }
    std::string tail = rest.substr(c + 1); // "stride:AXIS" or "size:AXIS"
    size_t c2 = tail.find(':');
    std::string what = tail.substr(0, c2), axis = c2 == std::string::npos ? "" : tail.substr(c2 + 1);
    if ((what != "stride" && what != "size") || axis.empty()) {
      m.why = "input arguments are input:NAME, input:NAME:stride:AXIS and input:NAME:size:AXIS";
      return m;
    }
    bool found = false;
    for (Axis a : spec->axes)
      found |= axis == axisName(a);
    if (!found) {
      std::vector<std::string> ax;
      for (Axis a : spec->axes)
        ax.push_back(axisName(a));
      m.why = "input '" + in + "' has axes [" + joinNames(ax) + "], not '" + axis + "'";
      return m;
    }
    m.cls = ArgMeaning::Integer;
    m.tensor = "input:" + in;
    return m;
  }
  m.why = "not in the argument vocabulary (see docs/runtime.md: q, k, v, o, lse, sinks, "
          "indices, indexer.qI/w/kI, workspace, X_stride_A, batch, heads_q, heads_kv, qlen, "
          "klen, head_dim, q_offset, k_offset, topk, block_first, scale, "
          "input:NAME[:stride|size:AXIS], tmap:NAME)";
  return m;
}

/// The first kernel of `v` whose grid (its own, else the variant's) is
/// `rule`, or nullptr.
const KernelSpec *firstWithGrid(const VariantSpec &v, GridRule rule) {
  for (const KernelSpec &k : v.kernels)
    if (v.gridOf(k) == rule)
      return &k;
  return nullptr;
}

void checkArgs(const VariantSpec &v, const std::string &path) {
  std::set<std::string> seen;
  for (size_t i = 0; i < v.args.size(); ++i) {
    const ArgSpec &a = v.args[i];
    std::string p = idx(path + ".args", i);
    if (!seen.insert(a.name).second)
      fail(p + ".name", "duplicate argument '" + a.name + "'");
    ArgMeaning m = classifyArg(a.name, v);
    switch (m.cls) {
    case ArgMeaning::Unknown:
      fail(p + ".name", "unknown argument '" + a.name + "': " + m.why);
    case ArgMeaning::Pointer:
      if (a.kind != ArgKind::Ptr)
        fail(p + ".kind", "'" + a.name + "' is a pointer argument: expected ptr, got '" +
                              argKindName(a.kind) + "'");
      break;
    case ArgMeaning::Integer:
      if (a.kind != ArgKind::I32 && a.kind != ArgKind::I64)
        fail(p + ".kind", "'" + a.name + "' is an integer argument: expected i32 or i64, got '" +
                              argKindName(a.kind) + "'");
      break;
    case ArgMeaning::Float:
      if (a.kind != ArgKind::F32)
        fail(p + ".kind",
             "'" + a.name + "' is a float argument: expected f32, got '" + argKindName(a.kind) + "'");
      break;
    case ArgMeaning::TensorMap:
      if (a.kind != ArgKind::TensorMap)
        fail(p + ".kind", "'" + a.name + "' is a tensormap argument: expected tensormap, got '" +
                              argKindName(a.kind) + "'");
      break;
    }
    if (!m.tensor.empty() && v.findArg(m.tensor) < 0)
      fail(p + ".name", "'" + a.name + "' describes tensor '" + m.tensor +
                            "', which is not among the arguments");
  }
  for (const char *req : {"q", "k", "v", "o", "lse"})
    if (!seen.count(req))
      fail(path + ".args", std::string("missing the required pointer argument '") + req + "'");
  if (v.sink != bool(seen.count("sinks")))
    fail(path + ".args", v.sink ? "the variant has a sink, but 'sinks' is not among the arguments"
                                : "'sinks' is an argument, but the variant has no sink");
  bool indexer = v.select && v.select->indexer;
  for (const char *n : {"indexer.qI", "indexer.w", "indexer.kI"})
    if (indexer != bool(seen.count(n)))
      fail(path + ".args", indexer ? std::string("the variant selects by indexer, but '") + n +
                                         "' is not among the arguments"
                                   : std::string("'") + n +
                                         "' is an argument, but the variant does not select by indexer");
  if (!v.select && (seen.count("indices") || seen.count("topk")))
    fail(path + ".args", std::string("'") + (seen.count("indices") ? "indices" : "topk") +
                             "' is an argument, but the variant has no select");
  // A chunked stage (chunked_row_blocks) needs its first row block and its
  // scratch passed, a tiled one (tiles_heads_batch) its scratch; the
  // workspace exists only for selection or tile summaries, and each only
  // where such a stage sizes (and numbers) it.
  const KernelSpec *chunked = firstWithGrid(v, GridRule::ChunkedRowBlocks);
  const KernelSpec *tiled = firstWithGrid(v, GridRule::TilesHeadsBatch);
  const KernelSpec *perRow = nullptr; // the gradient kernels' Delta
  for (const KernelSpec &k : v.kernels)
    if (k.workspacePerRow && !perRow)
      perRow = &k;
  // The gradient kernels' tensors, exactly in a backward variant.
  for (const char *n : {"dout", "dq", "dk", "dv"})
    if (v.backwardOf.empty() == bool(seen.count(n)))
      fail(path + ".args", v.backwardOf.empty()
                               ? std::string("'") + n + "' is an argument, but the variant is not a backward variant"
                               : std::string("the variant is the backward of '") + v.backwardOf + "', but '" + n +
                                     "' is not among the arguments");
  if (!v.select && !tiled && !perRow && seen.count("workspace"))
    fail(path + ".args", "'workspace' is an argument, but the variant has no select and no kernel "
                         "with grid 'tiles_heads_batch'");
  if (bool(chunked) != bool(seen.count("block_first")))
    fail(path + ".args", chunked ? "kernel '" + chunked->symbol +
                                       "' has grid 'chunked_row_blocks', but 'block_first' is not "
                                       "among the arguments"
                                 : std::string("'block_first' is an argument, but no kernel of the "
                                               "variant has grid 'chunked_row_blocks'"));
  const KernelSpec *sizer = chunked ? chunked : tiled ? tiled : perRow; // at most one kind (parseVariant)
  if (bool(sizer) != bool(seen.count("workspace")))
    fail(path + ".args", sizer ? "kernel '" + sizer->symbol + "' has grid '" +
                                     gridRuleName(v.gridOf(*sizer)) +
                                     "', but 'workspace' is not among the arguments"
                               : std::string("'workspace' is an argument, but no kernel of the "
                                             "variant has grid 'chunked_row_blocks' or "
                                             "'tiles_heads_batch'"));
  for (const auto &in : v.inputs)
    if (!seen.count("input:" + in.name))
      fail(path + ".args", "the variant reads input '" + in.name + "', but 'input:" + in.name +
                               "' is not among the arguments");
}

/// The fields that size a variant's workspace: workspace_per_key on the
/// chunked stages (chunked_row_blocks) and workspace_per_tile on the tiled
/// ones (tiles_heads_batch), each there and only there; consecutive chunked
/// stages alike; and not both kinds in one variant, which has one workspace.
void checkWorkspaceFields(const VariantSpec &v, const std::string &kernelsPath) {
  const KernelSpec *firstChunked = nullptr, *firstTiled = nullptr;
  for (size_t i = 0; i < v.kernels.size(); ++i) {
    const KernelSpec &k = v.kernels[i];
    std::string p = idx(kernelsPath, i);
    const char *whose = k.grid ? "the kernel's" : "the variant's";
    const bool chunked = v.gridOf(k) == GridRule::ChunkedRowBlocks;
    if (chunked && !k.workspacePerKey)
      fail(p, "missing required field 'workspace_per_key' (the grid is 'chunked_row_blocks', " +
                  std::string(whose) + ")");
    if (!chunked && k.workspacePerKey)
      fail(p + ".workspace_per_key",
           std::string("only a kernel with grid 'chunked_row_blocks' has a workspace per key, but "
                       "the grid is '") +
               gridRuleName(v.gridOf(k)) + "'" + (k.grid ? "" : " (the variant's)"));
    // Consecutive chunked stages run chunk by chunk on one workspace: the
    // same row blocks and bytes per key (the kernels of one pair are listed
    // in launch order).
    if (chunked && i > 0) {
      const KernelSpec &prev = v.kernels[i - 1];
      if (v.gridOf(prev) == GridRule::ChunkedRowBlocks && prev.headDim == k.headDim && prev.dtype == k.dtype &&
          (prev.blockM != k.blockM || prev.workspacePerKey != k.workspacePerKey))
        fail(p, "stage '" + k.stage + "' follows the chunked stage '" + prev.stage +
                    "', which shares its workspace chunk by chunk: expected block_m " +
                    std::to_string(prev.blockM) + " and workspace_per_key " +
                    std::to_string(*prev.workspacePerKey) + ", got " + std::to_string(k.blockM) + " and " +
                    std::to_string(*k.workspacePerKey));
    }
    if (k.workspacePerRow && v.backwardOf.empty())
      fail(p + ".workspace_per_row", "only the kernels of a backward variant (backward_of) have a workspace "
                                     "per row");
    if (!k.workspacePerRow && !v.backwardOf.empty())
      fail(p, "missing required field 'workspace_per_row' (the variant is the backward of '" + v.backwardOf + "')");
    const bool tiled = v.gridOf(k) == GridRule::TilesHeadsBatch;
    if (tiled && !k.workspacePerTile)
      fail(p, "missing required field 'workspace_per_tile' (the grid is 'tiles_heads_batch', " +
                  std::string(whose) + ")");
    if (!tiled && k.workspacePerTile)
      fail(p + ".workspace_per_tile",
           std::string("only a kernel with grid 'tiles_heads_batch' has a workspace per tile, but "
                       "the grid is '") +
               gridRuleName(v.gridOf(k)) + "'" + (k.grid ? "" : " (the variant's)"));
    // The grid counts CTAs as tiles over warps per CTA.
    if (tiled && k.threads % 32 != 0)
      fail(p + ".threads", "a kernel with grid 'tiles_heads_batch' runs one warp per tile: expected "
                           "a multiple of 32, got " + std::to_string(k.threads));
    if (chunked && !firstChunked)
      firstChunked = &k;
    if (tiled && !firstTiled)
      firstTiled = &k;
    if (firstChunked && firstTiled)
      fail(p, "kernel '" + firstTiled->symbol + "' has grid 'tiles_heads_batch' and kernel '" +
                  firstChunked->symbol + "' has grid 'chunked_row_blocks', but a variant has one "
                  "workspace, which a chunked and a tiled stage cannot share");
  }
}

VariantSpec parseVariant(const Value &val, const std::string &path) {
  Obj o(val, path, {"name", "head_dims", "dtypes", "kernels", "grid", "args", "sink"},
        {"scale", "inputs", "select", "backward_of"});
  VariantSpec v;
  v.name = o.str("name");
  if (o.get("backward_of")) {
    v.backwardOf = o.str("backward_of");
    if (!isIdentifier(v.backwardOf, false))
      fail(o.sub("backward_of"), "expected an identifier, got " + quoted(v.backwardOf));
    if (v.name != v.backwardOf + ".backward")
      fail(o.sub("name"), "the gradient kernels of '" + v.backwardOf + "' are named " +
                              quoted(v.backwardOf + ".backward") + ", got " + quoted(v.name));
  } else if (!isIdentifier(v.name, false)) {
    fail(o.sub("name"), "expected an identifier ([A-Za-z_][A-Za-z0-9_]*), got " + quoted(v.name));
  }

  const auto &hds = o.array("head_dims", true);
  for (size_t i = 0; i < hds.size(); ++i) {
    std::string p = idx(o.sub("head_dims"), i);
    int64_t d = Obj::intValue(hds[i], p, 8, 1024);
    if (d % 8 != 0)
      fail(p, "expected a multiple of 8 (rows of 16 bytes), got " + std::to_string(d));
    if (!v.headDims.empty() && d <= v.headDims.back())
      fail(p, "head_dims must be strictly ascending, got " + std::to_string(d) + " after " +
                  std::to_string(v.headDims.back()));
    v.headDims.push_back(d);
  }
  const auto &dts = o.array("dtypes", true);
  for (size_t i = 0; i < dts.size(); ++i) {
    std::string p = idx(o.sub("dtypes"), i);
    DType t = enumValue(dts[i], p, dtypeTable({DType::BF16, DType::F16}));
    if (std::find(v.dtypes.begin(), v.dtypes.end(), t) != v.dtypes.end())
      fail(p, std::string("duplicate dtype '") + dtypeName(t) + "'");
    v.dtypes.push_back(t);
  }

  const auto &ks = o.array("kernels", true);
  std::map<std::pair<int64_t, DType>, std::vector<std::string>> pairs; // the stages, in order
  for (size_t i = 0; i < ks.size(); ++i) {
    std::string p = idx(o.sub("kernels"), i);
    Obj ko(ks[i], p, {"head_dim", "dtype", "symbol", "block_m", "block_n", "threads", "shared_bytes"},
           {"stage", "grid", "workspace_per_key", "workspace_per_tile", "workspace_per_row"});
    KernelSpec k;
    k.headDim = ko.integer("head_dim", 1, 1 << 20);
    if (std::find(v.headDims.begin(), v.headDims.end(), k.headDim) == v.headDims.end())
      fail(ko.sub("head_dim"), std::to_string(k.headDim) + " is not among the variant's head_dims");
    k.dtype = enumValue(ko.at("dtype"), ko.sub("dtype"), dtypeTable({DType::BF16, DType::F16}));
    if (std::find(v.dtypes.begin(), v.dtypes.end(), k.dtype) == v.dtypes.end())
      fail(ko.sub("dtype"), std::string("'") + dtypeName(k.dtype) + "' is not among the variant's dtypes");
    if (ko.get("stage")) {
      k.stage = ko.str("stage");
      if (!isIdentifier(k.stage, false))
        fail(ko.sub("stage"), "expected an identifier (e.g. indexer, topk, attention), got " +
                                  quoted(k.stage));
    }
    if (ko.get("grid"))
      k.grid = enumValue(ko.at("grid"), ko.sub("grid"), kGridRules);
    if (ko.get("workspace_per_key"))
      k.workspacePerKey = ko.integer("workspace_per_key", 1, 65536);
    if (ko.get("workspace_per_tile"))
      k.workspacePerTile = ko.integer("workspace_per_tile", 1, 65536);
    if (ko.get("workspace_per_row"))
      k.workspacePerRow = ko.integer("workspace_per_row", 1, 65536);
    std::vector<std::string> &stages = pairs[{k.headDim, k.dtype}];
    if (std::find(stages.begin(), stages.end(), k.stage) != stages.end())
      fail(p, "a second kernel for head_dim " + std::to_string(k.headDim) + " and dtype " +
                  dtypeName(k.dtype) + (ko.get("stage") ? " in stage " + quoted(k.stage) : ""));
    stages.push_back(k.stage);
    k.symbol = ko.str("symbol");
    if (!isIdentifier(k.symbol, true))
      fail(ko.sub("symbol"), "expected a PTX identifier, got " + quoted(k.symbol));
    k.blockM = ko.integer("block_m", 1, 65536);
    k.blockN = ko.integer("block_n", 1, 65536);
    k.threads = ko.integer("threads", 1, 1024);
    k.sharedBytes = ko.integer("shared_bytes", 0, kMaxI32);
    v.kernels.push_back(k);
  }
  for (int64_t d : v.headDims)
    for (DType t : v.dtypes)
      if (!pairs.count({d, t}))
        fail(o.sub("kernels"), "no kernel for head_dim " + std::to_string(d) + " and dtype " +
                                   dtypeName(t) + " (every pair of head_dims x dtypes needs one)");
  // Every (head_dim, dtype) runs the same stages in the same order.
  const auto &first = *pairs.begin();
  for (const auto &[key, stages] : pairs)
    if (stages != first.second)
      fail(o.sub("kernels"),
           "head_dim " + std::to_string(key.first) + " and dtype " + dtypeName(key.second) +
               " have stages [" + joinNames(stages) + "], but head_dim " +
               std::to_string(first.first.first) + " and dtype " + dtypeName(first.first.second) +
               " have [" + joinNames(first.second) +
               "] (every pair of head_dims x dtypes needs the same stages, in launch order)");

  v.grid = enumValue(o.at("grid"), o.sub("grid"), kGridRules);
  checkWorkspaceFields(v, o.sub("kernels"));
  v.sink = o.boolean("sink");
  if (const Value *s = o.get("scale"); s && s->kind != Value::Kind::Null) {
    if (s->kind != Value::Kind::Number || !std::isfinite(s->number) || s->number <= 0)
      fail(o.sub("scale"), "expected null or a positive number, got " + describe(*s));
    v.scale = s->number;
  }
  if (o.get("inputs")) {
    const auto &ins = o.array("inputs", false);
    for (size_t i = 0; i < ins.size(); ++i) {
      std::string p = idx(o.sub("inputs"), i);
      Obj io(ins[i], p, {"name", "elem", "axes"});
      InputSpec in;
      in.name = io.str("name");
      if (!isIdentifier(in.name, false))
        fail(io.sub("name"), "expected an identifier, got " + quoted(in.name));
      if (v.findInput(in.name))
        fail(io.sub("name"), "duplicate input '" + in.name + "'");
      in.elem = enumValue(io.at("elem"), io.sub("elem"),
                          dtypeTable({DType::I32, DType::I64, DType::F32, DType::Bool}));
      const auto &axes = io.array("axes", true);
      if (axes.size() > 3)
        fail(io.sub("axes"), "expected at most 3 axes, got " + std::to_string(axes.size()));
      for (size_t j = 0; j < axes.size(); ++j) {
        Axis a = enumValue(axes[j], idx(io.sub("axes"), j), kAxes);
        if (std::find(in.axes.begin(), in.axes.end(), a) != in.axes.end())
          fail(idx(io.sub("axes"), j), std::string("axis '") + axisName(a) + "' appears twice");
        in.axes.push_back(a);
      }
      v.inputs.push_back(std::move(in));
    }
  }
  if (const Value *s = o.get("select"); s && s->kind != Value::Kind::Null) {
    Obj so(*s, o.sub("select"), {"topk"}, {"indexer"});
    SelectSpec sel;
    sel.topk = so.integer("topk", 1, kMaxI32);
    if (const Value *ix = so.get("indexer"); ix && ix->kind != Value::Kind::Null) {
      Obj xo(*ix, so.sub("indexer"), {"heads", "dim", "dtype"});
      IndexerSpec is;
      is.heads = xo.integer("heads", 1, 65536);
      is.dim = xo.integer("dim", 1, 65536);
      is.dtype = enumValue(xo.at("dtype"), xo.sub("dtype"),
                           dtypeTable({DType::F8E4M3, DType::F8E5M2, DType::BF16, DType::F16, DType::F32}));
      sel.indexer = is;
    }
    v.select = sel;
  }

  const auto &args = o.array("args", true);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string p = idx(o.sub("args"), i);
    Obj ao(args[i], p, {"name", "kind"}, {"tensor", "box", "swizzle"});
    ArgSpec a;
    a.name = ao.str("name");
    a.kind = enumValue(ao.at("kind"), ao.sub("kind"), kArgKinds);
    if (a.kind == ArgKind::TensorMap) {
      for (const char *f : {"tensor", "box", "swizzle"})
        if (!ao.get(f))
          fail(p, std::string("missing required field '") + f + "' (kind is 'tensormap')");
      a.tensor = enumValue(ao.at("tensor"), ao.sub("tensor"), kTensorMapTensors);
      const auto &box = ao.array("box", true);
      for (size_t j = 0; j < box.size(); ++j)
        a.box.push_back(Obj::intValue(box[j], idx(ao.sub("box"), j), 1, rt::kTensorMapMaxBox));
      a.swizzle = enumValue(ao.at("swizzle"), ao.sub("swizzle"), kSwizzles);
      // The box must suit every dtype the variant's kernels take.
      for (DType t : v.dtypes)
        if (std::string why = rt::tensorMapBoxProblem(a.box, a.swizzle, t); !why.empty())
          fail(ao.sub("box"), why);
    } else {
      for (const char *f : {"tensor", "box", "swizzle"})
        if (ao.get(f))
          fail(ao.sub(f), std::string("only a tensormap argument has '") + f + "', but kind is '" +
                              argKindName(a.kind) + "'");
    }
    v.args.push_back(std::move(a));
  }
  checkArgs(v, o.path());
  return v;
}

/// Validates the target spelling: sm_<digits>[a|f].
bool validTarget(const std::string &t) {
  if (t.rfind("sm_", 0) != 0 || t.size() < 5)
    return false;
  size_t i = 3;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9')
    ++i;
  if (i < 5)
    return false;
  return i == t.size() || (i + 1 == t.size() && (t[i] == 'a' || t[i] == 'f'));
}

Manifest parseValue(const Value &root) {
  Obj o(root, "", {"format", "format_version", "attnc_version", "target", "kind", "variants"},
        {"model"});
  if (o.str("format") != "attnc-module")
    fail("format", "expected 'attnc-module', got " + quoted(o.str("format")));
  Manifest m;
  const Value &fv = o.at("format_version");
  if (fv.kind != Value::Kind::Number || !fv.isInteger)
    fail("format_version", "expected an integer, got " + describe(fv));
  if (fv.integer != Manifest::kFormatVersion)
    fail("format_version", "this libattnrt reads format version " +
                               std::to_string(Manifest::kFormatVersion) + ", got " +
                               std::to_string(fv.integer) +
                               (fv.integer > Manifest::kFormatVersion
                                    ? " (written by a newer attnc: update libattnrt)"
                                    : ""));
  m.formatVersion = fv.integer;
  m.attncVersion = o.str("attnc_version");
  m.target = o.str("target");
  if (!validTarget(m.target))
    fail("target", "expected sm_XY or sm_XYa (e.g. sm_80, sm_90a), got " + quoted(m.target));
  m.kind = enumValue(o.at("kind"), "kind", kModuleKinds);
  const auto &vs = o.array("variants", true);
  std::set<std::string> symbols;
  for (size_t i = 0; i < vs.size(); ++i) {
    VariantSpec v = parseVariant(vs[i], idx("variants", i));
    if (m.findVariant(v.name) >= 0)
      fail(idx("variants", i) + ".name", "duplicate variant '" + v.name + "'");
    for (size_t j = 0; j < v.kernels.size(); ++j)
      if (!symbols.insert(v.kernels[j].symbol).second)
        fail(idx(idx("variants", i) + ".kernels", j) + ".symbol",
             "symbol '" + v.kernels[j].symbol + "' is used by another kernel");
    m.variants.push_back(std::move(v));
  }
  for (size_t i = 0; i < m.variants.size(); ++i) {
    const std::string &of = m.variants[i].backwardOf;
    if (!of.empty() && (m.findVariant(of) < 0 || !m.variants[size_t(m.findVariant(of))].backwardOf.empty()))
      fail(idx("variants", i) + ".backward_of", "expected the name of a forward variant of the module, got " +
                                                    quoted(of));
  }
  const Value *model = o.get("model");
  if (m.kind == ModuleKind::Model) {
    if (!model)
      fail("", "missing required field 'model' (kind is 'model')");
    Obj mo(*model, "model", {"name", "layers"});
    ModelSpec ms;
    ms.name = mo.str("name");
    if (!isIdentifier(ms.name, false))
      fail("model.name", "expected an identifier, got " + quoted(ms.name));
    const auto &ls = mo.array("layers", true);
    for (size_t i = 0; i < ls.size(); ++i)
      ms.layers.push_back(Obj::intValue(ls[i], idx("model.layers", i), 0,
                                        int64_t(m.variants.size()) - 1));
    m.model = std::move(ms);
  } else if (model) {
    fail("model", "a 'model' field needs kind 'model', but kind is 'variants'");
  }
  return m;
}

Value variantValue(const VariantSpec &v) {
  Value o = Value::makeObject();
  o.add("name", Value::makeString(v.name));
  Value hd = Value::makeArray();
  for (int64_t d : v.headDims)
    hd.array.push_back(Value::makeInt(d));
  o.add("head_dims", hd);
  Value dt = Value::makeArray();
  for (DType t : v.dtypes)
    dt.array.push_back(Value::makeString(dtypeName(t)));
  o.add("dtypes", dt);
  Value ks = Value::makeArray();
  // A single-stage variant's kernels are written as before stages existed.
  const bool staged = std::any_of(v.kernels.begin(), v.kernels.end(),
                                  [](const KernelSpec &k) { return k.stage != kAttentionStage; });
  for (const auto &k : v.kernels) {
    Value ko = Value::makeObject();
    ko.add("head_dim", Value::makeInt(k.headDim));
    ko.add("dtype", Value::makeString(dtypeName(k.dtype)));
    ko.add("symbol", Value::makeString(k.symbol));
    ko.add("block_m", Value::makeInt(k.blockM));
    ko.add("block_n", Value::makeInt(k.blockN));
    ko.add("threads", Value::makeInt(k.threads));
    ko.add("shared_bytes", Value::makeInt(k.sharedBytes));
    if (staged)
      ko.add("stage", Value::makeString(k.stage));
    if (k.grid)
      ko.add("grid", Value::makeString(gridRuleName(*k.grid)));
    if (k.workspacePerKey)
      ko.add("workspace_per_key", Value::makeInt(*k.workspacePerKey));
    if (k.workspacePerTile)
      ko.add("workspace_per_tile", Value::makeInt(*k.workspacePerTile));
    if (k.workspacePerRow)
      ko.add("workspace_per_row", Value::makeInt(*k.workspacePerRow));
    ks.array.push_back(ko);
  }
  o.add("kernels", ks);
  o.add("grid", Value::makeString(gridRuleName(v.grid)));
  o.add("scale", v.scale ? Value::makeNumber(*v.scale) : Value());
  o.add("sink", Value::makeBool(v.sink));
  if (!v.backwardOf.empty())
    o.add("backward_of", Value::makeString(v.backwardOf));
  Value ins = Value::makeArray();
  for (const auto &in : v.inputs) {
    Value io = Value::makeObject();
    io.add("name", Value::makeString(in.name));
    io.add("elem", Value::makeString(dtypeName(in.elem)));
    Value ax = Value::makeArray();
    for (Axis a : in.axes)
      ax.array.push_back(Value::makeString(axisName(a)));
    io.add("axes", ax);
    ins.array.push_back(io);
  }
  o.add("inputs", ins);
  if (v.select) {
    Value so = Value::makeObject();
    so.add("topk", Value::makeInt(v.select->topk));
    if (v.select->indexer) {
      Value xo = Value::makeObject();
      xo.add("heads", Value::makeInt(v.select->indexer->heads));
      xo.add("dim", Value::makeInt(v.select->indexer->dim));
      xo.add("dtype", Value::makeString(dtypeName(v.select->indexer->dtype)));
      so.add("indexer", xo);
    } else {
      so.add("indexer", Value());
    }
    o.add("select", so);
  } else {
    o.add("select", Value());
  }
  Value as = Value::makeArray();
  for (const auto &a : v.args) {
    Value ao = Value::makeObject();
    ao.add("name", Value::makeString(a.name));
    ao.add("kind", Value::makeString(argKindName(a.kind)));
    if (a.kind == ArgKind::TensorMap) {
      ao.add("tensor", Value::makeString(a.tensor));
      Value box = Value::makeArray();
      for (int64_t b : a.box)
        box.array.push_back(Value::makeInt(b));
      ao.add("box", box);
      ao.add("swizzle", Value::makeString(swizzleName(a.swizzle)));
    }
    as.array.push_back(ao);
  }
  o.add("args", as);
  return o;
}

Value toValue(const Manifest &m) {
  Value root = Value::makeObject();
  root.add("format", Value::makeString("attnc-module"));
  root.add("format_version", Value::makeInt(m.formatVersion));
  root.add("attnc_version", Value::makeString(m.attncVersion));
  root.add("target", Value::makeString(m.target));
  root.add("kind", Value::makeString(m.kind == ModuleKind::Model ? "model" : "variants"));
  Value vs = Value::makeArray();
  for (const auto &v : m.variants)
    vs.array.push_back(variantValue(v));
  root.add("variants", vs);
  if (m.model) {
    Value mo = Value::makeObject();
    mo.add("name", Value::makeString(m.model->name));
    Value ls = Value::makeArray();
    for (int64_t l : m.model->layers)
      ls.array.push_back(Value::makeInt(l));
    mo.add("layers", ls);
    root.add("model", mo);
  }
  return root;
}

const char kBegin[] = "// attnc-manifest-begin";
const char kEnd[] = "// attnc-manifest-end";

std::string rstrip(std::string s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

} // namespace

Manifest parseManifest(const std::string &text, int64_t fileLineOffset) {
  Value root;
  try {
    root = json::parse(text);
  } catch (const json::JsonError &e) {
    std::string where = "line " + std::to_string(e.line) + ", column " + std::to_string(e.column);
    if (fileLineOffset > 0)
      where += " (file line " + std::to_string(fileLineOffset + int64_t(e.line) - 1) + ")";
    throw Error(ErrorCode::Manifest, "manifest: JSON syntax error at " + where + ": " + e.what());
  }
  return parseValue(root);
}

std::string manifestToJson(const Manifest &m) {
  std::string text = json::write(toValue(m), 2);
  parseManifest(text); // validate what we write: the reader is the schema
  return text + "\n";
}

std::string variantToJson(const VariantSpec &v) { return json::write(variantValue(v), 2) + "\n"; }

std::optional<std::string> extractManifestFromPtx(const std::string &ptx, int64_t *jsonFirstLine) {
  // Scans lines without copying them: only lines starting with "// attnc-"
  // (and those inside the block) are looked at closely.
  std::string json;
  int64_t lineNo = 0, beginLine = 0;
  bool inBlock = false, done = false;
  const size_t n = ptx.size();
  for (size_t start = 0; start < n;) {
    size_t end = ptx.find('\n', start);
    if (end == std::string::npos)
      end = n;
    ++lineNo;
    size_t next = end + 1;
    if (!inBlock && ptx.compare(start, 9, "// attnc-") != 0) {
      start = next;
      continue;
    }
    std::string l = rstrip(ptx.substr(start, end - start));
    start = next;
    if (!inBlock) {
      if (l == kBegin) {
        if (done)
          throw Error(ErrorCode::Manifest,
                      "manifest: line " + std::to_string(lineNo) +
                          ": a second '// attnc-manifest-begin' block (a module has one manifest)");
        inBlock = true;
        beginLine = lineNo;
      } else if (l == kEnd) {
        throw Error(ErrorCode::Manifest, "manifest: line " + std::to_string(lineNo) +
                                             ": '// attnc-manifest-end' without a begin line");
      }
      continue;
    }
    if (l == kEnd) {
      inBlock = false;
      done = true;
      continue;
    }
    if (l == "//") {
      json += "\n";
    } else if (l.compare(0, 3, "// ") == 0) {
      json.append(l, 3, std::string::npos);
      json += "\n";
    } else {
      throw Error(ErrorCode::Manifest,
                  "manifest: line " + std::to_string(lineNo) +
                      ": inside the manifest block every line must start with '// ', got '" +
                      l.substr(0, 40) + "'");
    }
  }
  if (inBlock)
    throw Error(ErrorCode::Manifest, "manifest: the block opened on line " +
                                         std::to_string(beginLine) +
                                         " has no '// attnc-manifest-end' line");
  if (!done)
    return std::nullopt;
  if (jsonFirstLine)
    *jsonFirstLine = beginLine + 1;
  return json;
}

std::string embedManifestInPtx(const std::string &ptx, const Manifest &m) {
  // Drop an existing block.
  std::string rest;
  {
    std::istringstream in(ptx);
    std::string line;
    bool skipping = false;
    while (std::getline(in, line)) {
      std::string l = rstrip(line);
      if (l == kBegin) {
        skipping = true;
        continue;
      }
      if (skipping) {
        if (l == kEnd)
          skipping = false;
        continue;
      }
      rest += line + "\n";
    }
  }
  std::string out = std::string(kBegin) + "\n";
  std::istringstream js(manifestToJson(m));
  std::string line;
  while (std::getline(js, line))
    out += line.empty() ? "//\n" : "// " + line + "\n";
  out += std::string(kEnd) + "\n";
  return out + rest;
}

namespace {

/// Removes // and /* */ comments from PTX text.
std::string stripPtxComments(const std::string &s) {
  std::string out;
  out.reserve(s.size());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n')
        ++i;
    } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
      size_t e = s.find("*/", i + 2);
      i = e == std::string::npos ? n : e + 2;
      out += ' ';
    } else {
      out += s[i++];
    }
  }
  return out;
}

/// Byte size of a PTX scalar type token (".u64" -> 8), 0 if not one.
int ptxTypeSize(const std::string &tok) {
  static const std::map<std::string, int> sizes = {
      {".b8", 1},  {".u8", 1},  {".s8", 1},  {".b16", 2}, {".u16", 2}, {".s16", 2},
      {".f16", 2}, {".bf16", 2}, {".b32", 4}, {".u32", 4}, {".s32", 4}, {".f32", 4},
      {".b64", 8}, {".u64", 8}, {".s64", 8}, {".f64", 8}};
  auto it = sizes.find(tok);
  return it == sizes.end() ? 0 : it->second;
}

/// One `.entry` parameter: its size and its `.align` (0 if not declared).
struct PtxParam {
  int64_t bytes = 0, align = 0;
};

/// The parameters of every `.entry` of the PTX, by name. Finds
/// ".entry" with a fast substring search and parses only the declarations
/// (an occurrence after "//" on its line is a comment and skipped).
std::map<std::string, std::vector<PtxParam>> ptxEntries(const std::string &ptx) {
  std::map<std::string, std::vector<PtxParam>> entries;
  auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  size_t pos = 0;
  auto findEntry = [&](size_t from) -> size_t {
    if (from >= ptx.size())
      return std::string::npos;
    const void *hit = ::memmem(ptx.data() + from, ptx.size() - from, ".entry", 6);
    return hit ? size_t(static_cast<const char *>(hit) - ptx.data()) : std::string::npos;
  };
  while ((pos = findEntry(pos)) != std::string::npos) {
    size_t p = pos + 6;
    size_t lineStart = ptx.rfind('\n', pos);
    lineStart = lineStart == std::string::npos ? 0 : lineStart + 1;
    bool commented = false;
    for (size_t i = lineStart; i + 1 < pos && !commented; ++i)
      commented = ptx[i] == '/' && ptx[i + 1] == '/';
    if (commented || p >= ptx.size() || !isSpace(ptx[p])) {
      pos = p;
      continue;
    }
    while (p < ptx.size() && isSpace(ptx[p]))
      ++p;
    size_t nameStart = p;
    while (p < ptx.size() && !isSpace(ptx[p]) && ptx[p] != '(')
      ++p;
    std::string name = ptx.substr(nameStart, p - nameStart);
    while (p < ptx.size() && isSpace(ptx[p]))
      ++p;
    std::vector<PtxParam> params;
    if (p < ptx.size() && ptx[p] == '(') {
      size_t close = ptx.find(')', p);
      std::string list = stripPtxComments(
          ptx.substr(p + 1, close == std::string::npos ? std::string::npos : close - p - 1));
      // Declarations are separated by ','; in each, the first type token
      // gives the element size, the token after ".align" the alignment and
      // the last token the name (with [N] for an array).
      size_t i = 0;
      while (i <= list.size()) {
        size_t comma = list.find(',', i);
        if (comma == std::string::npos)
          comma = list.size();
        int elem = 0;
        int64_t align = 0;
        std::string last;
        for (size_t t = i; t < comma;) {
          while (t < comma && isSpace(list[t]))
            ++t;
          size_t te = t;
          while (te < comma && !isSpace(list[te]))
            ++te;
          if (te > t) {
            if (last == ".align")
              align = std::atoll(list.c_str() + t);
            last = list.substr(t, te - t);
            if (!elem)
              elem = ptxTypeSize(last);
          }
          t = te;
        }
        if (!last.empty()) {
          int64_t count = 1;
          size_t br = last.find('[');
          if (br != std::string::npos)
            count = std::atoll(last.c_str() + br + 1);
          params.push_back({int64_t(elem) * count, align});
        }
        i = comma + 1;
      }
      p = close == std::string::npos ? ptx.size() : close;
    }
    entries[name] = params;
    pos = p;
  }
  return entries;
}

} // namespace

void checkManifestAgainstPtx(const Manifest &m, const std::string &ptx) {
  auto entries = ptxEntries(ptx);
  for (size_t vi = 0; vi < m.variants.size(); ++vi) {
    const VariantSpec &v = m.variants[vi];
    for (size_t ki = 0; ki < v.kernels.size(); ++ki) {
      const KernelSpec &k = v.kernels[ki];
      std::string path = "variants[" + std::to_string(vi) + "].kernels[" + std::to_string(ki) + "]";
      auto it = entries.find(k.symbol);
      if (it == entries.end()) {
        std::vector<std::string> names;
        for (const auto &e : entries)
          names.push_back(e.first);
        fail(path + ".symbol", "the PTX has no .entry '" + k.symbol + "' (its entries: " +
                                   (names.empty() ? std::string("none") : joinNames(names)) + ")");
      }
      const auto &params = it->second;
      if (params.size() != v.args.size())
        fail(path + ".symbol", "the PTX entry '" + k.symbol + "' has " +
                                   std::to_string(params.size()) + " parameters, but variant '" +
                                   v.name + "' lists " + std::to_string(v.args.size()) + " args");
      for (size_t i = 0; i < params.size(); ++i) {
        const ArgKind kind = v.args[i].kind;
        int64_t want = kind == ArgKind::TensorMap                       ? 128
                       : (kind == ArgKind::Ptr || kind == ArgKind::I64) ? 8
                                                                        : 4;
        std::string what = "'" + v.args[i].name + "' is " + argKindName(kind) + " (" +
                           std::to_string(want) + " bytes), but parameter " + std::to_string(i) +
                           " of the PTX entry '" + k.symbol + "'";
        std::string argPath = "variants[" + std::to_string(vi) + "].args[" + std::to_string(i) + "]";
        if (params[i].bytes != want)
          fail(argPath, what + " has " + std::to_string(params[i].bytes) + " bytes");
        // nvcc declares `.align 64` (CUDA 12) or `.align 128` (CUDA 13); the
        // TMA instructions need the descriptor 64-byte aligned.
        if (kind == ArgKind::TensorMap && (params[i].align < 64 || params[i].align % 64 != 0))
          fail(argPath, what + " is declared with " +
                            (params[i].align ? ".align " + std::to_string(params[i].align)
                                             : std::string("no .align")) +
                            ": expected .align 64 or a multiple (a CUtensorMap is 64-byte aligned)");
      }
    }
  }
}

} // namespace attnc
