//===- GeneratedProgramTest.cpp - Random valid programs through attnc -----===//
//
// A seeded property test of the whole compiler: random valid programs
// (ProgramGenerator.h) through every stage, in process, by the entry points
// the driver calls:
//   1. parse and check (it must accept: the program is valid by construction);
//   2. --emit=ast and the check summary;
//   3. --emit=attn (dsl::emitAttn);
//   4. --emit=mask and --emit=tiles (TileCommands.h) on random lengths,
//      offsets, blocks and formats, with the inputs as .npy files;
//   5. --emit=tiled, and --emit=ptx for sm_80 and sm_90a (emitCode) with
//      random head dims, dtypes, tiles, occupancy and (sm_90a) backend;
//   6. the reference executor (reference/) on a small random shape for each
//      variant: GQA, offsets, sinks, inputs, the indexer.
// Pass: no crash, no abort, no escaping exception; a stage that cannot
// handle a program (emitCode on `select topk`, a run-time division by zero
// in the reference) reports an error (a located one for the compiler) and
// exit 1; never an internal error (exit 3).
//
// Environment:
//   ATTNC_GEN_SEED      the first seed (default 1); program i has seed + i
//   ATTNC_GEN_SECONDS   the time budget of the random programs (default 60)
//   ATTNC_GEN_COUNT     at most this many random programs (default: no limit)
//   ATTNC_GEN_OUT       where a failing program is written (default
//                       ./fuzz-failures), as a file test/fuzz-regressions/ takes
//   ATTNC_GEN_PROGRAM_SECONDS  one program longer than this is a hang (120)
//   ATTNC_GEN_TOKEN_TABLES=1   also inputs of several token axes (off while
//                       the manifest rejects them; ProgramGenerator.h)
// Every file of test/fuzz-regressions/ is replayed first
// (GeneratedPrograms.Regressions). Its first line may say
// `// attnc-gen: seed=N [-D NAME=VALUE]...`: the seed of the stage options
// (what the random run used) and the -D overrides; without it, the stages
// run with the driver's defaults (every head dim and dtype).
//
//===----------------------------------------------------------------------===//
#include "ProgramGenerator.h"

#include "CodegenCommands.h"
#include "TileCommands.h"

#include "attnc/dsl/AstPrinter.h"
#include "attnc/dsl/Diagnostics.h"
#include "attnc/dsl/MLIRGen.h"
#include "attnc/dsl/Sema.h"
#include "reference/Reference.h"
#include "support/Npy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace attnc;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

uint64_t envU64(const char *name, uint64_t fallback) {
  const char *s = std::getenv(name);
  return s && *s ? std::strtoull(s, nullptr, 10) : fallback;
}

// --- what a crash leaves behind -------------------------------------------------

/// The program being compiled, as a regression file, for the fatal-signal
/// handler and the watchdog (both only write() it out).
char gCurrent[1 << 17];
size_t gCurrentLen = 0;
char gCurrentPath[4096];
std::atomic<int64_t> gStartedMs{0}; ///< when the current program started (0: none)

void writeAll(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w <= 0)
      return;
    p += w;
    n -= size_t(w);
  }
}

void dumpCurrent(const char *why) {
  writeAll(2, why, std::strlen(why));
  static const char head[] = "\n=== the program (kept as a regression input at ";
  writeAll(2, head, sizeof head - 1);
  writeAll(2, gCurrentPath, std::strlen(gCurrentPath));
  writeAll(2, ") ===\n", 6);
  writeAll(2, gCurrent, gCurrentLen);
  writeAll(2, "=== end ===\n", 12);
  int fd = ::open(gCurrentPath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    writeAll(fd, gCurrent, gCurrentLen);
    ::close(fd);
  }
}

