//===- JitTest.cpp - attnc::compile with the real pipeline ----------------===//
//
// With the compiler linked in (MLIR builds), attnc::compile turns a source
// string into a module (lazily loaded: no GPU needed) through the disk
// cache: the first call compiles and stores one entry, the second finds it;
// -D overrides and options are part of the key; source errors surface as
// Error(Compile) with located diagnostics.
//
//===----------------------------------------------------------------------===//
#include "Jit.h"
#include "attnc/Conversion/FlashKernel.h"
#include "attnc/Runtime.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;

namespace {

const char *kSource = "param window = 256;\n"
                      "attention sliding { mask k <= q && q - k < window; }\n";

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("attnc-jit-test-" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  size_t entries() const {
    size_t n = 0;
    for (auto &e : fs::recursive_directory_iterator(path))
      n += e.is_regular_file() && e.path().extension() != ".lock";
    return n;
  }
};

attnc::CompileOptions options(const TempDir &dir) {
  attnc::CompileOptions o;
  o.cacheDir = dir.path.string();
  o.load.lazy = true;
  o.extra["head_dims"] = "64";
  o.extra["dtypes"] = "bf16";
  return o;
}

TEST(Jit, CompilesThroughTheCache) {
  ASSERT_TRUE(attnc::hasCompiler());
  TempDir dir;
  attnc::CompileReport report;
  attnc::Module m = attnc::compile(kSource, options(dir), &report);
  EXPECT_FALSE(report.cacheHit); // a fresh cache: compiled
  EXPECT_GT(report.ptxBytes, 0u);
  EXPECT_GT(report.compileSeconds, 0.0);
  ASSERT_EQ(m.manifest().variants.size(), 1u);
  EXPECT_EQ(m.manifest().variants[0].name, "sliding");
  ASSERT_EQ(m.manifest().variants[0].kernels.size(), 1u);
  EXPECT_EQ(m.manifest().variants[0].kernels[0].symbol, "sliding_d64_bf16");
  size_t after = dir.entries();
  EXPECT_GE(after, 1u);
  attnc::CompileReport again;
  attnc::compile(kSource, options(dir), &again);
  EXPECT_EQ(dir.entries(), after); // a hit: nothing new stored
  EXPECT_TRUE(again.cacheHit);
  EXPECT_EQ(again.key, report.key);
  EXPECT_EQ(again.ptxBytes, report.ptxBytes);
  attnc::CompileOptions o = options(dir);
  o.defines["window"] = "512";
  attnc::compile(kSource, o);
  EXPECT_GT(dir.entries(), after); // another key
}

TEST(Jit, CacheKeysCarryTheKernelRevision) {
  // A compiler whose generated kernels changed must not be served the
  // kernels an older one cached: its version string, part of every cache
  // key, names the template's revision.
  std::string version = attnc::rt::registeredCompilerVersion();
  EXPECT_NE(version.find(ATTNC_VERSION), std::string::npos) << version;
  EXPECT_NE(version.find("+kernels" + std::to_string(attnc::kKernelRevision)), std::string::npos) << version;
}

TEST(Jit, SourceErrorsAreCompileErrors) {
  TempDir dir;
  try {
    attnc::compile("attention a { mask k <= widow; }", options(dir));
    FAIL() << "expected an error";
  } catch (const attnc::Error &e) {
    EXPECT_EQ(e.code(), attnc::ErrorCode::Compile);
    EXPECT_NE(std::string(e.what()).find("<jit>:1:25: error: unknown name 'widow'"), std::string::npos) << e.what();
  }
}

TEST(Jit, BadOptionsAreUsageErrors) {
  TempDir dir;
  attnc::CompileOptions o = options(dir);
  o.extra["head_dims"] = "96";
  try {
    attnc::compile(kSource, o);
    FAIL() << "expected an error";
  } catch (const attnc::Error &e) {
    EXPECT_EQ(e.code(), attnc::ErrorCode::Usage);
    EXPECT_NE(std::string(e.what()).find("head dims must be among 64, 128, 256"), std::string::npos) << e.what();
  }
  auto usageError = [&](const std::string &name, const std::string &value) -> std::string {
    attnc::CompileOptions bad = options(dir);
    bad.extra[name] = value;
    try {
      attnc::compile(kSource, bad);
    } catch (const attnc::Error &e) {
      EXPECT_EQ(e.code(), attnc::ErrorCode::Usage) << e.what();
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(usageError("kv_stages", "5"), "attnc: compile option kv_stages must be 2, 3 or 4, got '5'");
  EXPECT_EQ(usageError("persistent", "yes"), "attnc: compile option persistent must be on or off, got 'yes'");
  EXPECT_EQ(usageError("overlap", "maybe"), "attnc: compile option overlap must be on or off, got 'maybe'");
  EXPECT_EQ(usageError("tile", "96x96"),
            "attnc: compile option tile must be 64x64, 64x32, 128x128, 128x64 or 128x32, got '96x96'");
  EXPECT_NE(usageError("tiles", "64x64").find("unknown compile option 'tiles' (expected head_dims, dtypes, tile"),
            std::string::npos);
}

// The driver's tuning flags by name: the same kernels as `attnc --persistent=on --tile=...`.
TEST(Jit, TuningOptionsReachTheGenerator) {
  TempDir dir;
  attnc::CompileOptions o = options(dir);
  o.extra["head_dims"] = "128";
  o.extra["persistent"] = "on";
  // Causal: the 128-row warp-specialised kernel (the window of kSource is a
  // narrow band, on 64 x 64 tiles without a persistent grid).
  attnc::Module persistent = attnc::compile("attention causal { mask k <= q; }", o);
  EXPECT_EQ(persistent.manifest().variants[0].kernels[0].blockM, 128);
  EXPECT_EQ(int(persistent.manifest().variants[0].gridOf(persistent.manifest().variants[0].kernels[0])),
            int(attnc::GridRule::PersistentTiles));
  o.extra.erase("persistent");
  // overlap=off: the serial key loop, whose ring has one empty barrier a
  // slot instead of a K empty and a V empty one (8 bytes less each of 2).
  attnc::Module overlapped = attnc::compile("attention causal { mask k <= q; }", o);
  o.extra["overlap"] = "off";
  attnc::Module serial = attnc::compile("attention causal { mask k <= q; }", o);
  EXPECT_EQ(overlapped.manifest().variants[0].kernels[0].sharedBytes,
            serial.manifest().variants[0].kernels[0].sharedBytes + 16);
  o.extra.erase("overlap");
  o.extra["tile"] = "64x64";
  attnc::Module small = attnc::compile(kSource, o);
  EXPECT_EQ(small.manifest().variants[0].kernels[0].blockM, 64);
  EXPECT_EQ(small.manifest().variants[0].kernels[0].blockN, 64);
  EXPECT_NE(int(small.manifest().variants[0].gridOf(small.manifest().variants[0].kernels[0])),
            int(attnc::GridRule::PersistentTiles));
}

} // namespace
