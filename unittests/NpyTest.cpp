//===- NpyTest.cpp - .npy I/O, fp16/bf16 conversion, atomic writes --------===//
//
// Round trips for every supported dtype, files as NumPy writes them (v1, v2,
// v3 headers), every malformed-file error, exhaustive fp16/bf16 rounding
// (each midpoint between adjacent values, and its neighbours), and the
// all-or-nothing behaviour of atomic writes.
//
//===----------------------------------------------------------------------===//
#include "support/Half.h"
#include "support/Npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace attnc::support;

namespace {

/// A .npy file image with the given header dict and version.
std::string npyImage(const std::string &dict, const std::string &data, int major = 1) {
  std::string h = dict;
  size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + h.size() + 1) % 64)
    h += ' ';
  h += '\n';
  std::string out("\x93NUMPY", 6);
  out += char(major);
  out += char(0);
  uint32_t n = uint32_t(h.size());
  out += char(n & 0xff);
  out += char(n >> 8);
  if (major != 1) {
    out += char(n >> 16);
    out += char(n >> 24);
  }
  return out + h + data;
}

std::string floatBytes(std::initializer_list<float> v) {
  std::string s;
  for (float f : v)
    s.append(reinterpret_cast<const char *>(&f), 4);
  return s;
}

std::string errorOf(const std::string &bytes) {
  try {
    parseNpy(bytes, "t.npy");
  } catch (const NpyError &e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string &s, const std::string &sub) { return s.find(sub) != std::string::npos; }

class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/attnc_npytest.XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    DIR *d = opendir(path.c_str());
    while (dirent *e = readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        out.push_back(e->d_name);
    closedir(d);
    return out;
  }
  std::string path;
};

} // namespace

TEST(Npy, ParsesNumpyV1Float32) {
  NpyArray a = parseNpy(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                 floatBytes({0, 1, 2, 3, 4, 5})),
                        "t.npy");
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  auto v = a.toFloat64("t");
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[5], 5.0);
}

TEST(Npy, ParsesV2AndV3AndScalarsAndEmpty) {
  for (int major : {2, 3}) {
    NpyArray a = parseNpy(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                                   floatBytes({1, 2, 3}), major),
                          "t.npy");
    EXPECT_EQ(a.shape, (std::vector<int64_t>{3}));
  }
  NpyArray s = parseNpy(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                                 floatBytes({7})),
                        "t.npy");
  EXPECT_EQ(s.numel(), 1);
  NpyArray e = parseNpy(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", ""),
                        "t.npy");
  EXPECT_EQ(e.numel(), 0);
}

TEST(Npy, RoundTripsEveryDType) {
  for (DType t : {DType::F16, DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool,
                  DType::U8, DType::U16, DType::I16}) {
    NpyArray a;
    a.dtype = t;
    a.shape = {2, 1, 3};
    a.data.resize(6 * dtypeSize(t));
    for (size_t i = 0; i < a.data.size(); ++i)
      a.data[i] = uint8_t(t == DType::Bool ? i % 2 : i * 37 + 1);
    std::string bytes = encodeNpy(a);
    EXPECT_EQ(bytes.size() % 64, a.data.size() % 64) << dtypeDescr(t);
    NpyArray b = parseNpy(bytes, "t.npy");
    EXPECT_EQ(b.dtype, t);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.data, a.data);
  }
}

TEST(Npy, ConvertsValues) {
  NpyArray h;
  h.dtype = DType::F16;
  h.shape = {2};
  h.data = {0x00, 0x3c, 0x00, 0xc0}; // 1.0, -2.0
  EXPECT_EQ(h.toFloat64("h"), (std::vector<double>{1.0, -2.0}));
  NpyArray b = h;
  b.dtype = DType::I16; // bf16 bits 0x3c00 = 2^-7, 0xc000 = -2
  EXPECT_EQ(b.toFloat64("b"), (std::vector<double>{0.0078125, -2.0}));
  NpyArray i = NpyArray::fromInt64({2}, {-5, 1LL << 40});
  EXPECT_EQ(i.toInt64("i"), (std::vector<int64_t>{-5, 1LL << 40}));
  NpyArray f = NpyArray::fromFloat32({1}, {0.1});
  EXPECT_EQ(f.toFloat64("f")[0], double(0.1f));
}

TEST(Npy, WrongDTypeNamesExpectedAndFound) {
  NpyArray f = NpyArray::fromFloat32({1}, {1.0});
  try {
    f.toInt64("doc.npy");
    FAIL();
  } catch (const NpyError &e) {
    std::string m = e.what();
    EXPECT_TRUE(contains(m, "doc.npy")) << m;
    EXPECT_TRUE(contains(m, "<i4 or <i8")) << m;
    EXPECT_TRUE(contains(m, "<f4")) << m;
  }
  NpyArray i = NpyArray::fromInt64({1}, {1});
  EXPECT_THROW(i.toFloat64("x"), NpyError);
  EXPECT_THROW(i.toBool("x"), NpyError);
}

