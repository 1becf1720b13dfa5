//===- Npy.cpp - Read and write NumPy .npy files --------------------------===//
//
// The .npy format (numpy/lib/format.py): the magic "\x93NUMPY", a major and a
// minor version byte, the header length (uint16 in 1.0; uint32 in 2.0 and
// 3.0), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n', then the raw element bytes. The
// parser below accepts exactly this dict language (string keys; string, bool
// and int-tuple values) and nothing looser.
//
//===----------------------------------------------------------------------===//
#include "Npy.h"
#include "Half.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "attnc's .npy support assumes a little-endian host"
#endif

namespace attnc::support {

const char *dtypeDescr(DType t) {
  switch (t) {
  case DType::F16: return "<f2";
  case DType::F32: return "<f4";
  case DType::F64: return "<f8";
  case DType::I32: return "<i4";
  case DType::I64: return "<i8";
  case DType::Bool: return "|b1";
  case DType::U8: return "|u1";
  case DType::U16: return "<u2";
  case DType::I16: return "<i2";
  }
  return "?";
}

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::Bool: case DType::U8: return 1;
  case DType::F16: case DType::U16: case DType::I16: return 2;
  case DType::F32: case DType::I32: return 4;
  case DType::F64: case DType::I64: return 8;
  }
  return 1;
}

