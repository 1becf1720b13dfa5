//===- TileReport.cpp - Printing tile classifications ---------------------===//
#include "attnc/Analysis/TileReport.h"

#include <algorithm>
#include <cstdio>

namespace attnc::analysis {
namespace {

std::string layerList(const std::vector<int64_t> &layers) {
  std::string s;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1)
      ++j;
    s += (i ? "," : "") + std::to_string(layers[i]) + (j > i ? "-" + std::to_string(layers[j]) : "");
    i = j + 1;
  }
  return s;
}

std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if ((unsigned char)c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string xmlEscape(const std::string &s) {
  std::string out;
  for (char c : s) {
    switch (c) {
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    case '&': out += "&amp;"; break;
    case '"': out += "&quot;"; break;
    default: out += c;
    }
  }
  return out;
}

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, x < 0.01 ? "%.4f%%" : "%.2f%%", 100 * x);
  return buf;
}

} // namespace

void writeTilesText(std::ostream &os, const std::vector<VariantTiles> &variants) {
  for (const VariantTiles &v : variants) {
    const TileGeometry &g = v.classifier->geometry();
    TileCounts c = v.classifier->count();
    os << "variant " << v.name;
    if (!v.layers.empty())
      os << " (layers " << layerList(v.layers) << ")";
    os << "\n  keys allowed:  " << v.intervals->str() << "\n";
    os << "  geometry:      qlen " << g.qlen << ", klen " << g.klen << ", q_offset " << g.qOffset
       << ", k_offset " << g.kOffset << ", tiles " << g.blockM << "x" << g.blockN << " -> "
       << g.queryTiles() << "x" << g.keyTiles() << "\n";
    os << "  tiles:         " << c.full << " full, " << c.partial << " partial, " << c.empty << " empty of "
       << c.total() << "; the kernel visits " << percent(double(c.full + c.partial) / double(c.total()))
       << "\n";
    int64_t bytes = metadataBytes(*v.intervals, g);
    std::string reads;
    for (const std::string &n : v.inputsRead)
      reads += (reads.empty() ? "" : ", ") + n;
    os << "  run time:      closed-form tile bounds"
       << (v.intervals->hasRest() ? "; partial tiles evaluate the mask" : "")
       << (reads.empty() ? ", no mask tensor" : ", reading " + reads) << "; " << bytes
       << " bytes of per-tile metadata" << (bytes ? " (min and max per tile)" : "") << "\n";
    for (const std::string &n : v.inputsMissing)
      os << "  note:          no --input " << n << "=FILE: tiles are classified for any value of " << n << "\n";
  }
}

void writeTilesJson(std::ostream &os, const std::vector<VariantTiles> &variants,
                    const TileReportOptions &options) {
  os << "{\"variants\":[";
  for (size_t i = 0; i < variants.size(); ++i) {
    const VariantTiles &v = variants[i];
    const TileGeometry &g = v.classifier->geometry();
    TileCounts c = v.classifier->count();
    os << (i ? "," : "") << "\n {\"name\":" << jsonString(v.name) << ",\"layers\":[";
    for (size_t l = 0; l < v.layers.size(); ++l)
      os << (l ? "," : "") << v.layers[l];
    os << "],\"qlen\":" << g.qlen << ",\"klen\":" << g.klen << ",\"q_offset\":" << g.qOffset
       << ",\"k_offset\":" << g.kOffset << ",\"block_m\":" << g.blockM << ",\"block_n\":" << g.blockN
       << ",\"affine\":" << (v.affine ? "true" : "false") << ",\"key_intervals\":" << jsonString(v.intervals->str())
       << ",\"tiles\":{\"empty\":" << c.empty << ",\"partial\":" << c.partial << ",\"full\":" << c.full
       << "},\"metadata_bytes\":" << metadataBytes(*v.intervals, g);
    char frac[32];
    std::snprintf(frac, sizeof frac, "%.6g", double(c.full + c.partial) / double(c.total()));
    os << ",\"visited_fraction\":" << frac;
    if (options.rows) {
      os << ",\"rows\":[";
      auto rows = v.classifier->rowExtents();
      for (size_t r = 0; r < rows.size(); ++r)
        os << (r ? "," : "") << "[" << rows[r].first << "," << rows[r].second << "]";
      os << "]";
    }
    os << "}";
  }
  os << "\n]}\n";
}

