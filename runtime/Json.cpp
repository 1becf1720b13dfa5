//===- Json.cpp - A small strict JSON reader and writer -------------------===//
//
// See Json.h. A recursive-descent parser over the bytes of the text, with
// line/column tracking for error messages, and a writer whose pretty form is
// what the manifest looks like inside a PTX comment block.
//
//===----------------------------------------------------------------------===//
#include "runtime/Json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace attnc::rt::json {

const Value *Value::find(const std::string &key) const {
  for (const auto &m : object)
    if (m.first == key)
      return &m.second;
  return nullptr;
}

Value Value::makeBool(bool b) {
  Value v;
  v.kind = Kind::Bool;
  v.boolean = b;
  return v;
}

Value Value::makeInt(int64_t i) {
  Value v;
  v.kind = Kind::Number;
  v.isInteger = true;
  v.integer = i;
  v.number = double(i);
  return v;
}

Value Value::makeNumber(double d) {
  Value v;
  v.kind = Kind::Number;
  v.number = d;
  return v;
}

Value Value::makeString(std::string s) {
  Value v;
  v.kind = Kind::String;
  v.string = std::move(s);
  return v;
}

Value Value::makeArray(std::vector<Value> a) {
  Value v;
  v.kind = Kind::Array;
  v.array = std::move(a);
  return v;
}

Value Value::makeObject() {
  Value v;
  v.kind = Kind::Object;
  return v;
}

Value &Value::add(std::string key, Value v) {
  object.emplace_back(std::move(key), std::move(v));
  return *this;
}

const char *kindName(Value::Kind k) {
  switch (k) {
  case Value::Kind::Null: return "null";
  case Value::Kind::Bool: return "a boolean";
  case Value::Kind::Number: return "a number";
  case Value::Kind::String: return "a string";
  case Value::Kind::Array: return "an array";
  case Value::Kind::Object: return "an object";
  }
  return "?";
}

namespace {

class Parser {
public:
  explicit Parser(const std::string &t) : t_(t) {}

  Value parseDocument() {
    skipWs();
    Value v = parseValue(0);
    skipWs();
    if (pos_ != t_.size())
      fail("expected the end of the JSON text after the top-level value, got " + describeHere());
    return v;
  }

private:
  const std::string &t_;
  size_t pos_ = 0, line_ = 1, lineStart_ = 0;

  [[noreturn]] void fail(const std::string &msg) const { failAt(pos_, msg); }

  [[noreturn]] void failAt(size_t pos, const std::string &msg) const {
    // Recompute the line of `pos` (pos may be behind the cursor).
    size_t line = 1, start = 0;
    for (size_t i = 0; i < pos && i < t_.size(); ++i)
      if (t_[i] == '\n') {
        ++line;
        start = i + 1;
      }
    throw JsonError(line, pos - start + 1, msg);
  }