const char *dtypeName(DType t) {
  switch (t) {
  case DType::F16: return "float16";
  case DType::F32: return "float32";
  case DType::F64: return "float64";
  case DType::I32: return "int32";
  case DType::I64: return "int64";
  case DType::Bool: return "bool";
  case DType::U8: return "uint8";
  case DType::U16: return "uint16 (bf16 bits)";
  case DType::I16: return "int16 (bf16 bits)";
  }
  return "?";
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

bool NpyArray::isFloat() const {
  return dtype == DType::F16 || dtype == DType::F32 || dtype == DType::F64 ||
         dtype == DType::U16 || dtype == DType::I16;
}

bool NpyArray::isInt() const { return dtype == DType::I32 || dtype == DType::I64; }

namespace {

template <typename T> T loadLE(const uint8_t *p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

[[noreturn]] void wrongDType(const std::string &what, DType found, const char *expected) {
  throw NpyError(what + ": expected dtype " + expected + ", found " + dtypeDescr(found) +
                 " (" + dtypeName(found) + ")");
}

} // namespace

std::vector<double> NpyArray::toFloat64(const std::string &what) const {
  size_t n = size_t(numel());
  std::vector<double> out(n);
  const uint8_t *p = data.data();
  switch (dtype) {
  case DType::F16:
    for (size_t i = 0; i < n; ++i)
      out[i] = halfToFloat(loadLE<uint16_t>(p + 2 * i));
    break;
  case DType::U16:
  case DType::I16:
    for (size_t i = 0; i < n; ++i)
      out[i] = bf16ToFloat(loadLE<uint16_t>(p + 2 * i));
    break;
  case DType::F32:
    for (size_t i = 0; i < n; ++i)
      out[i] = loadLE<float>(p + 4 * i);
    break;
  case DType::F64:
    for (size_t i = 0; i < n; ++i)
      out[i] = loadLE<double>(p + 8 * i);
    break;
  default:
    wrongDType(what, dtype, "<f2, <f4, <f8, or bf16 bits as <u2/<i2");
  }
  return out;
}

std::vector<int64_t> NpyArray::toInt64(const std::string &what) const {
  size_t n = size_t(numel());
  std::vector<int64_t> out(n);
  const uint8_t *p = data.data();
  switch (dtype) {
  case DType::I32:
    for (size_t i = 0; i < n; ++i)
      out[i] = loadLE<int32_t>(p + 4 * i);
    break;
  case DType::I64:
    for (size_t i = 0; i < n; ++i)
      out[i] = loadLE<int64_t>(p + 8 * i);
    break;
  default:
    wrongDType(what, dtype, "<i4 or <i8");
  }
  return out;
}

std::vector<uint8_t> NpyArray::toBool(const std::string &what) const {
  if (dtype != DType::Bool && dtype != DType::U8)
    wrongDType(what, dtype, "|b1 or |u1");
  std::vector<uint8_t> out(data.begin(), data.begin() + numel());
  for (auto &b : out)
    b = b != 0;
  return out;
}

NpyArray NpyArray::fromFloat64(std::vector<int64_t> shape, const std::vector<double> &v) {
  NpyArray a;
  a.dtype = DType::F64;
  a.shape = std::move(shape);
  a.data.resize(v.size() * 8);
  std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

NpyArray NpyArray::fromFloat32(std::vector<int64_t> shape, const std::vector<double> &v) {
  NpyArray a;
  a.dtype = DType::F32;
  a.shape = std::move(shape);
  a.data.resize(v.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) {
    float f = float(v[i]);
    std::memcpy(a.data.data() + 4 * i, &f, 4);
  }
  return a;
}

NpyArray NpyArray::fromInt64(std::vector<int64_t> shape, const std::vector<int64_t> &v) {
  NpyArray a;
  a.dtype = DType::I64;
  a.shape = std::move(shape);
  a.data.resize(v.size() * 8);
  std::memcpy(a.data.data(), v.data(), a.data.size());
  return a;
}

//===----------------------------------------------------------------------===//
// Header parsing
//===----------------------------------------------------------------------===//

namespace {

/// Header text for an error message: printable ASCII kept, the rest \xNN.
std::string printable(const std::string &s, size_t max = 40) {
  static const char hex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    unsigned char c = uint8_t(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (s.size() > max)
    out += "...";
  return out;
}

/// A recursive-descent reader of the header dict literal.
class HeaderParser {
public:
  HeaderParser(const std::string &text, const std::string &file) : s_(text), file_(file) {}

  void parse(std::string &descr, bool &fortran, std::vector<int64_t> &shape) {
    bool haveDescr = false, haveFortran = false, haveShape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      std::string key = str();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (peek() == '[')
          fail("structured dtypes are not supported; expected a simple descr like '<f4'");
        descr = str();
        haveDescr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        haveFortran = true;
      } else if (key == "shape") {
        shape = tuple();
        haveShape = true;
      } else {
        fail("unexpected header key '" + printable(key) +
             "'; expected only descr, fortran_order, shape");
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      expect('}');
      break;
    }
    ws();
    if (i_ != s_.size())
      fail("unexpected text after the header dict");
    if (!haveDescr || !haveFortran || !haveShape)
      fail(std::string("header lacks the key '") +
           (!haveDescr ? "descr" : !haveFortran ? "fortran_order" : "shape") + "'");
  }

private:
  [[noreturn]] void fail(const std::string &msg) {
    throw NpyError(file_ + ": bad .npy header: " + msg);
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    if (peek() != c)
      fail(std::string("expected '") + c + "' at offset " + std::to_string(i_) +
           (i_ < s_.size() ? ", found '" + printable(s_.substr(i_, 1)) + "'" : ", found the end"));
    ++i_;
  }
  std::string str() {
    char q = peek();
    if (q != '\'' && q != '"')
      fail("expected a quoted string at offset " + std::to_string(i_));
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != q)
      out += s_[i_++];
    expect(q);
    return out;
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("expected True or False for fortran_order");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> out;
    expect('(');
    for (;;) {
      ws();
      if (peek() == ')') {
        ++i_;
        return out;
      }
      if (!(peek() >= '0' && peek() <= '9'))
        fail("expected a non-negative integer dimension in shape");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10)
          fail("shape dimension too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (peek() == 'L') // Python 2 long literal
        ++i_;
      out.push_back(v);
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      expect(')');
      return out;
    }
  }

  const std::string &s_;
  const std::string &file_;
  size_t i_ = 0;
};

DType parseDescr(const std::string &descr, const std::string &file) {
  static const char *kSupported =
      "<f2, <f4, <f8, <i4, <i8, |b1, |u1, <u2 or <i2 (bf16 bits)";
  if (descr.size() >= 2) {
    char order = descr[0];
    std::string code = descr.substr(1);
    bool oneByte = code == "b1" || code == "u1";
    if (order == '>' && !oneByte)
      throw NpyError(file + ": big-endian dtype '" + printable(descr) +
                     "' is not supported; expected little-endian (" + kSupported + ")");
    if (order == '<' || order == '=' || order == '|') {
      if (code == "f2") return DType::F16;
      if (code == "f4") return DType::F32;
      if (code == "f8") return DType::F64;
      if (code == "i4") return DType::I32;
      if (code == "i8") return DType::I64;
      if (code == "u2") return DType::U16;
      if (code == "i2") return DType::I16;
    }
    if (oneByte)
      return code == "b1" ? DType::Bool : DType::U8;
  }
  throw NpyError(file + ": unsupported dtype '" + printable(descr) + "'; expected one of " +
                 kSupported);
}

} // namespace

NpyArray parseNpy(const std::string &bytes, const std::string &name) {
  static const char kMagic[] = "\x93NUMPY";
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0)
    throw NpyError(name + ": not a .npy file (expected the magic \"\\x93NUMPY\" and a header, found " +
                   (bytes.size() < 10 ? std::to_string(bytes.size()) + " bytes in all)"
                                      : "other bytes)"));
  unsigned major = uint8_t(bytes[6]), minor = uint8_t(bytes[7]);
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = loadLE<uint16_t>(reinterpret_cast<const uint8_t *>(bytes.data()) + 8);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12)
      throw NpyError(name + ": truncated .npy header (file has " + std::to_string(bytes.size()) +
                     " bytes)");
    headerLen = loadLE<uint32_t>(reinterpret_cast<const uint8_t *>(bytes.data()) + 8);
    headerStart = 12;
  } else {
    throw NpyError(name + ": unsupported .npy version " + std::to_string(major) + "." +
                   std::to_string(minor) + "; expected 1.0, 2.0 or 3.0");
  }
  if (bytes.size() - headerStart < headerLen)
    throw NpyError(name + ": truncated .npy header: expected " + std::to_string(headerLen) +
                   " header bytes, found " + std::to_string(bytes.size() - headerStart));
  std::string header = bytes.substr(headerStart, headerLen);
  NpyArray a;
  std::string descr;
  bool fortran = false;
  HeaderParser(header, name).parse(descr, fortran, a.shape);
  a.dtype = parseDescr(descr, name);
  if (fortran)
    throw NpyError(name + ": fortran_order arrays are not supported; expected C order "
                          "(save np.ascontiguousarray(x))");
  // Size, guarding against overflow in a hostile header.
  uint64_t n = 1;
  const uint64_t kMaxElems = uint64_t(1) << 50;
  for (int64_t d : a.shape) {
    if (d != 0 && n > kMaxElems / uint64_t(d))
      throw NpyError(name + ": shape " + shapeString(a.shape) + " is too large");
    n *= uint64_t(d);
  }
  uint64_t need = n * dtypeSize(a.dtype);
  uint64_t have = bytes.size() - headerStart - headerLen;
  if (have < need)
    throw NpyError(name + ": truncated: shape " + shapeString(a.shape) + " of " + descr +
                   " needs " + std::to_string(need) + " data bytes, found " +
                   std::to_string(have));
  if (have > need)
    throw NpyError(name + ": " + std::to_string(have - need) +
                   " unexpected bytes after the data of shape " + shapeString(a.shape) + " of " +
                   descr + " (expected " + std::to_string(need) + " data bytes)");
  a.data.assign(bytes.begin() + headerStart + headerLen, bytes.end());
  return a;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw NpyError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    throw NpyError(path + ": read error");
  return ss.str();
}

