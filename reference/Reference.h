//===- Reference.h - The float64 reference executor -------------*- C++ -*-===//
//
// The oracle every GPU result is checked against: a plain float64 CPU
// implementation of language.md's meaning for one attention variant of a
// checked program. It is deliberately independent of tiling and code
// generation; it reuses only the front end's evaluator (dsl::evalMask,
// dsl::evalScore, dsl::evalSelectScore), which is the single definition of
// what an expression means.
//
// Per (b, query head h, query row r), with q = r + qOffset, k = c + kOffset:
//   1. allowed(c)   = evalMask(variant, {b, h, q, k})
//   2. selection    = topk(K) among allowed keys by the indexer score or the
//                     `by EXPR` score (ties: higher score, then lower column);
//                     computed once per (b, r) and shared by every head
//   3. s(c)         = evalScore(variant, scale * dot(Q[b,h,r], K[b,h/G,c]))
//   4. P(c)         = exp(s(c)) / (exp(S_h) + sum_c' exp(s(c')))  (S_h: sink)
//   5. O[b,h,r]     = sum_c P(c) V[b,h/G,c];   LSE = log(denominator)
// An empty row gives O = 0 and LSE = -inf (LSE = S_h with a sink), never NaN.
//
// Gradients (Request::gradOut = dO given): of L = sum(O * dO) with respect to
// Q, K, V and the sinks, per (b, h, r) over the attended keys c, with
// t_c = scale * q.k_c, s_c = score(t_c), P_c = exp(s_c - LSE):
//   dP_c = dO.v_c;  D = dO.O;  dS_c = P_c (dP_c - D);  dV_c += P_c dO
//   dRaw_c = dS_c * score'(t_c) * scale;  dQ += dRaw_c k_c;  dK_c += dRaw_c q
//   dSink_h += -exp(S_h - LSE) * D
// (dK/dV summed over the query heads of a KV group). Inputs, the selection
// and the indexer get no gradient (the selection is treated as constant);
// an empty row contributes nothing; a NaN row propagates NaN.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Sema.h"

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace attnc::reference {

/// A bad argument. `arg` names it: "q", "k", "v", "sinks", "input:NAME",
/// "indexer.qI", "indexer.w", "indexer.kI", "grad_out", "q_offset", "k_offset",
/// "variant", "indices" or "selection"; the driver maps it to the
/// command-line flag.
struct ReferenceError : std::runtime_error {
  ReferenceError(std::string argName, const std::string &msg)
      : std::runtime_error(msg), arg(std::move(argName)) {}
  std::string arg;
};

/// A dense C-order float64 tensor.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
  int64_t numel() const;
};

/// A runtime input tensor (`input NAME : ELEM[AXES]`), C order. Int and bool
/// elements live in `ints` (bool as 0/1), f32 elements in `floats`. Axis
/// lengths: batch = B, head = Hq; a token axis may have any length, and every
/// position read from it must lie in [0, length).
struct InputTensor {
  std::vector<int64_t> shape;
  std::vector<int64_t> ints;
  std::vector<double> floats;
};

/// The DSA lightning indexer's tensors: qI [B, Lq, HI, dI], w [B, Lq, HI],
/// kI [B, Lk, dI]. I[t, s] = sum_j w[t, j] * relu(dot(qI[t, j], kI[s])).
struct IndexerTensors {
  Tensor qI, w, kI;
};

/// Everything one reference run needs.
struct Request {
  const dsl::CheckedProgram *program = nullptr;
  int variant = -1;                 ///< index into program->ast.attentions
  int64_t layer = 0;                ///< the value of a `layer i:` variable
  Tensor q;                         ///< [B, Hq, Lq, D]
  Tensor k;                         ///< [B, Hkv, Lk, D]
  Tensor v;                         ///< [B, Hkv, Lk, Dv]
  std::optional<Tensor> sinks;      ///< [Hq]; required iff the variant has `sink;`
  std::map<std::string, InputTensor> inputs; ///< by declared name
  std::optional<IndexerTensors> indexer;     ///< required iff selecting by indexer
  /// A given selection [B, Hkv, Lq, K] (key columns, -1 for an unfilled
  /// slot, in any order) used instead of computing topk, e.g. a kernel's, to
  /// check the attention over it alone. Only for a selecting variant; every
  /// column must be allowed by the mask and appear once a row; the indexer
  /// tensors are then not needed (and are checked if given).
  std::optional<InputTensor> selection;
  /// dO [B, Hq, Lq, Dv]: when given, run() also computes the gradients of
  /// L = sum(O * dO) (Result::dq, dk, dv, dsinks).
  std::optional<Tensor> gradOut;
  std::optional<int64_t> qOffset;   ///< default Lk - Lq
  std::optional<int64_t> kOffset;   ///< default 0
  unsigned threads = 0;             ///< 0: std::thread::hardware_concurrency()
};

/// The outputs.
struct Result {
  Tensor o;                         ///< [B, Hq, Lq, Dv]
  Tensor lse;                       ///< [B, Hq, Lq], natural log
  /// [B, Hkv, Lq, K] key columns (0-based into K/V's Lk axis) chosen by
  /// topk, in selection order (higher score first, ties by lower column),
  /// -1 padding when fewer than K keys are allowed. Empty shape when the
  /// variant does not select.
  std::vector<int64_t> indicesShape;
  std::vector<int64_t> indices;
  /// Only when Request::gradOut is given: dL/dQ, dL/dK, dL/dV (the shapes
  /// of q, k, v) and dL/dsinks ([Hq], only for a variant with `sink;`).
  std::optional<Tensor> dq, dk, dv, dsinks;
};

/// Largest |q_offset| / |k_offset| accepted, so that positions and the
/// mask's integer arithmetic stay far from int64 overflow.
constexpr int64_t kMaxOffset = int64_t(1) << 40;

/// Validates the request (throws ReferenceError naming the argument, with the
/// expected and the actual shape) and then computes O, LSE and the indices.
/// An evaluation error (input read out of range, division by zero) is a
/// ReferenceError too.
Result run(const Request &req);

/// Validation only (what run() does first).
void validate(const Request &req);

} // namespace attnc::reference