void writeTilesSvg(std::ostream &os, const std::vector<VariantTiles> &variants) {
  const double side = 480, margin = 80, gap = 90, legend = 70;
  double width = margin + variants.size() * (side + gap), height = margin + side + legend;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
     << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"12\" shape-rendering=\"crispEdges\">\n";
  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  const char *colour[] = {"#ffffff", "#f4a261", "#1d4e89"};
  for (size_t i = 0; i < variants.size(); ++i) {
    const VariantTiles &v = variants[i];
    const TileGeometry &g = v.classifier->geometry();
    double x0 = margin + i * (side + gap), y0 = margin;
    double cw = side / double(g.keyTiles()), ch = side / double(g.queryTiles());
    os << "<g>\n<text x=\"" << x0 << "\" y=\"" << y0 - 40 << "\" font-size=\"15\" font-weight=\"bold\">"
       << xmlEscape(v.name) << (v.layers.empty() ? "" : " (layers " + layerList(v.layers) + ")") << "</text>\n";
    os << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << side << "\" height=\"" << side
       << "\" fill=\"" << colour[0] << "\" stroke=\"#888\"/>\n";
    // One rectangle per run of equal classes along a row of tiles; rows
    // with the same runs as the row above extend its rectangles downwards.
    struct Run {
      int64_t first, end;
      TileClass cls;
      bool operator==(const Run &o) const { return first == o.first && end == o.end && cls == o.cls; }
    };
    std::vector<Run> open;
    int64_t openSince = 0;
    auto flush = [&](int64_t untilRow) {
      for (const Run &r : open)
        os << "<rect x=\"" << x0 + r.first * cw << "\" y=\"" << y0 + openSince * ch << "\" width=\""
           << std::max(cw * double(r.end - r.first), 0.6) << "\" height=\""
           << std::max(ch * double(untilRow - openSince), 0.6) << "\" fill=\"" << colour[int(r.cls)] << "\"/>\n";
    };
    for (int64_t m = 0; m < g.queryTiles(); ++m) {
      std::vector<Run> runs;
      for (auto [first, last] : v.classifier->visitRanges(m))
        for (int64_t n = first; n <= last;) {
          TileClass c = v.classifier->classify(m, n);
          int64_t end = n + 1;
          while (end <= last && v.classifier->classify(m, end) == c)
            ++end;
          if (c != TileClass::Empty)
            runs.push_back({n, end, c});
          n = end;
        }
      if (runs != open) {
        flush(m);
        open = std::move(runs);
        openSince = m;
      }
    }
    flush(g.queryTiles());
    // Axes: ticks at quarters, in tokens.
    for (int t = 0; t <= 4; ++t) {
      double f = t / 4.0;
      int64_t keyPos = int64_t(f * double(g.klen)), queryPos = int64_t(f * double(g.qlen));
      os << "<line x1=\"" << x0 + f * side << "\" y1=\"" << y0 << "\" x2=\"" << x0 + f * side << "\" y2=\""
         << y0 - 5 << "\" stroke=\"#333\"/><text x=\"" << x0 + f * side << "\" y=\"" << y0 - 8
         << "\" text-anchor=\"middle\">" << keyPos << "</text>\n";
      os << "<line x1=\"" << x0 << "\" y1=\"" << y0 + f * side << "\" x2=\"" << x0 - 5 << "\" y2=\""
         << y0 + f * side << "\" stroke=\"#333\"/><text x=\"" << x0 - 8 << "\" y=\"" << y0 + f * side + 4
         << "\" text-anchor=\"end\">" << queryPos << "</text>\n";
    }
    os << "<text x=\"" << x0 + side / 2 << "\" y=\"" << y0 - 24 << "\" text-anchor=\"middle\">key position ("
       << g.keyTiles() << " tiles of " << g.blockN << ")</text>\n";
    os << "<text transform=\"translate(" << x0 - 52 << "," << y0 + side / 2
       << ") rotate(-90)\" text-anchor=\"middle\">query position (" << g.queryTiles() << " tiles of " << g.blockM
       << ")</text>\n";
    TileCounts c = v.classifier->count();
    double ly = y0 + side + 22;
    const char *names[] = {"empty", "partial", "full"};
    int64_t counts[] = {c.empty, c.partial, c.full};
    for (int k = 0; k < 3; ++k) {
      double lx = x0 + k * 150;
      os << "<rect x=\"" << lx << "\" y=\"" << ly - 10 << "\" width=\"12\" height=\"12\" fill=\"" << colour[k]
         << "\" stroke=\"#888\"/><text x=\"" << lx + 18 << "\" y=\"" << ly << "\">" << names[k] << " "
         << counts[k] << "</text>\n";
    }
    os << "<text x=\"" << x0 << "\" y=\"" << ly + 22 << "\">visits "
       << percent(double(c.full + c.partial) / double(c.total())) << " of tiles; "
       << metadataBytes(*v.intervals, g) << " bytes of metadata</text>\n</g>\n";
  }
  os << "</svg>\n";
}

} // namespace attnc::analysis