NpyArray readNpy(const std::string &path) { return parseNpy(readFile(path), path); }

std::string encodeNpy(const NpyArray &a) {
  std::string dict = std::string("{'descr': '") + dtypeDescr(a.dtype) +
                     "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < a.shape.size(); ++i) {
    dict += std::to_string(a.shape[i]);
    if (i + 1 < a.shape.size() || a.shape.size() == 1)
      dict += a.shape.size() == 1 ? "," : ", ";
  }
  dict += "), }";
  // Pad so that magic + version + length + header is a multiple of 64.
  bool v2 = dict.size() + 1 + 10 > 65535;
  size_t prefix = v2 ? 12 : 10;
  size_t total = prefix + dict.size() + 1;
  size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  std::string out("\x93NUMPY", 6);
  out += char(v2 ? 2 : 1);
  out += char(0);
  uint32_t len = uint32_t(dict.size());
  out += char(len & 0xff);
  out += char((len >> 8) & 0xff);
  if (v2) {
    out += char((len >> 16) & 0xff);
    out += char((len >> 24) & 0xff);
  }
  out += dict;
  out.append(reinterpret_cast<const char *>(a.data.data()), a.data.size());
  return out;
}

void writeNpy(const std::string &path, const NpyArray &a) { writeFileAtomic(path, encodeNpy(a)); }

//===----------------------------------------------------------------------===//
// Atomic writes
//===----------------------------------------------------------------------===//

namespace {

mode_t currentUmask() {
  static mode_t mask = [] {
    mode_t m = umask(022);
    umask(m);
    return m;
  }();
  return mask;
}

std::string errnoText() { return std::strerror(errno); }

/// Writes `bytes` to a fresh temporary file beside `path`; returns its name.
std::string writeTemp(const std::string &path, const std::string &bytes) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmpl = dir + "." + base + ".tmp.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemp(buf.data());
  if (fd < 0)
    throw std::runtime_error(path + ": cannot create a temporary file beside it: " + errnoText());
  std::string tmp(buf.data());
  auto failWith = [&](const std::string &what) {
    std::string msg = path + ": " + what + ": " + errnoText();
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(msg);
  };
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      failWith("write failed");
    }
    off += size_t(w);
  }
  if (::fchmod(fd, 0666 & ~currentUmask()) != 0)
    failWith("chmod failed");
  if (::fsync(fd) != 0)
    failWith("fsync failed");
  if (::close(fd) != 0) {
    std::string msg = path + ": close failed: " + errnoText();
    ::unlink(tmp.c_str());
    throw std::runtime_error(msg);
  }
  return tmp;
}

} // namespace

void writeFileAtomic(const std::string &path, const std::string &bytes) {
  writeFilesAtomic({{path, bytes}});
}

void writeFilesAtomic(const std::vector<std::pair<std::string, std::string>> &files) {
  std::vector<std::string> temps;
  try {
    for (const auto &[path, bytes] : files)
      temps.push_back(writeTemp(path, bytes));
  } catch (...) {
    for (const auto &t : temps)
      ::unlink(t.c_str());
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (::rename(temps[i].c_str(), files[i].first.c_str()) != 0) {
      std::string msg = files[i].first + ": cannot rename the temporary file into place: " +
                        errnoText();
      for (size_t j = i; j < temps.size(); ++j)
        ::unlink(temps[j].c_str());
      throw std::runtime_error(msg);
    }
  }
}

} // namespace attnc::support
