//===- Reference.cpp - The float64 reference executor ---------------------===//
//
// The algorithm (Reference.h has the formulas):
//   1. validate every shape, the GQA ratio, sinks, indexer, inputs, offsets;
//   2. split the work into tasks of one (b, query row) and all its heads --
//      or one (b, row, head) when there are too few rows to keep every core
//      busy (decode) or when the mask reads h;
//   3. per task: the mask row (once, unless it reads h), the topk selection
//      (once: it never depends on h), then per head the scores, a stable
//      softmax in double (max subtraction), O and LSE;
//   4. run the tasks on hardware_concurrency() std::threads pulling from an
//      atomic counter; the first error stops them all and is rethrown.
//
//===----------------------------------------------------------------------===//
#include "reference/Reference.h"

#include "attnc/dsl/Eval.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <sstream>
#include <thread>

namespace attnc::reference {

using dsl::AttentionDecl;
using dsl::Axis;
using dsl::CheckedProgram;
using dsl::ElemType;
using dsl::Expr;
using dsl::InputDecl;
using dsl::Value;
using dsl::VariantInfo;

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

/// Expected shapes are written with named dims: "[B=2, Hkv=4, Lk=?, D=64]".
struct Dim {
  const char *name;
  int64_t value; ///< -1: any (>= 1)
};

std::string expectedStr(const std::vector<Dim> &dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    out += i ? ", " : "";
    out += dims[i].name;
    if (dims[i].value >= 0)
      out += "=" + std::to_string(dims[i].value);
  }
  return out + "]";
}

/// Checks a shape against named dims; -1 dims only need to be >= 1.
void checkShape(const std::string &arg, const std::string &what,
                const std::vector<int64_t> &shape, const std::vector<Dim> &dims) {
  bool ok = shape.size() == dims.size();
  for (size_t i = 0; ok && i < dims.size(); ++i)
    ok = dims[i].value >= 0 ? shape[i] == dims[i].value : shape[i] >= 1;
  if (!ok)
    throw ReferenceError(arg, what + ": expected shape " + expectedStr(dims) + ", got " +
                                  shapeStr(shape));
}

void checkData(const std::string &arg, const Tensor &t) {
  if (int64_t(t.data.size()) != t.numel())
    throw ReferenceError(arg, arg + ": " + std::to_string(t.data.size()) +
                                  " elements for shape " + shapeStr(t.shape) + " (expected " +
                                  std::to_string(t.numel()) + ")");
}

/// The geometry of one request, once validated.
struct Dims {
  int64_t B, Hq, Hkv, G, Lq, Lk, D, Dv, K = 0;
  int64_t qOff, kOff;
};

/// Visits every expression node of the variant (lets, masks, score, select).
void forEachExpr(const AttentionDecl &v, const std::function<void(const Expr &)> &fn) {
  std::function<void(const Expr &)> walk = [&](const Expr &e) {
    fn(e);
    for (const auto &op : e.operands)
      if (op)
        walk(*op);
  };
  for (const auto &l : v.lets)
    if (l.value)
      walk(*l.value);
  for (const auto &m : v.masks)
    if (m)
      walk(*m);
  if (v.score)
    walk(*v.score);
  if (v.select && v.select->byExpr)
    walk(*v.select->byExpr);
}

/// Static check that a token axis indexed by q (or k) covers every query
/// (key) position. Arguments that are not plain q/k are checked at run time.
void checkTokenRanges(const CheckedProgram &p, const AttentionDecl &v, const Request &req,
                      const Dims &d) {
  forEachExpr(v, [&](const Expr &e) {
    if (e.kind != Expr::Kind::Index || e.refIndex < 0 ||
        e.refIndex >= int(p.ast.inputs.size()))
      return;
    const InputDecl &decl = p.ast.inputs[size_t(e.refIndex)];
    auto it = req.inputs.find(decl.name);
    if (it == req.inputs.end())
      return; // reported elsewhere
    for (size_t a = 0; a < decl.axes.size() && a < e.operands.size(); ++a) {
      if (decl.axes[a] != Axis::Token || !e.operands[a] || e.operands[a]->kind != Expr::Kind::Name)
        continue;
      bool isQ = e.operands[a]->ref == dsl::RefKind::VarQ;
      bool isK = e.operands[a]->ref == dsl::RefKind::VarK;
      if (!isQ && !isK)
        continue;
      int64_t lo = isQ ? d.qOff : d.kOff, len = isQ ? d.Lq : d.Lk;
      int64_t T = it->second.shape[a];
      if (lo < 0 || lo + len > T) {
        const char *off = isQ ? "q_offset" : "k_offset";
        throw ReferenceError(
            off, std::string(off) + " = " + std::to_string(lo) + ": input '" + decl.name +
                     "' is read at " + (isQ ? "query" : "key") + " positions [" +
                     std::to_string(lo) + ", " + std::to_string(lo + len) +
                     "), but its token axis covers [0, " + std::to_string(T) + ")");
      }
    }
  });
}

