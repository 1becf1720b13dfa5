//===- CommandLine.cpp - The driver's command lines, parsed by CLI11 ------===//
//
// CommandLine.h says what the two command lines accept. Here: Command, a
// CLI::App with one helper per kind of option the driver has (text, integer,
// choice, NAME=VALUE, flag), each checking its value and storing it; then one
// function per command that declares its options (their --help text included)
// and checks how they combine.
//
//===----------------------------------------------------------------------===//
#include "CommandLine.h"

#include "attnc/dsl/Diagnostics.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <limits>

namespace attnc {
namespace {

/// A bad command line: the message that follows "attnc: error: ".
struct UsageError {
  std::string msg;
};

/// "a", "a or b", "a, b or c".
std::string joinOr(const std::vector<std::string> &items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i)
    s += (i == 0 ? "" : i + 1 == items.size() ? " or " : ", ") + items[i];
  return s;
}

void requireChoice(const std::string &flag, const std::string &value, const std::vector<std::string> &choices) {
  if (std::find(choices.begin(), choices.end(), value) == choices.end())
    throw UsageError{flag + " must be " + joinOr(choices) + ", got '" + value + "'"};
}

int64_t parseInteger(const std::string &flag, const std::string &text) {
  errno = 0;
  char *end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0')
    throw UsageError{flag + ": expected an integer, got '" + text + "'"};
  if (errno == ERANGE)
    throw UsageError{flag + ": " + text + " is out of range (a 64-bit integer)"};
  return v;
}

/// NAME=VALUE (`form` names the two parts for the message), both non-empty.
std::pair<std::string, std::string> splitAssignment(const std::string &flag, const std::string &text,
                                                    const std::string &form) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw UsageError{flag + ": expected " + form + ", got '" + text + "'"};
  return {text.substr(0, eq), text.substr(eq + 1)};
}

/// CLI11's help with the command's own synopsis for its "Usage:" line.
class HelpFormatter : public CLI::Formatter {
public:
  explicit HelpFormatter(std::string usage) : usage_(std::move(usage)) { column_width(28); }
  std::string make_usage(const CLI::App *, std::string) const override { return "\n" + usage_; }
  /// CLI11's, with one blank line between sections rather than two.
  std::string make_help(const CLI::App *app, std::string name, CLI::AppFormatMode mode) const override {
    std::string help = CLI::Formatter::make_help(app, std::move(name), mode);
    for (size_t at; (at = help.find("\n\n\n")) != std::string::npos;)
      help.erase(at, 1);
    return help;
  }

private:
  std::string usage_;
};

/// One command: its CLI::App and the kinds of options the driver has. Every
/// option gets all of its occurrences (MultiOptionPolicy::TakeAll); a repeat
/// is an error when `repeatsAreErrors`, else each value is checked in turn
/// and the last one stays.
class Command {
public:
  Command(std::string name, const std::string &description, std::string usage, const std::string &footer,
          bool repeatsAreErrors)
      : app(description, name), name_(std::move(name)), repeatsAreErrors_(repeatsAreErrors) {
    app.formatter(std::make_shared<HelpFormatter>(std::move(usage)));
    app.footer(footer);
    // Unknown options and extra files are reported by parse(), in our words.
    app.allow_extras();
    // --help wins wherever it stands, before any value is checked.
    app.set_help_flag();
    app.add_flag_callback("-h,--help", [] { throw CLI::CallForHelp(); }, "show this help and exit")
        ->trigger_on_parse();
  }

  CLI::App app;

  /// The help section that the options added next belong to.
  void group(std::string name) { group_ = std::move(name); }