void onFatalSignal(int sig) {
  dumpCurrent(sig == SIGABRT ? "attnc-gen: the compiler aborted (SIGABRT)"
              : sig == SIGSEGV ? "attnc-gen: the compiler crashed (SIGSEGV)"
                               : "attnc-gen: the compiler crashed (fatal signal)");
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void installCrashHandlers() {
  static bool installed = false;
  if (installed)
    return;
  installed = true;
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL})
    std::signal(sig, onFatalSignal);
  // A hang is a failure too: one program past the limit ends the process.
  int64_t limitMs = int64_t(envU64("ATTNC_GEN_PROGRAM_SECONDS", 120)) * 1000;
  std::thread([limitMs] {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      int64_t start = gStartedMs.load();
      int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
      if (start && now - start > limitMs) {
        dumpCurrent("attnc-gen: one program ran past ATTNC_GEN_PROGRAM_SECONDS (a hang)");
        std::abort();
      }
    }
  }).detach();
}

/// What the stages did, over a run (printed at its end).
struct Stats {
  uint64_t programs = 0, variants = 0, kernels = 0, ptxOk = 0, referenceRuns = 0, referenceErrors = 0,
           maskErrors = 0;
  std::map<std::string, uint64_t> codegenErrors; ///< first error line (past the location) -> count
} gStats;

fs::path outDir() {
  const char *s = std::getenv("ATTNC_GEN_OUT");
  fs::path p = s && *s ? fs::path(s) : fs::current_path() / "fuzz-failures";
  fs::create_directories(p);
  return p;
}

// --- a regression file ------------------------------------------------------------

struct Case {
  std::string name;                                            ///< file name in diagnostics
  std::string text;                                            ///< the .attn source, header included
  std::vector<dsl::ParamOverride> overrides;
  std::optional<uint64_t> seed;                                ///< the stage options' seed
};

std::string header(const Case &c) {
  std::string h = "// attnc-gen: seed=" + std::to_string(*c.seed);
  for (const dsl::ParamOverride &o : c.overrides)
    h += " -D " + o.name + "=" + o.value;
  return h + "\n";
}

/// A regression file: its header, if any, gives the seed and overrides.
Case parseCase(const fs::path &path) {
  Case c;
  c.name = path.filename().string();
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  c.text = ss.str();
  const std::string tag = "// attnc-gen:";
  if (c.text.rfind(tag, 0) == 0) {
    std::istringstream line(c.text.substr(tag.size(), c.text.find('\n') - tag.size()));
    std::string tok;
    while (line >> tok) {
      if (tok.rfind("seed=", 0) == 0)
        c.seed = std::strtoull(tok.c_str() + 5, nullptr, 10);
      else if (tok == "-D" && line >> tok && tok.find('=') != std::string::npos)
        c.overrides.push_back({tok.substr(0, tok.find('=')), tok.substr(tok.find('=') + 1)});
    }
  }
  return c;
}

// --- the stages -----------------------------------------------------------------

/// One random tensor per declared input, for the reference (exact shape)
/// and, as .npy files, for --emit=mask and --emit=tiles.
struct Inputs {
  std::map<std::string, reference::InputTensor> tensors;
  std::vector<std::pair<std::string, std::string>> files; ///< name=path
};

class Pipeline {
public:
  Pipeline(const Case &c, const fs::path &scratch) : c_(c), scratch_(scratch), rng_(c.seed.value_or(0) ^ 0x9E3779B97F4A7C15ull) {}

