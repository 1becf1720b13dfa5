//===- Diagnostics.cpp - Rendering located diagnostics ---------------------===//
#include "attnc/dsl/Diagnostics.h"

#include <algorithm>

namespace attnc::dsl {

SourceFile::SourceFile(std::string name, std::string text)
    : name_(std::move(name)), text_(std::move(text)) {
  lineStarts_.push_back(0);
  for (uint32_t i = 0; i < text_.size(); ++i)
    if (text_[i] == '\n')
      lineStarts_.push_back(i + 1);
}

std::pair<unsigned, unsigned> SourceFile::lineCol(uint32_t offset) const {
  offset = std::min<uint32_t>(offset, text_.size());
  auto it = std::upper_bound(lineStarts_.begin(), lineStarts_.end(), offset);
  unsigned line = unsigned(it - lineStarts_.begin());
  return {line, offset - lineStarts_[line - 1] + 1};
}

std::string_view SourceFile::line(unsigned line) const {
  if (line == 0 || line > lineStarts_.size())
    return {};
  uint32_t b = lineStarts_[line - 1];
  uint32_t e = line < lineStarts_.size() ? lineStarts_[line] - 1 : text_.size();
  if (e > b && text_[e - 1] == '\r')
    --e;
  return std::string_view(text_).substr(b, e - b);
}

void DiagnosticEngine::add(Severity s, SourceRange r, std::string msg) {
  if (s == Severity::Error) {
    if (errors_ >= kMaxErrors) {
      truncated_ = true;
      ++errors_;
      return;
    }
    ++errors_;
  } else if (truncated_) {
    return; // notes and warnings after the cut would be noise
  } else if (s == Severity::Warning) {
    ++warnings_;
  }
  diags_.push_back({s, r, std::move(msg), true});
}

void DiagnosticEngine::error(SourceRange r, std::string msg) { add(Severity::Error, r, std::move(msg)); }
void DiagnosticEngine::warning(SourceRange r, std::string msg) { add(Severity::Warning, r, std::move(msg)); }
void DiagnosticEngine::note(SourceRange r, std::string msg) { add(Severity::Note, r, std::move(msg)); }
void DiagnosticEngine::errorUnlocated(std::string msg) {
  ++errors_;
  diags_.push_back({Severity::Error, {}, std::move(msg), false});
}

/// Appends `c` to `out`, escaping bytes a terminal would not show as-is.
static void appendVisible(std::string &out, unsigned char c) {
  static const char *hex = "0123456789abcdef";
  if (c == '\t')
    out += ' ';
  else if (c < 0x20 || c >= 0x7f) {
    out += "\\x";
    out += hex[c >> 4];
    out += hex[c & 15];
  } else
    out += char(c);
}

void DiagnosticEngine::render(std::ostream &os, const Diagnostic &d) const {
  const char *sev = d.severity == Severity::Error     ? "error"
                    : d.severity == Severity::Warning ? "warning"
                                                      : "note";
  if (!d.located) {
    os << "attnc: " << sev << ": " << d.message << "\n";
    return;
  }
  auto [line, col] = file_.lineCol(d.range.begin);
  os << file_.name() << ":" << line << ":" << col << ": " << sev << ": " << d.message << "\n";
  std::string_view text = file_.line(line);
  const uint64_t lineStart = uint64_t(std::min<size_t>(d.range.begin, file_.text().size())) - (col - 1);
  // Show a window of at most ~100 bytes around the start of the range.
  constexpr size_t kWindow = 100;
  size_t start = col - 1 > kWindow / 2 ? col - 1 - kWindow / 2 : 0;
  size_t stop = std::min(text.size(), start + kWindow);
  std::string shown = start > 0 ? "..." : "", caret = start > 0 ? "   " : "";
  for (size_t i = start; i < stop; ++i) {
    size_t before = shown.size();
    appendVisible(shown, (unsigned char)text[i]);
    size_t width = shown.size() - before;
    if (i == col - 1) {
      caret += '^';
      caret.append(width - 1, '~');
    } else {
      caret.append(width, i > col - 1 && lineStart + i < d.range.end ? '~' : ' ');
    }
  }
  if (col - 1 >= text.size())
    caret += '^'; // error at end of line / end of file
  if (stop < text.size())
    shown += "...";
  while (!caret.empty() && caret.back() == ' ')
    caret.pop_back();
  os << "  " << shown << "\n  " << caret << "\n";
}

void DiagnosticEngine::print(std::ostream &os) const {
  for (const Diagnostic &d : diags_)
    render(os, d);
  if (truncated_)
    os << file_.name() << ": note: too many errors; stopped after " << kMaxErrors << "\n";
  if (errors_ > 0)
    os << errors_ << (errors_ == 1 ? " error" : " errors") << " generated.\n";
}

std::string closestMatch(const std::string &name, const std::vector<std::string> &candidates) {
  std::string best;
  // Accept up to one edit per three characters (two for 'modle' -> 'model').
  size_t bestDist = std::max<size_t>(1, (name.size() + 1) / 3) + 1;
  for (const std::string &c : candidates) {
    if (c == name || c.size() > name.size() + bestDist || name.size() > c.size() + bestDist)
      continue;
    // Levenshtein distance, two rows.
    std::vector<size_t> prev(c.size() + 1), cur(c.size() + 1);
    for (size_t j = 0; j <= c.size(); ++j)
      prev[j] = j;
    for (size_t i = 1; i <= name.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= c.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (name[i - 1] != c[j - 1])});
      std::swap(prev, cur);
    }
    if (prev[c.size()] < bestDist) {
      bestDist = prev[c.size()];
      best = c;
    }
  }
  return best;
}

} // namespace attnc::dsl