  /// An option with a value; `store` checks and keeps each one. `repeatable`:
  /// any number of times (-D, --input), whatever the command's rule.
  CLI::Option *value(const std::string &flag, const std::string &valueName, const std::string &help,
                     std::function<void(const std::string &)> store, bool repeatable = false) {
    bool once = repeatsAreErrors_ && !repeatable;
    CLI::Option *o = app.add_option(
        flag,
        [flag, once, store](const CLI::results_t &values) {
          if (once && values.size() > 1)
            throw UsageError{flag + " given twice"};
          for (const std::string &v : values)
            store(v);
          return true;
        },
        help);
    o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)->option_text(valueName)->group(group_);
    return o;
  }

  /// A path or a name: any non-empty text.
  template <class Slot>
  CLI::Option *text(const std::string &flag, const std::string &valueName, const std::string &help, Slot &slot) {
    return value(flag, valueName, help, [flag, &slot](const std::string &v) {
      if (v.empty())
        throw UsageError{flag + ": empty value"};
      slot = v;
    });
  }

  /// A 64-bit integer in [lo, hi].
  template <class Slot>
  CLI::Option *integer(const std::string &flag, const std::string &valueName, const std::string &help, Slot &slot,
                       int64_t lo = std::numeric_limits<int64_t>::min(),
                       int64_t hi = std::numeric_limits<int64_t>::max()) {
    return value(flag, valueName, help, [flag, &slot, lo, hi](const std::string &v) {
      int64_t n = parseInteger(flag, v);
      if (n < lo || n > hi)
        throw UsageError{flag + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                         std::to_string(n)};
      slot = Slot(n);
    });
  }

  /// One of `choices`; the help shows them as VALUE.
  CLI::Option *choice(const std::string &flag, const std::string &help, std::string &slot,
                      const std::vector<std::string> &choices) {
    std::string names;
    for (const std::string &c : choices)
      names += (names.empty() ? "" : "|") + c;
    return value(flag, names, help, [flag, &slot, choices](const std::string &v) {
      requireChoice(flag, v, choices);
      slot = v;
    });
  }

  /// NAME=PATH pairs (--input), one per NAME.
  CLI::Option *assignments(const std::string &flag, const std::string &help,
                           std::vector<std::pair<std::string, std::string>> &slot) {
    bool once = repeatsAreErrors_;
    return value(
        flag, "NAME=PATH", help,
        [flag, once, &slot](const std::string &v) {
          auto kv = splitAssignment(flag, v, "NAME=PATH");
          auto same = std::find_if(slot.begin(), slot.end(), [&](const auto &p) { return p.first == kv.first; });
          if (same == slot.end())
            slot.push_back(std::move(kv));
          else if (once)
            throw UsageError{flag + " " + kv.first + " given twice"};
          else
            same->second = kv.second;
        },
        /*repeatable=*/true);
  }

  /// -D NAME=VALUE (also -DNAME=VALUE), any number of times.
  CLI::Option *paramOverrides(std::vector<dsl::ParamOverride> &slot) {
    return value(
        "-D", "NAME=VALUE", "override `param NAME` (int, float or bool,\nas declared); repeatable; also -DNAME=VALUE",
        [&slot](const std::string &v) {
          auto [name, val] = splitAssignment("-D", v, "NAME=VALUE");
          slot.push_back({name, val});
        },
        /*repeatable=*/true);
  }

  CLI::Option *flag(const std::string &flag, const std::string &help, bool &slot) {
    return app.add_flag(flag, slot, help)->group(group_);
  }

  /// The command's one FILE argument.
  CLI::Option *file(const std::string &help, std::string &slot) {
    file_ = &slot;
    return app.add_option("FILE", slot, help)->type_name("");
  }

  /// Parses argv, then `check` (which throws UsageError) judges the whole.
  std::optional<int> parse(int argc, char **argv, const std::function<void()> &check) {
    try {
      try {
        rejectEmptyInlineValues(argc, argv);
        app.parse(argc, argv);
      } catch (const CLI::CallForHelp &) {
        std::cout << app.help();
        return kExitOk;
      } catch (const CLI::CallForVersion &e) {
        std::cout << e.what();
        return kExitOk;
      } catch (const CLI::ArgumentMismatch &) {
        // CLI11 ran out of arguments: the last one wanted a value.
        throw UsageError{std::string(argv[argc - 1]) + ": missing value"};
      } catch (const CLI::ParseError &e) {
        throw UsageError{e.what()};
      }
      std::vector<std::string> extras = app.remaining();
      for (const std::string &a : extras)
        if (a.size() > 1 && a[0] == '-')
          throw UsageError{"unknown option '" + a + "'" + suggestion(a)};
      if (!extras.empty())
        throw UsageError{"more than one source file ('" + *file_ + "' and '" + extras.front() + "')"};
      check();
    } catch (const UsageError &e) {
      std::cerr << name_ << ": error: " << e.msg << "\n(run '" << name_ << " --help' for usage)\n";
      return kExitUsage;
    }
    return std::nullopt;
  }

