// core: Schema (TOML + --set + validation), Registry, seeds, progress formatting.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "scorediff/core/error.hpp"
#include "scorediff/core/registry.hpp"
#include "scorediff/core/rng.hpp"
#include "scorediff/core/schema.hpp"
#include "scorediff/core/progress.hpp"

using namespace scorediff;

namespace {

struct Options {
  std::string name = "a";
  int64_t count = 3;
  double rate = 0.5;
  bool flag = false;
  std::vector<double> list;
  Matrix matrix;
};

Schema bind(Options& o) {
  Schema s;
  s.add("sec.name", &o.name, "name").one_of({"a", "b"});
  s.add("sec.count", &o.count, "count").at_least(1);
  s.add("sec.rate", &o.rate, "rate").positive();
  s.add("sec.flag", &o.flag, "flag");
  s.add("other.list", &o.list, "list").non_negative();
  s.add("other.matrix", &o.matrix, "matrix");
  return s;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Schema, LoadsTomlAndOverrides) {
  Options o;
  Schema s = bind(o);
  s.load_string("[sec]\nname = \"b\"\ncount = 7\nrate = 2\n[other]\nlist = [1, 2.5]\nmatrix = [[5, 5], [-5, -5]]\n", "t");
  EXPECT_EQ(o.name, "b");
  EXPECT_EQ(o.count, 7);
  EXPECT_DOUBLE_EQ(o.rate, 2.0);
  EXPECT_EQ(o.list, (std::vector<double>{1, 2.5}));
  EXPECT_EQ(o.matrix, (Matrix{{5, 5}, {-5, -5}}));
  s.set("sec.flag=true");
  s.set("sec.name=a");
  s.set("other.matrix=[[1],[2]]");
  s.set("other.list=3");
  EXPECT_TRUE(o.flag);
  EXPECT_EQ(o.name, "a");
  EXPECT_EQ(o.matrix, (Matrix{{1}, {2}}));
  EXPECT_EQ(o.list, (std::vector<double>{3}));
  s.check();
}

TEST(Schema, RoundTripsThroughToml) {
  Options o;
  o.rate = 1e-5;
  o.list = {0.1, 1.0 / 3.0};
  o.matrix = {{1.5, -2}};
  Schema s = bind(o);
  std::string text = s.to_toml();
  Options back;
  Schema t = bind(back);
  t.load_string(text, "round trip");
  EXPECT_EQ(back.rate, o.rate);
  EXPECT_EQ(back.list, o.list);
  EXPECT_EQ(back.matrix, o.matrix);
  EXPECT_EQ(t.to_toml(), text);
}

TEST(Schema, RejectsUnknownKeysNamingValidOnes) {
  Options o;
  Schema s = bind(o);
  std::string e = error_of([&] { s.load_string("[sec]\nnmae = \"a\"\n", "f.toml"); });
  EXPECT_NE(e.find("unknown config key 'sec.nmae'"), std::string::npos) << e;
  EXPECT_NE(e.find("name, count, rate, flag"), std::string::npos) << e;
  e = error_of([&] { s.load_string("[nope]\nx = 1\n", "f.toml"); });
  EXPECT_NE(e.find("unknown config section [nope]; valid: sec, other"), std::string::npos) << e;
  e = error_of([&] { s.set("sec.cuont=3"); });
  EXPECT_NE(e.find("unknown config key 'sec.cuont'"), std::string::npos) << e;
  e = error_of([&] { s.set("sec.count"); });
  EXPECT_NE(e.find("section.key=value"), std::string::npos) << e;
}

TEST(Schema, RejectsBadTypesAndRanges) {
  Options o;
  Schema s = bind(o);
  EXPECT_NE(error_of([&] { s.set("sec.count=1.5"); }).find("expects an integer"), std::string::npos);
  EXPECT_NE(error_of([&] { s.set("sec.rate=abc"); }).find("not a valid number"), std::string::npos);
  s.set("sec.rate=-1");
  EXPECT_NE(error_of([&] { s.check(); }).find("'sec.rate' = -1.0 is out of range; must be > 0.0"), std::string::npos);
  s.set("sec.rate=1");
  s.set("sec.name=c");
  EXPECT_NE(error_of([&] { s.check(); }).find("valid: a, b"), std::string::npos);
  s.set("sec.name=a");
  s.set("other.list=[1, -2]");
  EXPECT_NE(error_of([&] { s.check(); }).find("out of range"), std::string::npos);
}

TEST(Schema, ReportsMalformedTomlWithPosition) {
  Options o;
  Schema s = bind(o);
  std::string e = error_of([&] { s.load_string("[sec]\ncount = = 3\n", "bad.toml"); });
  EXPECT_NE(e.find("bad.toml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("malformed TOML"), std::string::npos) << e;
  e = error_of([&] { s.load_file("/nonexistent/x.toml"); });
  EXPECT_NE(e.find("not found"), std::string::npos) << e;
}

TEST(Registry, UnknownNameListsValidOnes) {
  Registry<int> r("sampler");
  r.add("ald", 1);
  r.add("langevin", 2);
  EXPECT_EQ(r.get("ald"), 1);
  std::string e = error_of([&] { r.get("pcc"); });
  EXPECT_EQ(e, "unknown sampler 'pcc'; valid: ald, langevin");
  EXPECT_THROW(r.add("ald", 3), Error);
}

TEST(Rng, StreamsAreIndependentAndReproducible) {
  EXPECT_EQ(derive_seed(7, "data"), derive_seed(7, "data"));
  EXPECT_NE(derive_seed(7, "data"), derive_seed(7, "train"));
  EXPECT_NE(derive_seed(7, "data"), derive_seed(8, "data"));
  auto a = make_generator(derive_seed(1, "x"));
  auto b = make_generator(derive_seed(1, "x"));
  EXPECT_TRUE(torch::equal(torch::randn({5}, a), torch::randn({5}, b)));
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(5), "0:05");
  EXPECT_EQ(format_duration(125), "2:05");
  EXPECT_EQ(format_duration(3725), "1:02:05");
  EXPECT_EQ(format_duration(NAN), "?");
}

// A resumed run's earlier steps are not work of this process: a run resumed at its end did nothing,
// so its rate is zero, not the steps of the earlier run over a few microseconds.
TEST(Progress, ResumedWorkIsLeftOutOfTheRate) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    Progress progress("train", 3000, "step", false, out);
    progress.set_first(3000);
    progress.finish("0 steps");
  }
  std::rewind(out);
  char buffer[256] = {};
  const size_t n = std::fread(buffer, 1, sizeof buffer - 1, out);
  std::fclose(out);
  const std::string text(buffer, n);
  EXPECT_NE(text.find("3000/3000"), std::string::npos) << text;
  EXPECT_NE(text.find("0.00 step/s"), std::string::npos) << text;
}

TEST(Sources, NoFileIsLongerThan400Lines) {
  // STYLE.md: one concept per file, files under ~400 lines.
  namespace fs = std::filesystem;
  int files = 0;
  for (const char* top : {"src", "include", "bench", "tests"})
    for (const auto& entry : fs::recursive_directory_iterator(fs::path(SCOREDIFF_SOURCE_DIR) / top)) {
      const auto ext = entry.path().extension();
      if (ext != ".cpp" && ext != ".hpp") continue;
      std::ifstream in(entry.path());
      const auto lines = std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n');
      EXPECT_LE(lines, 400) << entry.path();
      ++files;
    }
  EXPECT_GT(files, 100);
}