Dims validateImpl(const Request &req) {
  if (!req.program)
    throw ReferenceError("variant", "no program");
  const CheckedProgram &p = *req.program;
  if (req.variant < 0 || req.variant >= int(p.ast.attentions.size()))
    throw ReferenceError("variant", "variant index " + std::to_string(req.variant) +
                                        " out of range [0, " +
                                        std::to_string(p.ast.attentions.size()) + ")");
  const AttentionDecl &v = p.ast.attentions[size_t(req.variant)];
  const VariantInfo &info = p.variants[size_t(req.variant)];

  Dims d{};
  checkShape("q", "q", req.q.shape, {{"B", -1}, {"Hq", -1}, {"Lq", -1}, {"D", -1}});
  d.B = req.q.shape[0];
  d.Hq = req.q.shape[1];
  d.Lq = req.q.shape[2];
  d.D = req.q.shape[3];
  if (req.k.shape.size() == 4 && req.k.shape[3] != d.D && req.k.shape[0] == d.B)
    throw ReferenceError("k", "k: head dim D mismatch: q has D=" + std::to_string(d.D) +
                                  ", k has " + std::to_string(req.k.shape[3]) +
                                  " (expected shape " +
                                  expectedStr({{"B", d.B}, {"Hkv", -1}, {"Lk", -1}, {"D", d.D}}) +
                                  ", got " + shapeStr(req.k.shape) + ")");
  checkShape("k", "k", req.k.shape, {{"B", d.B}, {"Hkv", -1}, {"Lk", -1}, {"D", d.D}});
  d.Hkv = req.k.shape[1];
  d.Lk = req.k.shape[2];
  if (d.Hq % d.Hkv != 0)
    throw ReferenceError("k", "k: query heads Hq=" + std::to_string(d.Hq) +
                                  " are not a multiple of key/value heads Hkv=" +
                                  std::to_string(d.Hkv) + " (GQA needs Hq % Hkv == 0)");
  d.G = d.Hq / d.Hkv;
  checkShape("v", "v", req.v.shape, {{"B", d.B}, {"Hkv", d.Hkv}, {"Lk", d.Lk}, {"Dv", -1}});
  d.Dv = req.v.shape[3];
  checkData("q", req.q);
  checkData("k", req.k);
  checkData("v", req.v);
  if (req.gradOut) {
    checkShape("grad_out", "grad_out", req.gradOut->shape,
               {{"B", d.B}, {"Hq", d.Hq}, {"Lq", d.Lq}, {"Dv", d.Dv}});
    checkData("grad_out", *req.gradOut);
  }

  // Sinks.
  if (v.sink) {
    if (!req.sinks)
      throw ReferenceError("sinks", "variant '" + v.name +
                                        "' has `sink;`: sink logits of shape [Hq=" +
                                        std::to_string(d.Hq) + "] are required");
    checkShape("sinks", "sinks", req.sinks->shape, {{"Hq", d.Hq}});
    checkData("sinks", *req.sinks);
  } else if (req.sinks) {
    throw ReferenceError("sinks", "variant '" + v.name + "' has no `sink;` clause, but sinks were given");
  }

  // Selection and the indexer.
  bool byIndexer = v.select && v.select->byIndexer;
  if (v.select) {
    if (!info.topk || *info.topk < 1)
      throw ReferenceError("variant", "variant '" + v.name + "': topk(K) has no valid K");
    d.K = *info.topk;
    if (info.maskUsesHead)
      throw ReferenceError("variant",
                           "variant '" + v.name +
                               "' selects with topk but its mask reads h; one selection is "
                               "shared by all heads of a KV group, so the mask must not "
                               "depend on the head");
  }
  if (req.selection) {
    if (!v.select)
      throw ReferenceError("selection", "variant '" + v.name + "' does not select, but a selection was given");
    checkShape("selection", "selection", req.selection->shape,
               {{"B", d.B}, {"Hkv", d.Hkv}, {"Lq", d.Lq}, {"K", d.K}});
    if (int64_t(req.selection->ints.size()) != d.B * d.Hkv * d.Lq * d.K)
      throw ReferenceError("selection", "selection: " + std::to_string(req.selection->ints.size()) +
                                            " elements for shape " + shapeStr(req.selection->shape));
    for (int64_t c : req.selection->ints)
      if (c < -1 || c >= d.Lk)
        throw ReferenceError("selection", "selection: expected key columns in [0, " + std::to_string(d.Lk) +
                                              ") or -1, got " + std::to_string(c));
  }
  if (byIndexer && (!req.selection || req.indexer)) {
    if (!req.indexer)
      throw ReferenceError("indexer", "variant '" + v.name +
                                          "' selects by indexer: the indexer tensors qI, w, kI "
                                          "are required");
    int64_t HI = info.indexerHeads, dI = info.indexerDim;
    checkShape("indexer.qI", "indexer qI", req.indexer->qI.shape,
               {{"B", d.B}, {"Lq", d.Lq}, {"HI", HI}, {"dI", dI}});
    checkShape("indexer.w", "indexer w", req.indexer->w.shape, {{"B", d.B}, {"Lq", d.Lq}, {"HI", HI}});
    checkShape("indexer.kI", "indexer kI", req.indexer->kI.shape, {{"B", d.B}, {"Lk", d.Lk}, {"dI", dI}});
    checkData("indexer.qI", req.indexer->qI);
    checkData("indexer.w", req.indexer->w);
    checkData("indexer.kI", req.indexer->kI);
  } else if (req.indexer) {
    throw ReferenceError("indexer", "variant '" + v.name +
                                        "' does not select by indexer, but indexer tensors were given");
  }

  // Inputs: every given one must be declared and well-shaped; every one the
  // variant reads must be given.
  for (const auto &[name, t] : req.inputs) {
    int idx = p.findInput(name);
    std::string arg = "input:" + name;
    if (idx < 0) {
      std::string known;
      for (const auto &in : p.ast.inputs)
        known += (known.empty() ? "" : ", ") + in.name;
      throw ReferenceError(arg, "input '" + name + "' is not declared in the program" +
                                    (known.empty() ? std::string(" (it declares no inputs)")
                                                   : " (declared: " + known + ")"));
    }
    const InputDecl &decl = p.ast.inputs[size_t(idx)];
    std::vector<Dim> dims;
    for (Axis a : decl.axes)
      dims.push_back(a == Axis::Batch  ? Dim{"batch=B", d.B}
                     : a == Axis::Head ? Dim{"head=Hq", d.Hq}
                                       : Dim{"token", -1});
    checkShape(arg, "input '" + name + "'", t.shape, dims);
    int64_t n = 1;
    for (int64_t s : t.shape)
      n *= s;
    bool isFloat = decl.elem == ElemType::F32;
    if (int64_t(isFloat ? t.floats.size() : t.ints.size()) != n)
      throw ReferenceError(arg, "input '" + name + "': expected " + std::to_string(n) + " " +
                                    dsl::elemTypeName(decl.elem) + " elements for shape " +
                                    shapeStr(t.shape));
  }
  for (int idx : info.inputsUsed) {
    const InputDecl &decl = p.ast.inputs[size_t(idx)];
    if (!req.inputs.count(decl.name)) {
      std::string axes;
      for (Axis a : decl.axes)
        axes += (axes.empty() ? "" : ", ") + std::string(dsl::axisName(a));
      throw ReferenceError("input:" + decl.name,
                           "variant '" + v.name + "' reads input '" + decl.name + " : " +
                               dsl::elemTypeName(decl.elem) + "[" + axes +
                               "]', which was not given");
    }
  }

  // Offsets.
  d.qOff = req.qOffset ? *req.qOffset : d.Lk - d.Lq;
  d.kOff = req.kOffset ? *req.kOffset : 0;
  if (d.qOff < -kMaxOffset || d.qOff > kMaxOffset)
    throw ReferenceError("q_offset", "q_offset = " + std::to_string(d.qOff) +
                                         " is out of range [-2^40, 2^40]");
  if (d.kOff < -kMaxOffset || d.kOff > kMaxOffset)
    throw ReferenceError("k_offset", "k_offset = " + std::to_string(d.kOff) +
                                         " is out of range [-2^40, 2^40]");
  checkTokenRanges(p, v, req, d);
  return d;
}