private:
  /// `--opt=` with nothing after '=': CLI11 would take the next argument as
  /// the value.
  void rejectEmptyInlineValues(int argc, char **argv) const {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--")
        break;
      if (a.size() > 3 && a.compare(0, 2, "--") == 0 && a.find('=') == a.size() - 1)
        if (const CLI::Option *o = app.get_option_no_throw(a.substr(0, a.size() - 1)))
          if (o->get_items_expected_min() > 0)
            throw UsageError{a.substr(0, a.size() - 1) + ": missing value"};
    }
  }

  /// " (did you mean '--qlen'?)" for an option close to a known one.
  std::string suggestion(const std::string &arg) const {
    std::vector<std::string> names;
    for (const CLI::Option *o : app.get_options())
      for (const std::string &l : o->get_lnames())
        names.push_back("--" + l);
    std::string hint = dsl::closestMatch(arg.substr(0, arg.find('=')), names);
    return hint.empty() ? "" : " (did you mean '" + hint + "'?)";
  }

  std::string name_;
  bool repeatsAreErrors_;
  std::string group_ = "Options";
  std::string *file_ = nullptr;
};

//===----------------------------------------------------------------------===//
// attnc FILE
//===----------------------------------------------------------------------===//

/// The --emit stages, in help order.
struct Stage {
  const char *name;
  const char *help; ///< lines after the first indented by the help
  bool needsMlir;
};
const Stage kStages[] = {
    {"check", "parse and check; print a summary of\nparams, inputs, variants and each\nmodel's layer table", false},
    {"ast", "the checked syntax tree, with types and\nlocations", false},
    {"mask", "the exact element mask for --qlen/--klen\n(<= 4096) as a grid: '#' may attend,\n'.' may not", false},
    {"attn", "the attn dialect (MLIR), one attn.variant\nper variant", true},
    {"tiles", "the tile classification (empty/partial/\nfull) for --qlen/--klen, as --format", true},
    {"tiled", "the tile stage: one attn.tile.kernel per\nvariant, head dim and dtype (target-\nneutral tile ops)", true},
    {"gpu", "the kernels after the MMA backend: one\ngpu.func each, in gpu/scf/nvgpu/nvvm ops", true},
    {"llvm", "the kernels as LLVM IR", true},
    {"ptx", "the PTX module with its manifest", true},
};

#ifdef ATTNC_WITH_MLIR
constexpr bool kWithMlir = true;
#else
constexpr bool kWithMlir = false;
#endif

std::string emitHelp(const std::string &defaultStage) {
  std::string s = "what to produce (default " + defaultStage + "):";
  for (const Stage &st : kStages) {
    if (st.needsMlir && !kWithMlir)
      continue;
    std::string line = std::string(st.name) + std::string(7 - std::string(st.name).size(), ' ');
    for (char c : std::string(st.help))
      line += c == '\n' ? std::string("\n         ") : std::string(1, c);
    s += "\n  " + line;
  }
  if (!kWithMlir)
    s += "\n  (attn, tiles, tiled, gpu, llvm and ptx need a\n  build with MLIR)";
  return s;
}

void checkStage(const std::string &emit) {
  std::vector<std::string> known;
  for (const Stage &st : kStages) {
    if (emit == st.name && st.needsMlir && !kWithMlir)
      throw UsageError{"--emit=" + emit + " needs a build with MLIR (ATTNC_WITH_MLIR=ON)"};
    if (emit == st.name)
      return;
    if (!st.needsMlir || kWithMlir)
      known.push_back(st.name);
  }
  throw UsageError{"unknown --emit stage '" + emit + "' (expected " + joinOr(known) + ")"};
}