  /// Every failure, one line (or block) each.
  std::vector<std::string> run() {
    dsl::SourceFile file(c_.name, c_.text);
    dsl::DiagnosticEngine diags(file);
    std::optional<dsl::CheckedProgram> program;
    if (!guard("check", [&] { program = dsl::parseAndCheck(file, diags, c_.overrides); }))
      return failures_;
    if (!program) {
      std::ostringstream d;
      diags.print(d);
      fail("check", "sema rejects a valid program:\n" + d.str());
      return failures_;
    }
    const dsl::CheckedProgram &p = *program;
    ++gStats.programs;
    gStats.variants += p.ast.attentions.size();
    guard("ast", [&] {
      std::ostringstream os;
      dsl::printAst(os, p, file);
      dsl::printSummary(os, p, file);
    });
    guard("attn", [&] {
      std::ostringstream os, err;
      if (!dsl::emitAttn(os, err, p, file, {chance(0.3)}))
        fail("attn", "MLIRGen built IR that does not verify:\n" + err.str());
    });
    Shape shape = randomShape(p);
    Inputs inputs;
    if (!guard("inputs", [&] { inputs = makeInputs(p, shape); }))
      return failures_;
    guard("mask", [&] { emitMaskStage(p, shape, inputs); });
    guard("tiles", [&] { emitTilesStage(p, file, shape, inputs); });
    guard("tiled", [&] { codegen(p, file, "tiled", "sm_90a"); });
    for (const char *target : {"sm_80", "sm_90a"})
      guard(std::string("ptx ") + target, [&] { codegen(p, file, "ptx", target); });
    for (size_t v = 0; v < p.ast.attentions.size(); ++v)
      guard("reference " + p.ast.attentions[v].name, [&] { runReference(p, int(v), shape, inputs); });
    return failures_;
  }

private:
  const Case &c_;
  fs::path scratch_;
  std::mt19937_64 rng_;
  std::vector<std::string> failures_;

  int64_t pick(int64_t lo, int64_t hi) { return lo + int64_t(rng_() % uint64_t(hi - lo + 1)); }
  bool chance(double p) { return double(rng_() % 1000000) < p * 1000000.0; }

  void fail(const std::string &stage, const std::string &what) { failures_.push_back("[" + stage + "] " + what); }

  template <class F> bool guard(const std::string &stage, F &&f) {
    try {
      f();
      return true;
    } catch (const std::exception &e) {
      fail(stage, std::string("an exception escaped: ") + e.what());
    } catch (...) {
      fail(stage, "an unknown exception escaped");
    }
    return false;
  }

