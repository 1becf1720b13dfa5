//===- ParserFuzzer.cpp - libFuzzer target for the front end --------------===//
//
// Feeds arbitrary bytes through the whole front end (pre-scan, X3 grammar,
// sema, the AST printer and the evaluator on a few points). Built with clang
// and -fsanitize=fuzzer,address,undefined; see fuzz/run.sh. A finding is a
// crash, a sanitizer report, a leak or a timeout.
//
//===----------------------------------------------------------------------===//
#include "attnc/dsl/AstPrinter.h"
#include "attnc/dsl/Eval.h"
#include "attnc/dsl/Sema.h"

#include <sstream>

using namespace attnc::dsl;

namespace {
/// Inputs read as 1 everywhere: enough to walk every expression.
class OnesReader : public InputReader {
public:
  explicit OnesReader(const CheckedProgram &p) : p_(p) {}
  Value read(int input, const int64_t *) const override {
    switch (p_.ast.inputs[input].elem) {
    case ElemType::F32: return Value::ofFloat(1.0);
    case ElemType::Bool: return Value::ofBool(true);
    default: return Value::ofInt(1);
    }
  }

private:
  const CheckedProgram &p_;
};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  SourceFile file("fuzz.attn", std::string(reinterpret_cast<const char *>(data), size));
  DiagnosticEngine diags(file);
  std::optional<CheckedProgram> p = parseAndCheck(file, diags);
  std::ostringstream sink;
  diags.print(sink);
  if (!p)
    return 0;
  printAst(sink, *p, file);
  printSummary(sink, *p, file);
  OnesReader ones(*p);
  for (const AttentionDecl &v : p->ast.attentions) {
    EvalEnv env;
    env.program = &*p;
    env.variant = &v;
    env.inputs = &ones;
    env.qlen = env.klen = 8;
    for (int64_t q : {-3, 0, 5})
      for (int64_t k : {0, 2, 7}) {
        env.q = q;
        env.k = k;
        try {
          (void)evalMask(v, env);
          (void)evalScore(v, env, 0.5);
          if (v.select && v.select->byExpr)
            (void)evalSelectScore(v, env);
        } catch (const EvalError &) {
          // Division by a run-time zero: a defined error, not a crash.
        }
      }
  }
  return 0;
}