TEST(Npy, RejectsMalformedFiles) {
  std::string good = npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                              floatBytes({0, 1, 2, 3, 4, 5}));
  std::string m = errorOf(good.substr(0, good.size() - 3));
  EXPECT_TRUE(contains(m, "t.npy") && contains(m, "truncated") && contains(m, "24")) << m;
  m = errorOf(good.substr(0, 40));
  EXPECT_TRUE(contains(m, "truncated .npy header")) << m;
  m = errorOf(good.substr(0, 5));
  EXPECT_TRUE(contains(m, "not a .npy file")) << m;
  m = errorOf("PK\x03\x04 this is a zip file, not npy");
  EXPECT_TRUE(contains(m, "not a .npy file")) << m;
  m = errorOf(good + "xx");
  EXPECT_TRUE(contains(m, "unexpected bytes")) << m;
  m = errorOf(npyImage("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                       floatBytes({0, 1, 2, 3, 4, 5})));
  EXPECT_TRUE(contains(m, "fortran_order")) << m;
  m = errorOf(npyImage("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", floatBytes({1})));
  EXPECT_TRUE(contains(m, "big-endian")) << m;
  m = errorOf(npyImage("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "12345678"));
  EXPECT_TRUE(contains(m, "unsupported dtype '<c8'")) << m;
  m = errorOf(npyImage("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "1234"));
  EXPECT_TRUE(contains(m, "structured")) << m;
  m = errorOf(npyImage("{'descr': '<f4', 'shape': (1,), }", "1234"));
  EXPECT_TRUE(contains(m, "fortran_order")) << m;
  m = errorOf(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "1234"));
  EXPECT_TRUE(contains(m, "bad .npy header")) << m;
  m = errorOf(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (1 << 60, 1 << 60), }", ""));
  EXPECT_TRUE(contains(m, "bad .npy header")) << m;
  m = errorOf(npyImage("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", ""));
  EXPECT_TRUE(contains(m, "too large")) << m;
  std::string v9 = good;
  v9[6] = 9;
  m = errorOf(v9);
  EXPECT_TRUE(contains(m, "version 9.0")) << m;
}

TEST(Npy, ReadFileNamesMissingPath) {
  try {
    readNpy("/nonexistent/dir/q.npy");
    FAIL();
  } catch (const NpyError &e) {
    EXPECT_TRUE(contains(e.what(), "/nonexistent/dir/q.npy")) << e.what();
  }
}

TEST(Half, HalfToFloatToHalfIsIdentity) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = halfToFloat(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(f))));
      continue;
    }
    ASSERT_EQ(floatToHalf(f), h) << std::hex << h;
  }
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(halfToFloat(0xfc00), -INFINITY);
}

/// Every midpoint between adjacent finite values rounds to the even one, and
/// the floats just below and above it round down and up.
template <typename ToFloat, typename FromFloat>
void checkRoundToNearestEven(ToFloat toF, FromFloat fromF, uint16_t maxFinite, uint16_t inf) {
  for (uint32_t a = 0; a < maxFinite; ++a) {
    uint16_t lo = uint16_t(a), hi = uint16_t(a + 1);
    float fl = toF(lo), fh = toF(hi);
    float mid = float((double(fl) + double(fh)) / 2); // exact: 11 or 8 bits of mantissa
    ASSERT_EQ(double(mid), (double(fl) + double(fh)) / 2);
    uint16_t even = (lo & 1) ? hi : lo;
    ASSERT_EQ(fromF(mid), even) << std::hex << a;
    ASSERT_EQ(fromF(std::nextafter(mid, -INFINITY)), lo) << std::hex << a;
    ASSERT_EQ(fromF(std::nextafter(mid, INFINITY)), hi) << std::hex << a;
    ASSERT_EQ(fromF(-mid), uint16_t(even | 0x8000));
  }
  // Beyond the largest finite value: the midpoint to the "next" power ties
  // to infinity (the largest finite value has an odd mantissa).
  float top = toF(maxFinite);
  float mid = float(double(top) + (double(top) - double(toF(uint16_t(maxFinite - 1)))) / 2);
  EXPECT_EQ(fromF(std::nextafter(mid, -INFINITY)), maxFinite);
  EXPECT_EQ(fromF(mid), inf);
  EXPECT_EQ(fromF(INFINITY), inf);
  EXPECT_TRUE(std::isnan(toF(fromF(NAN))));
}

TEST(Half, FloatToHalfRoundsToNearestEven) {
  checkRoundToNearestEven(halfToFloat, floatToHalf, 0x7bff, 0x7c00);
  EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -25)), 0x0000);      // tie to even (0)
  EXPECT_EQ(floatToHalf(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -30)), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(1e30f), 0x7c00);
}

TEST(Half, Bf16RoundsToNearestEven) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = bf16ToFloat(uint16_t(b));
    if (!std::isnan(f)) {
      ASSERT_EQ(floatToBf16(f), b);
    }
  }
  checkRoundToNearestEven(bf16ToFloat, floatToBf16, 0x7f7f, 0x7f80);
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
}

TEST(AtomicWrite, WritesAndReplaces) {
  TempDir dir;
  std::string p = dir.path + "/o.npy";
  writeNpy(p, NpyArray::fromFloat64({2}, {1.5, -2.5}));
  EXPECT_EQ(readNpy(p).toFloat64("o"), (std::vector<double>{1.5, -2.5}));
  writeNpy(p, NpyArray::fromInt64({1}, {7}));
  EXPECT_EQ(readNpy(p).toInt64("o"), (std::vector<int64_t>{7}));
  EXPECT_EQ(dir.entries(), (std::vector<std::string>{"o.npy"})); // no temp left
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0044, 0u); // not mkstemp's 0600
}

TEST(AtomicWrite, AllOrNothing) {
  TempDir dir;
  std::string a = dir.path + "/a.npy", bad = dir.path + "/missing/b.npy";
  EXPECT_THROW(writeFilesAtomic({{a, "first"}, {bad, "second"}}), std::runtime_error);
  EXPECT_TRUE(dir.entries().empty()); // neither a.npy nor a temporary file
  try {
    writeFileAtomic(bad, "x");
  } catch (const std::runtime_error &e) {
    EXPECT_TRUE(contains(e.what(), bad)) << e.what();
  }
}