/// Reads input elements for the evaluator, bounds-checked.
class Inputs final : public dsl::InputReader {
public:
  Inputs(const CheckedProgram &p, const Request &req) : p_(p) {
    tensors_.resize(p.ast.inputs.size(), nullptr);
    for (size_t i = 0; i < p.ast.inputs.size(); ++i) {
      auto it = req.inputs.find(p.ast.inputs[i].name);
      if (it != req.inputs.end())
        tensors_[i] = &it->second;
    }
  }

  Value read(int input, const int64_t *indices) const override {
    const InputDecl &decl = p_.ast.inputs.at(size_t(input));
    const InputTensor *t = tensors_.at(size_t(input));
    if (!t)
      throw dsl::EvalError("input '" + decl.name + "' was not given");
    int64_t flat = 0;
    for (size_t a = 0; a < decl.axes.size(); ++a) {
      int64_t n = t->shape[a], i = indices[a];
      if (i < 0 || i >= n)
        throw dsl::EvalError("input '" + decl.name + "': " + dsl::axisName(decl.axes[a]) +
                             " index " + std::to_string(i) + " out of range [0, " +
                             std::to_string(n) + ")");
      flat = flat * n + i;
    }
    switch (decl.elem) {
    case ElemType::F32:
      return Value::ofFloat(t->floats[size_t(flat)]);
    case ElemType::Bool:
      return Value::ofBool(t->ints[size_t(flat)] != 0);
    default:
      return Value::ofInt(t->ints[size_t(flat)]);
    }
  }

private:
  const CheckedProgram &p_;
  std::vector<const InputTensor *> tensors_;
};