  /// rc 0, or rc 1 with an error message (`located`: file:line:col).
  void checkExit(const std::string &stage, int rc, const std::string &err, bool located) {
    if (rc == 0)
      return;
    if (rc == 1) {
      std::regex loc(std::regex_replace(c_.name, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                     R"(:\d+:\d+: error: )");
      if (located ? std::regex_search(err, loc) : err.find("error: ") != std::string::npos)
        return;
      fail(stage, "exit 1 without a " + std::string(located ? "located " : "") + "error message:\n" + err);
      return;
    }
    fail(stage, "exit " + std::to_string(rc) + ":\n" + err);
  }

  // --- shapes and inputs --------------------------------------------------------

  struct Shape {
    int64_t B, Hq, Hkv, Lq, Lk, D, Dv, qOff, kOff; // the reference's
    int64_t tokens;                                 // token axes of the inputs
    int64_t tilesQlen, tilesKlen, tilesQOff, tilesKOff, maskQlen, maskKlen;
  };

  Shape randomShape(const dsl::CheckedProgram &p) {
    Shape s;
    s.B = pick(1, 2);
    s.Hkv = pick(1, 2);
    s.Hq = s.Hkv * pick(1, 2);
    s.Lq = chance(0.2) ? 1 : pick(1, 40);
    s.Lk = chance(0.3) ? s.Lq : pick(1, 40);
    s.D = pick(1, 8);
    s.Dv = chance(0.5) ? s.D : pick(1, 8);
    // Positions stay >= 0: token inputs are read at them.
    s.qOff = s.Lk >= s.Lq && chance(0.5) ? s.Lk - s.Lq : pick(0, 20);
    s.kOff = chance(0.6) ? 0 : pick(0, 20);
    // An input of n token axes holds tokens^n elements per batch and head.
    size_t maxTokenAxes = 0;
    for (const dsl::InputDecl &in : p.ast.inputs)
      maxTokenAxes = std::max<size_t>(maxTokenAxes, size_t(std::count(in.axes.begin(), in.axes.end(), dsl::Axis::Token)));
    int64_t limit = maxTokenAxes <= 1 ? 2600 : maxTokenAxes == 2 ? 500 : 90;
    s.tilesQlen = pick(1, std::min<int64_t>(2048, limit - 60));
    s.tilesKlen = chance(0.3) ? s.tilesQlen : pick(1, std::min<int64_t>(2048, limit - 60));
    s.tilesQOff = s.tilesKlen - s.tilesQlen; // the default
    if (chance(0.4))
      s.tilesQOff = pick(0, 50);
    s.tilesKOff = chance(0.7) ? 0 : pick(0, 50);
    if (chance(0.08)) { // far positions (context parallelism): inputs there are unknown
      s.tilesQOff = pick(0, int64_t(1) << 40);
      s.tilesKOff = pick(0, int64_t(1) << 40);
    }
    s.maskQlen = pick(1, 48);
    s.maskKlen = pick(1, 48);
    // Far tile positions are past every input's token axis (the classifier
    // then knows nothing of them); the reference reads every position.
    int64_t tilesEnd = std::max(std::max<int64_t>(s.tilesQOff, 0) + s.tilesQlen, s.tilesKOff + s.tilesKlen);
    s.tokens = std::max({s.qOff + s.Lq, s.kOff + s.Lk, tilesEnd < limit ? tilesEnd : 0, s.maskQlen, s.maskKlen}) +
               pick(0, 3);
    if (maxTokenAxes == 0 && chance(0.1)) { // far positions in the reference too
      s.qOff = pick(0, int64_t(1) << 40);
      s.kOff = pick(0, int64_t(1) << 40);
    }
    return s;
  }

  Inputs makeInputs(const dsl::CheckedProgram &p, const Shape &s) {
    Inputs out;
    for (const dsl::InputDecl &in : p.ast.inputs) {
      reference::InputTensor t;
      int64_t n = 1;
      for (dsl::Axis a : in.axes) {
        int64_t len = a == dsl::Axis::Batch ? s.B : a == dsl::Axis::Head ? s.Hq : s.tokens;
        t.shape.push_back(len);
        n *= len;
      }
      bool token = std::count(in.axes.begin(), in.axes.end(), dsl::Axis::Token) > 0;
      support::NpyArray a;
      switch (in.elem) {
      case dsl::ElemType::F32: {
        std::uniform_real_distribution<double> u(-2, 2);
        t.floats.resize(size_t(n));
        for (double &v : t.floats)
          v = double(float(u(rng_)));
        a = support::NpyArray::fromFloat32(t.shape, t.floats);
        break;
      }
      case dsl::ElemType::Bool: {
        double density = chance(0.5) ? 0.3 : 0.05;
        t.ints.resize(size_t(n));
        for (int64_t &v : t.ints)
          v = chance(density);
        a.dtype = support::DType::Bool;
        a.shape = t.shape;
        a.data.assign(t.ints.begin(), t.ints.end());
        break;
      }
      default: {
        t.ints.resize(size_t(n));
        if (token && chance(0.6)) {
          // Document ids: ascending runs.
          int64_t id = 0, left = 0;
          for (int64_t &v : t.ints) {
            if (left-- <= 0) {
              ++id;
              left = pick(0, 40);
            }
            v = id;
          }
        } else {
          for (int64_t &v : t.ints)
            v = pick(-3, s.tokens);
        }
        a = support::NpyArray::fromInt64(t.shape, t.ints);
        break;
      }
      }
      std::string path = (scratch_ / (in.name + ".npy")).string();
      support::writeNpy(path, a);
      out.files.emplace_back(in.name, path);
      out.tensors[in.name] = std::move(t);
    }
    return out;
  }

  std::vector<std::pair<std::string, std::string>> someFiles(const Inputs &in) {
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto &f : in.files)
      if (chance(0.8))
        files.push_back(f);
    return files;
  }