const char kCompileUsage[] = R"(usage: attnc FILE [options]
       attnc run [--reference | --module K.ptx] FILE ...   (one variant on
                 .npy tensors, on the GPU or the reference: attnc run --help)
)";

const char kCompileFooter[] = R"(Every option that takes a value accepts --opt=value and --opt value; when
an option is given twice, its last value counts (-D and --input: per NAME).

exit codes:
  0  success (warnings may have been printed)
  1  errors in the input (reported as file:line:col: error: ...)
  2  bad command line
  3  internal error (a bug in attnc: please report it with the input))";

} // namespace

std::optional<int> parseCompileCommandLine(int argc, char **argv, CompileCommandOptions &o) {
  Command cmd("attnc", "attnc: compile attention masks and selection rules into fused GPU kernels", kCompileUsage,
              kCompileFooter, /*repeatsAreErrors=*/false);
  cmd.app.add_flag_callback(
      "--version", [] { throw CLI::CallForVersion(std::string("attnc ") + ATTNC_VERSION + "\n", kExitOk); },
      "show the version and exit")
      ->trigger_on_parse();
  cmd.file("the .attn source ('-': standard input)", o.input);
  cmd.text("-o", "FILE", "write the output to FILE ('-': standard output); by\n"
                         "default PTX goes to FILE's name with .ptx, other\nstages to standard output",
           o.output);
  std::string defaultStage = o.emit;
  cmd.value("--emit", "STAGE", emitHelp(defaultStage), [&o](const std::string &v) {
    checkStage(v);
    o.emit = v;
  });
  cmd.paramOverrides(o.overrides);

#ifdef ATTNC_WITH_MLIR
  CodegenOptions &cg = o.codegen;
  cmd.group("MLIR stages (--emit=attn, tiled, gpu, llvm, ptx)");
  cmd.choice("--target", "the GPU to compile for (default sm_90a)", cg.target, {"sm_80", "sm_90a"});
  cmd.value("--head-dims", "LIST", "head dims to specialise kernels for, among\n64,128,256 (default all three)",
            [&cg](const std::string &v) {
              if (std::string e = parseHeadDims(v, cg.headDims); !e.empty())
                throw UsageError{"--head-dims: " + e};
            });
  cmd.value("--dtypes", "LIST", "element types, among bf16,fp16 (default both)", [&cg](const std::string &v) {
    if (std::string e = parseDtypes(v, cg.dtypes); !e.empty())
      throw UsageError{"--dtypes: " + e};
  });
  cmd.choice("--backend",
             "the tensor-core path: wgmma (warpgroup MMAs; sm_90a\n"
             "only, its default) or mma-sync (sm_80's; on sm_90a\n"
             "also the kernel of masks that read inputs at token\n"
             "positions, such as documents)",
             cg.backend, {"mma-sync", "wgmma"});
  // The tuning flags: their values are checked and set by setTuningOption
  // (CodegenCommands.h), which attnc.compile's options share.
  auto tuning = [&cg](const std::string &flag) {
    return [&cg, flag](const std::string &v) {
      std::string name = flag.substr(2);
      std::replace(name.begin(), name.end(), '-', '_');
      if (std::string e = setTuningOption(name, v, cg); !e.empty())
        throw UsageError{flag + " " + e};
    };
  };
  cmd.value("--tile", "MxN",
            "kernel tile (query rows x keys): 64x64, 64x32,\n"
            "128x128, 128x64 or 128x32 (tuning; default by head\n"
            "dim, mask and backend; wgmma at 128 rows: warp\n"
            "specialised, TMA)",
            tuning("--tile"));
  cmd.value("--ctas-per-sm", "N",
            "CTAs an SM should hold, 1-4: caps ptxas's registers\n"
            "at 65536 / (128 N) (tuning; default 4 for narrow\n"
            "bands such as |q - k| <= 64, else 1: up to 255)",
            tuning("--ctas-per-sm"));
  cmd.value("--kv-stages", "N",
            "K/V ring slots of the warp-specialised wgmma kernel:\n"
            "at most N (2-4), as many as shared memory holds at\n"
            "each head dim (tuning; default 2)",
            tuning("--kv-stages"));
  cmd.value("--persistent", "on|off",
            "a persistent grid for the warp-specialised wgmma\n"
            "kernel: one CTA an SM striding over the tiles\n"
            "(experimental, default off: measured slower,\n"
            "bench/NOTES.md v13)",
            tuning("--persistent"));
  cmd.value("--overlap", "on|off",
            "the warp-specialised wgmma kernel's softmax\n"
            "overlapped with its GEMMs inside each compute\n"
            "warpgroup: tile j's S = Q K^T and tile j-1's O += P V\n"
            "issued together (tuning; default on); =on also\n"
            "overlaps the gradient kernels' dP chain with the\n"
            "exp (experimental, not yet run on a GPU)",
            tuning("--overlap"));
  cmd.value("--backward", "on|off",
            "also each variant's gradient kernels (dQ, dK, dV;\n"
            "manifest variant NAME.backward), at head dims 64\n"
            "and 128, for variants without a score rule or a\n"
            "selection (default off; docs/codegen.md)",
            tuning("--backward"));
  cmd.flag("--time-stages", "print the time each compilation stage takes", cg.timing);
  cmd.flag("--mlir-print-debuginfo", "with --emit=attn: print each op's\nloc(\"file\":line:col)", o.mlirDebugInfo);
  cmd.flag("--mlir-print-ir-after-all", "print the IR after every pass to standard error", cg.printIrAfterAll);
  cmd.text("--mlir-pass-pipeline-crash-reproducer", "FILE",
           "when a pass fails, write the IR before it and the\n"
           "pipeline to FILE (replay: attnc-opt\n--run-reproducer)",
           cg.crashReproducer);
#endif

  TileOptions &t = o.tiles;
  cmd.group(kWithMlir ? "--emit=mask and --emit=tiles" : "--emit=mask");
  cmd.integer("--qlen", "N", "query length (required)", t.qlen);
  cmd.integer("--klen", "N", "key length (required)", t.klen);
  cmd.integer("--q-offset", "N", "absolute position of the first query (default\nklen - qlen)", t.qOffset);
  cmd.integer("--k-offset", "N", "absolute position of the first key (default 0)", t.kOffset);
  cmd.text("--variant", "NAME",
           "the variant to show (default: a model's distinct\n"
           "variants, or every variant; --emit=mask needs one)",
           t.variant);
  cmd.integer("--layer", "I", "the variant of layer I of the file's model", t.layer);
  cmd.text("--model", "NAME", "the model, when the file has several (default: the\nfirst)", t.model);
  cmd.integer("--batch", "B", "the batch entry (default 0)", t.batch);
  cmd.integer("--head", "H", "the query head (default 0)", t.head);
  cmd.assignments("--input",
                  "an input tensor: .npy, or text (one line per batch\n"
                  "entry); repeatable, one per NAME",
                  t.inputs);
#ifdef ATTNC_WITH_MLIR
  cmd.integer("--block-m", "M", "--emit=tiles: query tile rows, 16 to 256 (default\n128)", t.blockM);
  cmd.integer("--block-n", "N", "--emit=tiles: key tile columns, 16 to 256 (default\n128)", t.blockN);
  cmd.choice("--format", "--emit=tiles: the output form (default text)", t.format, {"text", "json", "svg"});
  cmd.flag("--rows", "--emit=tiles, JSON: each query tile's first and last\nnon-empty key tile", t.rows);
#endif

  return cmd.parse(argc, argv, [&] {
    if (o.input.empty())
      throw UsageError{"no input file"};
#ifdef ATTNC_WITH_MLIR
    if (cg.backend == "wgmma" && cg.target != "sm_90a")
      throw UsageError{"--backend=wgmma needs --target=sm_90a, got '" + cg.target + "'"};
#endif
  });
}