/// dot(a, b) over n elements with four independent partial sums, so the
/// loop is not bound by the latency of one long chain of additions.
double dot(const double *a, const double *b, int64_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i)
    s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

/// One unit of work: a (b, row) and the query heads [h0, h1).
struct Task {
  int64_t b, row, h0, h1;
};

class Executor {
public:
  Executor(const Request &req, const Dims &d)
      : req_(req), d_(d), p_(*req.program), v_(p_.ast.attentions[size_t(req.variant)]),
        info_(p_.variants[size_t(req.variant)]), inputs_(p_, req) {
    scale_ = info_.scale ? *info_.scale : 1.0 / std::sqrt(double(d.D));
  }

  Result run() {
    Result r;
    r.o.shape = {d_.B, d_.Hq, d_.Lq, d_.Dv};
    r.o.data.assign(size_t(r.o.numel()), 0.0);
    r.lse.shape = {d_.B, d_.Hq, d_.Lq};
    r.lse.data.assign(size_t(r.lse.numel()), -std::numeric_limits<double>::infinity());
    if (v_.select) {
      r.indicesShape = {d_.B, d_.Hkv, d_.Lq, d_.K};
      r.indices.assign(size_t(d_.B * d_.Hkv * d_.Lq * d_.K), -1);
    }
    out_ = &r;

    unsigned threads = req_.threads ? req_.threads : std::thread::hardware_concurrency();
    threads = std::max(1u, threads);
    // Tasks: per (b, row) with all heads, unless rows are too few or the
    // mask depends on the head.
    int64_t rows = d_.B * d_.Lq;
    bool perHead = info_.maskUsesHead || (rows < 4 * int64_t(threads) && d_.Hq > 1);
    for (int64_t b = 0; b < d_.B; ++b)
      for (int64_t row = 0; row < d_.Lq; ++row) {
        if (perHead)
          for (int64_t h = 0; h < d_.Hq; ++h)
            tasks_.push_back({b, row, h, h + 1});
        else
          tasks_.push_back({b, row, 0, d_.Hq});
      }
    threads = unsigned(std::min<int64_t>(threads, int64_t(tasks_.size())));
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t)
      pool.emplace_back([this] { worker(); });
    worker();
    for (auto &t : pool)
      t.join();
    if (error_)
      std::rethrow_exception(error_);
    if (req_.gradOut)
      backward(r, threads);
    return r;
  }

