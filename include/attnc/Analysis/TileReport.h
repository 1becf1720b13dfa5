//===- TileReport.h - `attnc --emit=tiles` as text, JSON or SVG -*- C++ -*-===//
#pragma once

#include "attnc/Analysis/TileClassifier.h"

#include <ostream>
#include <string>
#include <vector>

namespace attnc::analysis {

/// One variant's classification, ready to print.
struct VariantTiles {
  std::string name;
  std::vector<int64_t> layers;   ///< the model layers using it (empty: no model)
  const KeyIntervals *intervals = nullptr;
  const TileClassifier *classifier = nullptr;
  bool affine = false;           ///< solved completely: closed-form bounds only
  std::vector<std::string> inputsRead;    ///< input tensors the mask reads
  std::vector<std::string> inputsMissing; ///< ... of which no values were given
};

struct TileReportOptions {
  bool rows = false;             ///< JSON: include per-query-tile [first, last]
};

void writeTilesText(std::ostream &os, const std::vector<VariantTiles> &variants);
void writeTilesJson(std::ostream &os, const std::vector<VariantTiles> &variants,
                    const TileReportOptions &options);
/// The tile maps side by side, coloured by class, with axes in tokens.
void writeTilesSvg(std::ostream &os, const std::vector<VariantTiles> &variants);

} // namespace attnc::analysis