  std::string describeHere() const {
    if (pos_ >= t_.size())
      return "the end of the text";
    unsigned char c = static_cast<unsigned char>(t_[pos_]);
    if (c >= 0x20 && c < 0x7f)
      return std::string("'") + char(c) + "'";
    char buf[16];
    std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  void skipWs() {
    while (pos_ < t_.size()) {
      char c = t_[pos_];
      if (c == '\n') {
        ++line_;
        lineStart_ = pos_ + 1;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        break;
      }
      ++pos_;
    }
  }

  bool consumeWord(const char *w) {
    size_t n = std::strlen(w);
    if (t_.compare(pos_, n, w) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  Value parseValue(int depth) {
    if (depth > kMaxDepth)
      fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    if (pos_ >= t_.size())
      fail("expected a value, got the end of the text");
    char c = t_[pos_];
    switch (c) {
    case '{': return parseObject(depth);
    case '[': return parseArray(depth);
    case '"': return Value::makeString(parseString());
    case 't':
      if (consumeWord("true"))
        return Value::makeBool(true);
      break;
    case 'f':
      if (consumeWord("false"))
        return Value::makeBool(false);
      break;
    case 'n':
      if (consumeWord("null"))
        return Value();
      break;
    default:
      if (c == '-' || (c >= '0' && c <= '9'))
        return parseNumber();
    }
    fail("expected a value (object, array, string, number, true, false or null), got " +
         describeHere());
  }

  Value parseObject(int depth) {
    Value v = Value::makeObject();
    ++pos_; // '{'
    skipWs();
    if (pos_ < t_.size() && t_[pos_] == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skipWs();
      if (pos_ >= t_.size() || t_[pos_] != '"')
        fail("expected a member name (a string) in an object, got " + describeHere());
      size_t keyPos = pos_;
      std::string key = parseString();
      if (v.find(key))
        failAt(keyPos, "duplicate member name " + quote(key) + " in an object");
      skipWs();
      if (pos_ >= t_.size() || t_[pos_] != ':')
        fail("expected ':' after the member name " + quote(key) + ", got " + describeHere());
      ++pos_;
      skipWs();
      v.add(std::move(key), parseValue(depth + 1));
      skipWs();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == '}') {
        ++pos_;
        return v;
      }
      fail("expected ',' or '}' after an object member, got " + describeHere());
    }
  }

  Value parseArray(int depth) {
    Value v = Value::makeArray();
    ++pos_; // '['
    skipWs();
    if (pos_ < t_.size() && t_[pos_] == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      skipWs();
      v.array.push_back(parseValue(depth + 1));
      skipWs();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == ']') {
        ++pos_;
        return v;
      }
      fail("expected ',' or ']' after an array element, got " + describeHere());
    }
  }

  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xc0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += char(0xe0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    } else {
      out += char(0xf0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3f));
      out += char(0x80 | ((cp >> 6) & 0x3f));
      out += char(0x80 | (cp & 0x3f));
    }
  }

  uint32_t parseHex4() {
    if (pos_ + 4 > t_.size())
      fail("expected 4 hex digits after \\u, got the end of the text");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = t_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= uint32_t(c - 'A' + 10);
      else {
        pos_ += i;
        fail("expected 4 hex digits after \\u, got " + describeHere());
      }
    }
    pos_ += 4;
    return v;
  }

  /// Validates one UTF-8 sequence starting at pos_ and copies it.
  void copyUtf8(std::string &out) {
    unsigned char c = static_cast<unsigned char>(t_[pos_]);
    int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
    if (n == 0 || pos_ + n > t_.size())
      fail("invalid UTF-8 in a string (" + describeHere() + ")");
    for (int i = 1; i < n; ++i)
      if ((static_cast<unsigned char>(t_[pos_ + i]) & 0xc0) != 0x80)
        fail("invalid UTF-8 in a string (" + describeHere() + ")");
    out.append(t_, pos_, size_t(n));
    pos_ += size_t(n);
  }

  std::string parseString() {
    size_t start = pos_;
    ++pos_; // '"'
    std::string out;
    for (;;) {
      if (pos_ >= t_.size())
        failAt(start, "unterminated string");
      unsigned char c = static_cast<unsigned char>(t_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20)
        fail("control character " + describeHere() + " in a string (write it as an escape)");
      if (c >= 0x80) {
        copyUtf8(out);
        continue;
      }
      if (c != '\\') {
        out += char(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= t_.size())
        failAt(start, "unterminated string");
      char e = t_[pos_++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp = parseHex4();
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (t_.compare(pos_, 2, "\\u") != 0)
            fail("a high surrogate \\u escape must be followed by a low surrogate");
          pos_ += 2;
          uint32_t lo = parseHex4();
          if (lo < 0xdc00 || lo > 0xdfff)
            fail("a high surrogate \\u escape must be followed by a low surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          fail("a lone low surrogate \\u escape");
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        pos_ -= 2; // point at the backslash
        fail("invalid escape '\\" + std::string(1, e) + "' in a string");
      }
    }
  }

  Value parseNumber() {
    size_t start = pos_;
    bool integral = true;
    if (t_[pos_] == '-')
      ++pos_;
    if (pos_ >= t_.size() || !(t_[pos_] >= '0' && t_[pos_] <= '9'))
      fail("expected a digit in a number, got " + describeHere());
    if (t_[pos_] == '0') {
      ++pos_;
      if (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
        fail("a number may not have a leading zero");
    } else {
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
        ++pos_;
    }
    if (pos_ < t_.size() && t_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= t_.size() || !(t_[pos_] >= '0' && t_[pos_] <= '9'))
        fail("expected a digit after the decimal point, got " + describeHere());
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
        ++pos_;
    }
    if (pos_ < t_.size() && (t_[pos_] == 'e' || t_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < t_.size() && (t_[pos_] == '+' || t_[pos_] == '-'))
        ++pos_;
      if (pos_ >= t_.size() || !(t_[pos_] >= '0' && t_[pos_] <= '9'))
        fail("expected a digit in the exponent, got " + describeHere());
      while (pos_ < t_.size() && t_[pos_] >= '0' && t_[pos_] <= '9')
        ++pos_;
    }
    std::string text = t_.substr(start, pos_ - start);
    Value v;
    v.kind = Value::Kind::Number;
    errno = 0;
    v.number = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(v.number))
      failAt(start, "number " + text + " is out of range");
    if (integral) {
      errno = 0;
      long long i = std::strtoll(text.c_str(), nullptr, 10);
      if (errno != ERANGE) {
        v.isInteger = true;
        v.integer = i;
      }
    }
    return v;
  }
};

