//===- TileCommands.h - `--emit=mask` and `--emit=tiles` --------*- C++ -*-===//
//
//   attnc FILE --emit=mask  --qlen N --klen N [--q-offset N] [--k-offset N]
//               [--variant NAME | --layer I [--model NAME]] [--batch B] [--head H] [--input name=path]...
//   attnc FILE --emit=tiles --qlen N --klen N [--q-offset N] [--k-offset N]
//               [--block-m M] [--block-n N] [--variant NAME | --layer I]
//               [--format=text|json|svg] [--rows] [--batch B] [--head H] [--input name=path]...
//
// The mask is the exact element mask (the language's meaning, evaluated
// element by element, lengths up to 4096). The tiles are the tile analysis'
// classification for these lengths (MLIR builds only).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "attnc/dsl/Sema.h"

#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace attnc {

struct TileOptions {
  std::optional<int64_t> qlen, klen, qOffset, kOffset, layer;
  int64_t blockM = 128, blockN = 128, batch = 0, head = 0;
  std::string variant;
  std::string model;               ///< --model NAME: the model for --layer and the default selection
  std::string format = "text";
  bool rows = false;
  std::vector<std::pair<std::string, std::string>> inputs;
};

/// Returns the process exit code; errors go to `err` as "attnc: error: ...".
int emitMask(std::ostream &out, std::ostream &err, const dsl::CheckedProgram &program, const TileOptions &options);
#ifdef ATTNC_WITH_MLIR
int emitTiles(std::ostream &out, std::ostream &err, const dsl::CheckedProgram &program,
              const dsl::SourceFile &file, const TileOptions &options);
#endif

} // namespace attnc