  // --- the driver's stages ---------------------------------------------------------

  void emitMaskStage(const dsl::CheckedProgram &p, const Shape &s, const Inputs &in) {
    TileOptions o;
    o.qlen = s.maskQlen;
    o.klen = s.maskKlen;
    if (chance(0.5))
      o.qOffset = pick(0, s.tokens - s.maskQlen);
    o.variant = p.ast.attentions[size_t(pick(0, int64_t(p.ast.attentions.size()) - 1))].name;
    o.batch = pick(0, s.B - 1);
    o.head = pick(0, s.Hq - 1);
    o.inputs = someFiles(in);
    std::ostringstream out, err;
    int rc = emitMask(out, err, p, o);
    gStats.maskErrors += rc != 0;
    // An input left out, read outside its axis or a division by zero at some
    // pair: an error naming it (exit 1).
    checkExit("mask", rc, err.str(), /*located=*/false);
  }

  void emitTilesStage(const dsl::CheckedProgram &p, const dsl::SourceFile &file, const Shape &s, const Inputs &in) {
    TileOptions o;
    o.qlen = s.tilesQlen;
    o.klen = s.tilesKlen;
    if (s.tilesQOff != s.tilesKlen - s.tilesQlen || chance(0.3))
      o.qOffset = s.tilesQOff;
    if (s.tilesKOff || chance(0.3))
      o.kOffset = s.tilesKOff;
    static const int64_t blocks[] = {16, 32, 64, 128, 256};
    o.blockM = chance(0.8) ? blocks[pick(0, 4)] : pick(16, 256);
    o.blockN = chance(0.8) ? blocks[pick(0, 4)] : pick(16, 256);
    static const char *const formats[] = {"text", "json", "svg"};
    o.format = formats[pick(0, 2)];
    o.rows = chance(0.3);
    o.batch = pick(0, s.B - 1);
    o.head = pick(0, s.Hq - 1);
    int64_t r = pick(0, 9);
    if (r < 3) {
      o.variant = p.ast.attentions[size_t(pick(0, int64_t(p.ast.attentions.size()) - 1))].name;
    } else if (r < 5 && !p.models.empty()) {
      size_t m = size_t(pick(0, int64_t(p.models.size()) - 1));
      if (p.models.size() > 1 || chance(0.5))
        o.model = p.ast.models[m].name;
      o.layer = pick(0, p.models[m].layers - 1);
    } else if (r < 6 && !p.models.empty()) {
      o.model = p.ast.models[size_t(pick(0, int64_t(p.models.size()) - 1))].name;
    }
    o.inputs = someFiles(in);
    std::ostringstream out, err;
    int rc = emitTiles(out, err, p, file, o);
    if (rc != 0)
      fail("tiles", "exit " + std::to_string(rc) + ":\n" + err.str());
  }