//===----------------------------------------------------------------------===//
// attnc run
//===----------------------------------------------------------------------===//

namespace {

const char kRunDescription[] =
    R"(attnc run: compute one attention variant of FILE on .npy tensors, on the GPU
(attnc's kernel through libattnrt) or with the float64 reference executor, and
write O (and LSE and topk indices). The two take the same arguments, so their
outputs compare directly.)";

const char kRunUsage[] =
    R"(usage: attnc run [--reference | --module K.ptx] FILE
                 [--variant NAME | --layer I [--model NAME]]
                 --q q.npy --k k.npy --v v.npy [--input NAME=x.npy]...
                 [--sinks s.npy] [--indexer qI.npy,w.npy,kI.npy] [--selection idx.npy]
                 [--q-offset N] [--k-offset N] [-D NAME=VALUE]...
                 --out o.npy [--lse lse.npy] [--indices idx.npy]
                 [--grad-out dO.npy [--dq dq.npy] [--dk dk.npy] [--dv dv.npy]
                  [--dsinks ds.npy]]   (the reference only)
                 [--dtype-out f32|f64] [--threads N]
)";

const char kRunFooter[] = R"(Every option that takes a value accepts --opt=value and --opt value; each
may be given once (-D and --input repeat, --input once per NAME).
Float tensors may be <f2, <f4, <f8, or bf16 as raw 16-bit <u2/<i2 (PyTorch:
t.view(torch.int16).numpy()). See docs/reference.md.