void writeImpl(std::string &out, const Value &v, int indent, int level) {
  auto newline = [&](int lvl) {
    if (indent < 0)
      return;
    out += '\n';
    out.append(size_t(indent * lvl), ' ');
  };
  switch (v.kind) {
  case Value::Kind::Null: out += "null"; return;
  case Value::Kind::Bool: out += v.boolean ? "true" : "false"; return;
  case Value::Kind::Number: {
    if (v.isInteger) {
      out += std::to_string(v.integer);
    } else {
      char buf[40];
      std::snprintf(buf, sizeof buf, "%.17g", v.number);
      // Keep it a JSON number that reads back as non-integral when needed.
      std::string s = buf;
      if (s.find_first_of(".eE") == std::string::npos)
        s += ".0";
      out += s;
    }
    return;
  }
  case Value::Kind::String: out += quote(v.string); return;
  case Value::Kind::Array: {
    bool scalars = true;
    for (const auto &e : v.array)
      if (e.kind == Value::Kind::Array || e.kind == Value::Kind::Object)
        scalars = false;
    out += '[';
    for (size_t i = 0; i < v.array.size(); ++i) {
      if (i)
        out += (scalars || indent < 0) ? ", " : ",";
      if (!scalars)
        newline(level + 1);
      writeImpl(out, v.array[i], indent, level + 1);
    }
    if (!scalars && !v.array.empty())
      newline(level);
    out += ']';
    return;
  }
  case Value::Kind::Object: {
    out += '{';
    for (size_t i = 0; i < v.object.size(); ++i) {
      if (i)
        out += indent < 0 ? ", " : ",";
      newline(level + 1);
      out += quote(v.object[i].first);
      out += ": ";
      writeImpl(out, v.object[i].second, indent, level + 1);
    }
    if (!v.object.empty())
      newline(level);
    out += '}';
    return;
  }
  }
}

} // namespace

Value parse(const std::string &text) { return Parser(text).parseDocument(); }

std::string write(const Value &v, int indent) {
  std::string out;
  writeImpl(out, v, indent, 0);
  return out;
}

std::string quote(const std::string &s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += char(c);
      }
    }
  }
  out += '"';
  return out;
}

} // namespace attnc::rt::json