  void codegen(const dsl::CheckedProgram &p, const dsl::SourceFile &file, const std::string &stage,
               const std::string &target) {
    CodegenOptions o;
    o.target = target;
    if (c_.seed) { // a random run: one or two specialisations, random tuning
      static const int64_t dims[] = {64, 128, 256};
      o.headDims = {dims[pick(0, 2)]};
      if (chance(0.15))
        o.headDims.push_back(dims[(std::find(dims, dims + 3, o.headDims[0]) - dims + 1) % 3]);
      o.dtypes = {chance(0.5) ? "bf16" : "fp16"};
      if (target == "sm_90a" && chance(0.35))
        o.backend = "mma-sync"; // wgmma is sm_90a's default
      if (chance(0.25)) { // the driver's --tile choices
        static const int64_t tiles[][2] = {{64, 64}, {64, 32}, {128, 64}, {128, 32}};
        int64_t t = pick(0, 3);
        o.blockM = tiles[t][0];
        o.blockN = tiles[t][1];
      }
      if (chance(0.2))
        o.ctasPerSm = pick(1, 4);
    }
    std::ostringstream out, err;
    int rc = emitCode(out, err, p, file, stage, o);
    checkExit(stage + " " + target, rc, err.str(), /*located=*/true);
    if (stage == "ptx" && rc == 0) {
      ++gStats.ptxOk;
      for (size_t at = out.str().find(".entry"); at != std::string::npos; at = out.str().find(".entry", at + 1))
        ++gStats.kernels;
    }
    if (rc == 1) {
      std::string first = err.str().substr(0, err.str().find('\n'));
      size_t e = first.find("error: ");
      std::string what = e == std::string::npos ? first : first.substr(e + 7);
      if (size_t quote = what.find("variant '"); quote != std::string::npos) // drop the variant's name
        what.erase(quote + 9, what.find('\'', quote + 9) - (quote + 9));
      ++gStats.codegenErrors[stage + ": " + what];
    }
    if (rc == 0 && stage == "ptx" && out.str().find(".entry") == std::string::npos)
      fail(stage + " " + target, "exit 0 but the PTX has no .entry");
  }

  reference::Tensor randomTensor(std::vector<int64_t> shape) {
    reference::Tensor t;
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    t.shape = std::move(shape);
    std::normal_distribution<double> g(0, 1);
    t.data.resize(size_t(n));
    for (double &v : t.data)
      v = g(rng_);
    return t;
  }

  void runReference(const dsl::CheckedProgram &p, int v, const Shape &s, const Inputs &in) {
    reference::Request req;
    req.program = &p;
    req.variant = v;
    req.q = randomTensor({s.B, s.Hq, s.Lq, s.D});
    req.k = randomTensor({s.B, s.Hkv, s.Lk, s.D});
    req.v = randomTensor({s.B, s.Hkv, s.Lk, s.Dv});
    if (p.ast.attentions[size_t(v)].sink)
      req.sinks = randomTensor({s.Hq});
    const dsl::VariantInfo &info = p.variants[size_t(v)];
    if (info.topk && p.ast.attentions[size_t(v)].select->byIndexer) {
      reference::IndexerTensors ix;
      ix.qI = randomTensor({s.B, s.Lq, info.indexerHeads, info.indexerDim});
      ix.w = randomTensor({s.B, s.Lq, info.indexerHeads});
      ix.kI = randomTensor({s.B, s.Lk, info.indexerDim});
      req.indexer = std::move(ix);
    }
    req.inputs = in.tensors;
    req.qOffset = s.qOff;
    req.kOffset = s.kOff;
    req.threads = 1;
    ++gStats.referenceRuns;
    try {
      reference::Result r = reference::run(req);
      if (r.o.data.size() != size_t(s.B * s.Hq * s.Lq * s.Dv))
        fail("reference", "O has " + std::to_string(r.o.data.size()) + " elements");
    } catch (const reference::ReferenceError &e) {
      // A run-time error of the program (an integer division by zero at some
      // pair) is the input's; anything else means this test built a bad request.
      ++gStats.referenceErrors;
      if (std::string(e.what()).rfind("evaluating variant '", 0) != 0)
        fail("reference", "rejected the request (" + e.arg + "): " + e.what());
    }
  }
};

/// Runs one case; records a failure and writes it to the failures folder.
bool runCase(const Case &c, const fs::path &scratch, const fs::path &failures, std::vector<std::string> &report) {
  std::string file = c.text;
  fs::path keep = failures / (c.seed ? "gen-" + std::to_string(*c.seed) + ".attn" : c.name);
  std::snprintf(gCurrentPath, sizeof gCurrentPath, "%s", keep.c_str());
  gCurrentLen = std::min(file.size(), sizeof gCurrent);
  std::memcpy(gCurrent, file.data(), gCurrentLen);
  gStartedMs = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  std::vector<std::string> failed = Pipeline(c, scratch).run();
  gStartedMs = 0;
  if (failed.empty())
    return true;
  std::ofstream(keep, std::ios::binary) << file;
  std::string msg = c.name + " (kept as " + keep.string() + "; copy it to test/fuzz-regressions/):\n";
  for (const std::string &f : failed)
    msg += "  " + f + "\n";
  msg += "--- the program ---\n" + file + "--- end ---\n";
  report.push_back(msg);
  return false;
}