exit codes:
  0  success: every output was written
  1  bad input (source errors, files, dtypes, shapes, offsets, ...)
  2  bad command line
  3  internal error (a bug in attnc: please report it with the input))";

} // namespace

std::optional<int> parseRunCommandLine(int argc, char **argv, RunCommandOptions &o) {
  Command cmd("attnc run", kRunDescription, kRunUsage, kRunFooter, /*repeatsAreErrors=*/true);
  cmd.file("the .attn source", o.file);
  std::string referenceFile; // --reference=FILE
  cmd.value("--reference", "[FILE]",
            "use the float64 CPU reference executor (FILE: the\nsource, also given as the argument)",
            [&](const std::string &v) {
              o.reference = true;
              referenceFile = v;
            })
      ->expected(0, 1);
  cmd.text("--module", "K.ptx",
#ifdef ATTNC_WITH_MLIR
           "the GPU: run K.ptx's kernel for the variant\n"
           "(compiled by attnc from FILE); without it,\n"
           "FILE is compiled in process (q, k, v bf16 or\nfp16)",
#else
           "the GPU: run K.ptx's kernel for the variant\n"
           "(compiled by attnc FILE -o K.ptx on a build\nwith MLIR)",
#endif
           o.module);
  cmd.text("--variant", "NAME", "the attention variant to run", o.variant);
  cmd.integer("--layer", "I", "run the variant a model assigns to layer I", o.layer);
  cmd.text("--model", "NAME", "the model for --layer (needed if FILE has several)", o.model);
  cmd.paramOverrides(o.overrides);
  cmd.integer("--threads", "N", "worker threads of the reference (default: every\ncore)", o.threads, 1, 4096);

  cmd.group("Inputs");
  cmd.text("--q", "PATH", "Q [B, Hq, Lq, D]", o.q);
  cmd.text("--k", "PATH", "K [B, Hkv, Lk, D]", o.k);
  cmd.text("--v", "PATH", "V [B, Hkv, Lk, Dv]", o.v);
  cmd.assignments("--input", "a runtime input tensor declared by\n`input NAME : ...`", o.inputs);
  cmd.text("--sinks", "PATH", "sink logits [Hq] (variants with `sink;`)", o.sinks);
  cmd.value("--indexer", "Q,W,K", "DSA indexer qI [B, Lq, HI, dI], w [B, Lq, HI],\nkI [B, Lk, dI]",
            [&o](const std::string &v) {
              size_t a = v.find(','), b = a == std::string::npos ? a : v.find(',', a + 1);
              if (a == std::string::npos || b == std::string::npos || v.find(',', b + 1) != std::string::npos)
                throw UsageError{"--indexer: expected qI.npy,w.npy,kI.npy, got '" + v + "'"};
              o.indexer = {v.substr(0, a), v.substr(a + 1, b - a - 1), v.substr(b + 1)};
              for (const std::string &p : o.indexer)
                if (p.empty())
                  throw UsageError{"--indexer: expected three non-empty paths, got '" + v + "'"};
            });
  cmd.text("--selection", "PATH",
           "the reference only: attend over these key columns\n[B, Hkv, Lq, K] (ints, -1 unfilled) instead of\ncomputing topk",
           o.selection);
  cmd.integer("--q-offset", "N", "absolute position of query row 0 (default Lk - Lq)", o.qOffset);
  cmd.integer("--k-offset", "N", "absolute position of key row 0 (default 0)", o.kOffset);

  cmd.group("Outputs");
  cmd.text("--out", "PATH", "O [B, Hq, Lq, Dv]", o.out);
  cmd.text("--lse", "PATH", "LSE [B, Hq, Lq] (natural log; -inf for an empty row)", o.lse);
  cmd.text("--indices", "PATH", "selected key columns [B, Hkv, Lq, K], int64, -1\npadded", o.indices);
  cmd.text("--grad-out", "PATH",
           "the reference only: dO [B, Hq, Lq, Dv]; with it, write\nthe gradients of sum(O * dO) below", o.gradOut);
  cmd.text("--dq", "PATH", "dQ [B, Hq, Lq, D] (needs --grad-out)", o.dq);
  cmd.text("--dk", "PATH", "dK [B, Hkv, Lk, D], summed over a KV group's heads\n(needs --grad-out)", o.dk);
  cmd.text("--dv", "PATH", "dV [B, Hkv, Lk, Dv], summed likewise (needs\n--grad-out)", o.dv);
  cmd.text("--dsinks", "PATH", "dL/dsinks [Hq] (variants with `sink;`; needs\n--grad-out)", o.dsinks);
  std::string dtypeOut = "f32";
  cmd.choice("--dtype-out", "dtype of O, LSE and the gradients (default f32)", dtypeOut, {"f32", "f64"});

  return cmd.parse(argc, argv, [&] {
    o.f64 = dtypeOut == "f64";
    if (!referenceFile.empty() && !o.file.empty())
      throw UsageError{"more than one source file ('" + referenceFile + "' and '" + o.file + "')"};
    if (!referenceFile.empty())
      o.file = referenceFile;
    if (o.file.empty())
      throw UsageError{"no source file given (attnc run [--reference] FILE.attn ...)"};
    if (o.reference && !o.module.empty())
      throw UsageError{"--reference and --module are mutually exclusive"};
    if (o.q.empty() || o.k.empty() || o.v.empty())
      throw UsageError{std::string("missing ") + (o.q.empty() ? "--q" : o.k.empty() ? "--k" : "--v")};
    if (o.out.empty())
      throw UsageError{"missing --out"};
    if (o.variant && o.layer)
      throw UsageError{"--variant and --layer are mutually exclusive"};
    if (o.model && !o.layer)
      throw UsageError{"--model needs --layer"};
    bool anyGrad = !o.dq.empty() || !o.dk.empty() || !o.dv.empty() || !o.dsinks.empty();
    if (anyGrad && o.gradOut.empty())
      throw UsageError{std::string(!o.dq.empty() ? "--dq" : !o.dk.empty() ? "--dk" : !o.dv.empty() ? "--dv" : "--dsinks") +
                       " needs --grad-out dO.npy (the upstream gradient of O)"};
    if (!o.gradOut.empty() && !anyGrad)
      throw UsageError{"--grad-out: give at least one of --dq, --dk, --dv, --dsinks to write"};
    if (!o.gradOut.empty() && !o.reference)
      throw UsageError{"--grad-out: attnc run computes gradients with the reference only (--reference); "
                       "the GPU's are Kernel.backward's (Python, a module compiled with --backward=on)"};
  });
}

} // namespace attnc
