//===- KernelAbiTest.cpp - The kernel ABI read back from the IR -----------===//
//
// collectKernels() (GenerateKernels.h) reads what the manifest says about a
// kernel from the attributes its backend left on the gpu.func: parameter
// names and kinds (pointers, i64, f32, TMA descriptors with tensor, box and
// swizzle), tile sizes, threads, shared memory, and for a variant of several
// kernels each one's stage and grid rule.
//
//===----------------------------------------------------------------------===//
#include "attnc/Conversion/GenerateKernels.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

using namespace attnc;

namespace {

constexpr const char *kTwoStages = R"mlir(
gpu.module @kernels {
  gpu.func @a_d128_bf16_indexer(%q: memref<?xbf16> {attn.arg = "q"},
                                %tq: !llvm.ptr {attn.arg = "tmap:q",
                                  attn.tensormap = {tensor = "q", box = array<i64: 64, 64>, swizzle = 128 : i64}},
                                %n: i64 {attn.arg = "qlen"}, %s: f32 {attn.arg = "scale"}) kernel
      attributes {attn.kernel_info = {variant = "a", head_dim = 128 : i64, elem = bf16, block_m = 64 : i64,
                  block_n = 32 : i64, threads = 128 : i64, shared_bytes = 4096 : i64, stage = "indexer",
                  grid = "qtiles_kvheads_batch"}} {
    gpu.return
  }
  gpu.func @a_d128_bf16(%q: memref<?xbf16> {attn.arg = "q"},
                        %tq: !llvm.ptr {attn.arg = "tmap:q",
                          attn.tensormap = {tensor = "q", box = array<i64: 64, 64>, swizzle = 128 : i64}},
                        %n: i64 {attn.arg = "qlen"}, %s: f32 {attn.arg = "scale"}) kernel
      attributes {attn.kernel_info = {variant = "a", head_dim = 128 : i64, elem = bf16, block_m = 128 : i64,
                  block_n = 64 : i64, threads = 384 : i64, shared_bytes = 98304 : i64, stage = "attention"}} {
    gpu.return
  }
  gpu.func @helper() { gpu.return }
}
)mlir";

TEST(KernelAbi, CollectKernelsReadsKindsTensorMapsAndStages) {
  mlir::MLIRContext ctx;
  ctx.loadDialect<mlir::gpu::GPUDialect, mlir::LLVM::LLVMDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(kTwoStages, &ctx);
  ASSERT_TRUE(module);
  std::vector<GeneratedKernel> ks = collectKernels(*module);
  ASSERT_EQ(ks.size(), 2u); // the helper function has no attn.kernel_info

  const GeneratedKernel &indexer = ks[0];
  EXPECT_EQ(indexer.variant, "a");
  EXPECT_EQ(indexer.headDim, 128);
  EXPECT_TRUE(indexer.bf16);
  EXPECT_EQ(indexer.info.symbol, "a_d128_bf16_indexer");
  EXPECT_EQ(indexer.info.blockM, 64);
  EXPECT_EQ(indexer.info.blockN, 32);
  EXPECT_EQ(indexer.info.threads, 128);
  EXPECT_EQ(indexer.info.sharedBytes, 4096);
  EXPECT_EQ(indexer.info.stage, "indexer");
  EXPECT_EQ(indexer.info.grid, "qtiles_kvheads_batch");
  ASSERT_EQ(indexer.info.args.size(), 4u);
  EXPECT_EQ(indexer.info.args[0].name, "q");
  EXPECT_EQ(indexer.info.args[0].kind, KernelArg::Ptr);
  const KernelArg &tmap = indexer.info.args[1];
  EXPECT_EQ(tmap.name, "tmap:q");
  EXPECT_EQ(tmap.kind, KernelArg::TensorMap);
  EXPECT_EQ(tmap.tensor, "q");
  EXPECT_EQ(tmap.box, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(tmap.swizzleBytes, 128);
  EXPECT_EQ(indexer.info.args[2].kind, KernelArg::I64);
  EXPECT_EQ(indexer.info.args[3].kind, KernelArg::F32);

  const GeneratedKernel &attention = ks[1];
  EXPECT_EQ(attention.info.stage, "attention");
  EXPECT_EQ(attention.info.grid, ""); // the variant's
  EXPECT_EQ(attention.info.threads, 384);
  EXPECT_EQ(attention.info.args.size(), 4u);
}

} // namespace