/// The failures folder exists while the tests run (a crash writes there
/// from its signal handler) and is removed again when nothing failed.
struct FailureDir {
  fs::path dir = outDir();
  ~FailureDir() {
    std::error_code ec;
    if (fs::is_empty(dir, ec))
      fs::remove(dir, ec);
  }
};

struct Scratch {
  fs::path dir;
  Scratch() {
    std::string tmpl = (fs::temp_directory_path() / "attnc-gen-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data()) ? fs::path(tmpl) : fs::temp_directory_path();
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

TEST(GeneratedPrograms, Regressions) {
  installCrashHandlers();
  Scratch scratch;
  FailureDir failureDir;
  const fs::path &failures = failureDir.dir;
  std::vector<std::string> report;
  int files = 0;
  std::vector<fs::path> paths;
  for (const auto &entry : fs::directory_iterator(ATTNC_FUZZ_REGRESSIONS_DIR))
    if (entry.path().extension() == ".attn")
      paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const fs::path &path : paths) {
    ++files;
    runCase(parseCase(path), scratch.dir, failures, report);
  }
  EXPECT_GE(files, 1);
  for (const std::string &r : report)
    ADD_FAILURE() << r;
  std::cout << "[attnc-gen] replayed " << files << " regression inputs, " << report.size() << " failing\n";
}

TEST(GeneratedPrograms, Random) {
  installCrashHandlers();
  Scratch scratch;
  FailureDir failureDir;
  const fs::path &failures = failureDir.dir;
  gStats = Stats{};
  uint64_t seed = envU64("ATTNC_GEN_SEED", 1);
  double budget = double(envU64("ATTNC_GEN_SECONDS", 60));
  uint64_t count = envU64("ATTNC_GEN_COUNT", UINT64_MAX);
  testgen::GeneratorOptions options;
  options.repeatedTokenAxes = envU64("ATTNC_GEN_TOKEN_TABLES", 0) != 0;
  auto start = Clock::now();
  std::vector<std::string> report;
  uint64_t n = 0;
  for (; n < count && std::chrono::duration<double>(Clock::now() - start).count() < budget; ++n) {
    Case c;
    c.seed = seed + n;
    testgen::GeneratedProgram g = testgen::generateProgram(*c.seed, options);
    for (const auto &[name, value] : g.overrides)
      c.overrides.push_back({name, value});
    c.name = "gen-" + std::to_string(*c.seed) + ".attn";
    c.text = header(c) + g.text;
    runCase(c, scratch.dir, failures, report);
    if (report.size() >= 20)
      break;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (const std::string &r : report)
    ADD_FAILURE() << r;
  std::cout << "[attnc-gen] " << n << " programs from seed " << seed << " in " << seconds << " s, "
            << report.size() << " failing (replay one: ATTNC_GEN_SEED=S ATTNC_GEN_COUNT=1)\n"
            << "[attnc-gen] " << gStats.variants << " variants; PTX for " << gStats.ptxOk << " of "
            << 2 * gStats.programs << " (program, target) pairs, " << gStats.kernels << " kernels; "
            << gStats.referenceRuns << " reference runs (" << gStats.referenceErrors
            << " stopped by a run-time error); --emit=mask: " << gStats.maskErrors << " errors\n";
  for (const auto &[what, count] : gStats.codegenErrors)
    std::cout << "[attnc-gen]   " << count << " x exit 1 from " << what << "\n";
}

} // namespace