private:
  /// The gradients (Reference.h), after the forward pass filled O and LSE.
  /// One task per (b, KV group): it owns dK/dV of that group and dQ of its
  /// heads, so nothing is shared; sink partials per (b, h) are summed over b
  /// at the end. The sums run in a fixed order: results do not depend on the
  /// thread count.
  void backward(Result &r, unsigned threads) {
    r.dq = Tensor{req_.q.shape, std::vector<double>(req_.q.data.size(), 0.0)};
    r.dk = Tensor{req_.k.shape, std::vector<double>(req_.k.data.size(), 0.0)};
    r.dv = Tensor{req_.v.shape, std::vector<double>(req_.v.data.size(), 0.0)};
    sinkPartial_.assign(size_t(d_.B * d_.Hq), 0.0);
    next_ = 0;
    size_t groups = size_t(d_.B * d_.Hkv);
    threads = unsigned(std::max<int64_t>(1, std::min<int64_t>(threads, int64_t(groups))));
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t)
      pool.emplace_back([this, groups] { gradWorker(groups); });
    gradWorker(groups);
    for (auto &t : pool)
      t.join();
    if (error_)
      std::rethrow_exception(error_);
    if (v_.sink) {
      r.dsinks = Tensor{{d_.Hq}, std::vector<double>(size_t(d_.Hq), 0.0)};
      for (int64_t b = 0; b < d_.B; ++b)
        for (int64_t h = 0; h < d_.Hq; ++h)
          r.dsinks->data[size_t(h)] += sinkPartial_[size_t(b * d_.Hq + h)];
    }
  }

  void recordError(const dsl::EvalEnv &env, bool isReferenceError, const std::exception &e) {
    std::lock_guard<std::mutex> lock(errMu_);
    if (!error_) {
      if (isReferenceError) {
        error_ = std::current_exception();
      } else {
        std::ostringstream msg;
        msg << "evaluating variant '" << v_.name << "' at b=" << env.b << ", h=" << env.h
            << ", q=" << env.q << ", k=" << env.k << ": " << e.what();
        error_ = std::make_exception_ptr(ReferenceError("variant", msg.str()));
      }
    }
    failed_ = true;
  }

  void gradWorker(size_t groups) {
    std::vector<char> allowed(size_t(d_.Lk));
    std::vector<int64_t> keys, selected;
    std::vector<double> selScores;
    for (;;) {
      if (failed_.load(std::memory_order_relaxed))
        return;
      size_t i = next_.fetch_add(1);
      if (i >= groups)
        return;
      dsl::EvalEnv env = baseEnv();
      int64_t b = int64_t(i) / d_.Hkv, g = int64_t(i) % d_.Hkv;
      try {
        for (int64_t row = 0; row < d_.Lq; ++row) {
          env.b = b;
          env.q = row + d_.qOff;
          env.h = g * d_.G;
          if (!info_.maskUsesHead)
            maskRow(env, allowed);
          if (v_.select && !req_.selection)
            select(env, b, row, allowed, selected, selScores);
          for (int64_t h = g * d_.G; h < (g + 1) * d_.G; ++h) {
            env.h = h;
            if (info_.maskUsesHead)
              maskRow(env, allowed);
            rowKeys(b, h, row, allowed, selected, keys);
            backwardRow(env, b, h, row, keys);
          }
        }
      } catch (const ReferenceError &e) {
        recordError(env, true, e);
        return;
      } catch (const std::exception &e) {
        recordError(env, false, e);
        return;
      }
    }
  }

  /// The keys row `row` of head h attends, in column order: the given
  /// selection, the topk selection (summed in column order like an
  /// unselected row, so that topk(K) with K >= the allowed keys reproduces
  /// the mask alone bit for bit), or every allowed key.
  void rowKeys(int64_t b, int64_t h, int64_t row, const std::vector<char> &allowed,
               const std::vector<int64_t> &selected, std::vector<int64_t> &keys) const {
    keys.clear();
    if (req_.selection) {
      givenSelection(b, h / d_.G, row, allowed, keys);
    } else if (v_.select) {
      keys = selected;
      std::sort(keys.begin(), keys.end());
    } else {
      for (int64_t c = 0; c < d_.Lk; ++c)
        if (allowed[size_t(c)])
          keys.push_back(c);
    }
  }

  /// One row's contribution to dQ, dK, dV and the sink (Reference.h).
  void backwardRow(dsl::EvalEnv &env, int64_t b, int64_t h, int64_t row,
                   const std::vector<int64_t> &keys) {
    const int64_t g = h / d_.G, D = d_.D, Dv = d_.Dv;
    size_t oRow = size_t((b * d_.Hq + h) * d_.Lq + row);
    double lse = out_->lse.data[oRow];
    if (lse == -std::numeric_limits<double>::infinity())
      return; // empty row: O = 0 whatever the inputs, zero gradients
    const double *q = &req_.q.data[oRow * size_t(D)];
    const double *kBase = &req_.k.data[size_t((b * d_.Hkv + g) * d_.Lk * D)];
    const double *vBase = &req_.v.data[size_t((b * d_.Hkv + g) * d_.Lk * Dv)];
    const double *dO = &req_.gradOut->data[oRow * size_t(Dv)];
    const double *o = &out_->o.data[oRow * size_t(Dv)];
    double *dq = &out_->dq->data[oRow * size_t(D)];
    double *dkBase = &out_->dk->data[size_t((b * d_.Hkv + g) * d_.Lk * D)];
    double *dvBase = &out_->dv->data[size_t((b * d_.Hkv + g) * d_.Lk * Dv)];
    const double Dsum = dot(dO, o, Dv);
    for (int64_t c : keys) {
      double t = scale_ * dot(q, kBase + c * D, D);
      double s = t, dds = 1.0;
      if (v_.score) {
        env.k = c + d_.kOff;
        dsl::ScoreDerivative sd = dsl::evalScoreDerivative(v_, env, t);
        s = sd.value;
        dds = sd.dds;
      }
      double p = std::exp(s - lse);
      if (p == 0.0)
        continue; // contributes nothing (also keeps 0 * inf derivatives out)
      const double *v = vBase + c * Dv;
      double *dv = dvBase + c * Dv;
      double dP = dot(dO, v, Dv);
      for (int64_t x = 0; x < Dv; ++x)
        dv[x] += p * dO[x];
      double dRaw = p * (dP - Dsum) * dds * scale_;
      const double *k = kBase + c * D;
      double *dk = dkBase + c * D;
      for (int64_t x = 0; x < D; ++x) {
        dq[x] += dRaw * k[x];
        dk[x] += dRaw * q[x];
      }
    }
    if (v_.sink)
      sinkPartial_[size_t(b * d_.Hq + h)] += -std::exp(req_.sinks->data[size_t(h)] - lse) * Dsum;
  }

  void worker() {
    std::vector<char> allowed(size_t(d_.Lk));
    std::vector<int64_t> keys, selected;
    std::vector<double> scores, selScores, acc(size_t(d_.Dv));
    for (;;) {
      if (failed_.load(std::memory_order_relaxed))
        return;
      size_t i = next_.fetch_add(1);
      if (i >= tasks_.size())
        return;
      dsl::EvalEnv env = baseEnv();
      try {
        runTask(tasks_[i], env, allowed, keys, selected, scores, selScores, acc);
      } catch (const ReferenceError &e) { // a bad given selection: names its argument
        recordError(env, true, e);
        return;
      } catch (const std::exception &e) {
        recordError(env, false, e);
        return;
      }
    }
  }

  dsl::EvalEnv baseEnv() const {
    dsl::EvalEnv env;
    env.qlen = d_.Lq;
    env.klen = d_.Lk;
    env.layer = req_.layer;
    env.program = &p_;
    env.variant = &v_;
    env.inputs = &inputs_;
    return env;
  }

  void maskRow(dsl::EvalEnv &env, std::vector<char> &allowed) const {
    for (int64_t c = 0; c < d_.Lk; ++c) {
      env.k = c + d_.kOff;
      allowed[size_t(c)] = dsl::evalMask(v_, env);
    }
  }

  /// topk among the allowed keys; `selected` gets the columns in selection
  /// order: higher score first, ties by lower column, NaN scores last.
  void select(dsl::EvalEnv &env, int64_t b, int64_t row, const std::vector<char> &allowed,
              std::vector<int64_t> &selected, std::vector<double> &sc) const {
    selected.clear();
    sc.assign(size_t(d_.Lk), 0.0);
    for (int64_t c = 0; c < d_.Lk; ++c) {
      if (!allowed[size_t(c)])
        continue;
      selected.push_back(c);
      env.k = c + d_.kOff;
      sc[size_t(c)] = v_.select->byIndexer ? indexerScore(b, row, c) : dsl::evalSelectScore(v_, env);
    }
    auto before = [&](int64_t x, int64_t y) {
      double a = sc[size_t(x)], bb = sc[size_t(y)];
      bool an = std::isnan(a), bn = std::isnan(bb);
      if (an != bn)
        return bn; // non-NaN first
      if (!an && a != bb)
        return a > bb;
      return x < y;
    };
    size_t K = size_t(d_.K);
    if (selected.size() > K) {
      std::partial_sort(selected.begin(), selected.begin() + std::ptrdiff_t(K), selected.end(), before);
      selected.resize(K);
    } else {
      std::sort(selected.begin(), selected.end(), before);
    }
  }

  /// Request::selection's keys of (b, KV group g, row), in column order;
  /// each must be allowed and appear once.
  void givenSelection(int64_t b, int64_t g, int64_t row, const std::vector<char> &allowed,
                      std::vector<int64_t> &keys) const {
    const int64_t *given = &req_.selection->ints[size_t(((b * d_.Hkv + g) * d_.Lq + row) * d_.K)];
    for (int64_t i = 0; i < d_.K; ++i)
      if (given[i] >= 0)
        keys.push_back(given[i]);
    std::sort(keys.begin(), keys.end());
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i > 0 && keys[i] == keys[i - 1])
        throw ReferenceError("selection", "selection: key column " + std::to_string(keys[i]) +
                                              " appears twice at b=" + std::to_string(b) + ", group " +
                                              std::to_string(g) + ", row " + std::to_string(row));
      if (!allowed[size_t(keys[i])])
        throw ReferenceError("selection", "selection: key column " + std::to_string(keys[i]) +
                                              " is not allowed by the mask at b=" + std::to_string(b) +
                                              ", row " + std::to_string(row));
    }
  }

  /// I[t, s] = sum_j w[t, j] * relu(dot(qI[t, j], kI[s])).
  double indexerScore(int64_t b, int64_t row, int64_t col) const {
    const IndexerTensors &ix = *req_.indexer;
    int64_t HI = ix.qI.shape[2], dI = ix.qI.shape[3];
    const double *k = &ix.kI.data[size_t((b * d_.Lk + col) * dI)];
    double sum = 0.0;
    for (int64_t j = 0; j < HI; ++j) {
      const double *q = &ix.qI.data[size_t(((b * d_.Lq + row) * HI + j) * dI)];
      sum += ix.w.data[size_t((b * d_.Lq + row) * HI + j)] * std::max(0.0, dot(q, k, dI));
    }
    return sum;
  }

  void runTask(const Task &t, dsl::EvalEnv &env, std::vector<char> &allowed,
               std::vector<int64_t> &keys, std::vector<int64_t> &selected,
               std::vector<double> &scores, std::vector<double> &selScores,
               std::vector<double> &acc) {
    env.b = t.b;
    env.q = t.row + d_.qOff;
    env.h = t.h0;
    if (!info_.maskUsesHead)
      maskRow(env, allowed);
    if (v_.select && !req_.selection) {
      select(env, t.b, t.row, allowed, selected, selScores);
      // Every KV group whose heads this task covers gets the indices.
      for (int64_t g = t.h0 / d_.G; g <= (t.h1 - 1) / d_.G; ++g) {
        if (t.h0 > g * d_.G) // another task wrote this group
          continue;
        int64_t *dst = &out_->indices[size_t(((t.b * d_.Hkv + g) * d_.Lq + t.row) * d_.K)];
        std::copy(selected.begin(), selected.end(), dst);
      }
    }
    for (int64_t h = t.h0; h < t.h1; ++h) {
      env.h = h;
      if (info_.maskUsesHead)
        maskRow(env, allowed);
      rowKeys(t.b, h, t.row, allowed, selected, keys);
      attendRow(env, t.b, h, t.row, keys, scores, acc);
    }
  }

  /// Softmax over `keys` (plus the sink) and the weighted sum of V.
  void attendRow(dsl::EvalEnv &env, int64_t b, int64_t h, int64_t row,
                 const std::vector<int64_t> &keys, std::vector<double> &scores,
                 std::vector<double> &acc) {
    const int64_t g = h / d_.G, D = d_.D, Dv = d_.Dv;
    const double *q = &req_.q.data[size_t(((b * d_.Hq + h) * d_.Lq + row) * D)];
    const double *kBase = &req_.k.data[size_t((b * d_.Hkv + g) * d_.Lk * D)];
    const double *vBase = &req_.v.data[size_t((b * d_.Hkv + g) * d_.Lk * Dv)];
    const double ninf = -std::numeric_limits<double>::infinity();
    scores.resize(keys.size());
    double m = ninf;
    for (size_t i = 0; i < keys.size(); ++i) {
      double s = scale_ * dot(q, kBase + keys[i] * D, D);
      if (v_.score) {
        env.k = keys[i] + d_.kOff;
        s = dsl::evalScore(v_, env, s);
      }
      scores[i] = s;
      m = std::max(m, s);
    }
    bool hasSink = v_.sink;
    double sink = hasSink ? req_.sinks->data[size_t(h)] : ninf;
    m = std::max(m, sink);
    size_t oRow = size_t((b * d_.Hq + h) * d_.Lq + row);
    double *o = &out_->o.data[oRow * size_t(Dv)];
    // A score of +inf or NaN at an allowed key makes the row NaN (language.md
    // §5.4); std::max above skips NaN, so look for it.
    if (std::any_of(scores.begin(), scores.end(), [](double x) { return std::isnan(x) || x == HUGE_VAL; })) {
      std::fill(o, o + Dv, std::numeric_limits<double>::quiet_NaN());
      out_->lse.data[oRow] = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    if (m == ninf) { // empty row (or every score -inf): O = 0, LSE = -inf
      out_->lse.data[oRow] = ninf;
      return;
    }
    std::fill(acc.begin(), acc.end(), 0.0);
    double denom = hasSink ? std::exp(sink - m) : 0.0;
    for (size_t i = 0; i < keys.size(); ++i) {
      double p = std::exp(scores[i] - m);
      denom += p;
      const double *v = vBase + keys[i] * Dv;
      for (int64_t x = 0; x < Dv; ++x)
        acc[size_t(x)] += p * v[x];
    }
    for (int64_t x = 0; x < Dv; ++x)
      o[x] = keys.empty() ? 0.0 : acc[size_t(x)] / denom;
    out_->lse.data[oRow] = m + std::log(denom);
  }

  const Request &req_;
  Dims d_;
  const CheckedProgram &p_;
  const AttentionDecl &v_;
  const VariantInfo &info_;
  Inputs inputs_;
  double scale_ = 1.0;
  Result *out_ = nullptr;
  std::vector<Task> tasks_;
  std::vector<double> sinkPartial_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::mutex errMu_;
  std::exception_ptr error_;
};

} // namespace

void validate(const Request &req) { (void)validateImpl(req); }

Result run(const Request &req) {
  Dims d = validateImpl(req);
  return Executor(req, d).run();
}

} // namespace attnc::reference
