// safetensors: round trip, files written by Python, every malformed header rejected with a clear
// error, and whole EulerFormer checkpoints.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/eulerformer.hpp>

#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace test_safetensors {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {
std::string temp_path(const std::string& name) {
  return (euler_test::scratch_dir("safetensors") / name).string();
}
// A raw file from a header string and data bytes.
std::string raw_file(const std::string& header, const std::string& data, int64_t claimed = -1) {
  uint64_t n = claimed < 0 ? header.size() : uint64_t(claimed);
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}
std::string floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}
}  // namespace

TEST_CASE("safetensors: round trip of float, double and int tensors with metadata") {
  auto A = Tensor<float>::from({2, 3}, {1, 2, 3, 4, 5, 6});
  auto B = Tensor<double>::from({2}, {0.25, -7.5});
  auto S = Tensor<float>::from({}, {3.5f});
  safetensors::Writer w;
  w.add("a", A.view());
  w.add("b", B.view());
  w.add("scalar", S.view());
  w.metadata["config"] = "{\"x\": 1}";
  std::string path = temp_path("roundtrip.safetensors");
  w.write(path);
  auto f = safetensors::File::read(path);
  CHECK(f.metadata().at("config") == "{\"x\": 1}");
  CHECK(f.info("a").dtype == safetensors::DType::F32);
  CHECK(f.info("b").dtype == safetensors::DType::F64);
  CHECK(f.info("scalar").shape.empty());
  auto a = f.tensor<float>("a");
  CHECK(a.shape() == Shape{2, 3});
  CHECK(a.at({1, 2}) == 6);
  auto b = f.tensor<float>("b");  // F64 read as float
  CHECK(b[1] == -7.5f);
  CHECK(f.tensor<double>("scalar")[0] == 3.5);
  // Header is padded to 8 bytes and the data follows it.
  std::string bytes = read_file(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 6 * 4 + 2 * 8 + 4);
}

TEST_CASE("safetensors: a file written by a Python script is read correctly") {
  if (std::system("python3 --version > /dev/null 2>&1") != 0) {
    MESSAGE("python3 not found: skipping the Python interchange test");
    return;
  }
  std::string path = temp_path("from_python.safetensors");
  // What the safetensors package writes: sorted by dtype then name, metadata first, space padding.
  std::string script = temp_path("write.py");
  std::ofstream(script) << R"PY(
import json, struct, sys
tensors = {"weight": ("F32", [2, 2], struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)),
           "delta": ("F64", [], struct.pack("<d", 0.5))}
header, data = {"__metadata__": {"format": "pt"}}, b""
for name, (dtype, shape, raw) in tensors.items():
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
text = json.dumps(header, separators=(",", ":")).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
)PY";
  REQUIRE(std::system(("python3 " + script + " " + path).c_str()) == 0);
  auto f = safetensors::File::read(path);
  CHECK(f.metadata().at("format") == "pt");
  auto w = f.tensor<float>("weight");
  CHECK(w.at({1, 0}) == 3.0f);
  CHECK(f.tensor<double>("delta")[0] == 0.5);
}

TEST_CASE("safetensors: what euler writes is read by a stdlib Python reader") {
  if (std::system("python3 --version > /dev/null 2>&1") != 0) {
    MESSAGE("python3 not found: skipping");
    return;
  }
  EulerFormerConfig c;
  c.n_items = 9;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.max_len = 5;
  EulerFormer<float> model(c, 3);
  std::string path = temp_path("model.safetensors");
  save_weights(path, model);
  std::string script = temp_path("read.py");
  std::ofstream(script) << R"PY(
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
config = json.loads(meta["config"])
assert config["n_items"] == 9 and config["hidden_size"] == 8, config
data = raw[8 + n:]
t = header["item_embedding.weight"]
assert t["dtype"] == "F32" and t["shape"] == [9, 8], t
b, e = t["data_offsets"]
values = struct.unpack("<%df" % (t["shape"][0] * t["shape"][1]), data[b:e])
print(repr(values[9]))
assert sum(e - b for b, e in (v["data_offsets"] for v in header.values())) == len(data)
)PY";
  std::string out = temp_path("read.out");
  REQUIRE(std::system(("python3 " + script + " " + path + " > " + out).c_str()) == 0);
  double printed = std::stod(read_file(out));
  CHECK(printed == doctest::Approx(model.parameters().value("item_embedding.weight")[9]).epsilon(1e-7));
}

TEST_CASE("safetensors: malformed files give a clear error naming the file and the problem") {
  std::string good_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string data = floats({1, 2});
  CHECK_NOTHROW(safetensors::File::parse(raw_file(good_header, data), "ok.st"));
  auto bad = [&](const std::string& bytes, const std::string& expect) {
    CAPTURE(expect);
    CHECK_THROWS_WITH_AS(safetensors::File::parse(bytes, "bad.st"), doctest::Contains(expect.c_str()), safetensors::FormatError);
    try {
      safetensors::File::parse(bytes, "bad.st");
    } catch (const std::exception& e) {
      CHECK(std::string(e.what()).rfind("bad.st: ", 0) == 0);
    }
  };
  bad("abc", "too short");
  bad(raw_file(good_header, data).substr(0, 30), "runs past the end of the file");
  bad(raw_file(good_header, data, 1 << 20), "runs past the end of the file");
  bad(raw_file(good_header, data, int64_t(1) << 40), "implausibly large");
  bad(raw_file("{\"w\": [", data), "not valid JSON");
  bad(raw_file("[1,2]", data), "not a JSON object");
  bad(raw_file(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", data), "unsupported dtype 'F16'");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data), "needs 12 bytes but data_offsets cover 8");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data), "run past the data");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", data), "begin > end");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data),
      "overlaps");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data), "hole in the data");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", data), "trailing bytes");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data), "not a non-negative integer");
  bad(raw_file(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", data), "missing 'shape'");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", data), "data_offsets must be");
  bad(raw_file(R"({"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data), "not a string");
  bad(raw_file(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data), "too large");
  // A well-formed file that lacks what is asked for.
  auto f = safetensors::File::parse(raw_file(good_header, data), "ok.st");
  CHECK_THROWS_WITH_AS(f.tensor<float>("nope"), doctest::Contains("ok.st: no tensor named 'nope'"), safetensors::FormatError);
  auto wrong_shape = Tensor<float>::zeros({3});
  CHECK_THROWS_WITH_AS(f.copy_to("w", wrong_shape.view()), doctest::Contains("has shape [2], expected [3]"), safetensors::FormatError);
  CHECK_THROWS_AS(safetensors::File::read(temp_path("does_not_exist.st")), IoError);
  CHECK_THROWS_WITH_AS(safetensors::File::read(fs::temp_directory_path().string()), doctest::Contains("is a directory"), IoError);
}

TEST_CASE("checkpoints: an EulerFormer round trips, and mismatched files are refused") {
  EulerFormerConfig c;
  c.n_items = 13;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.max_len = 5;
  c.delta_shape = DeltaShape::vector;
  EulerFormer<float> model(c, 21);
  std::string path = temp_path("ckpt.safetensors");
  save_weights(path, model);
  EulerFormer<float> loaded = load_model<float>(path);
  CHECK(loaded.config().to_json() == c.to_json());
  auto& a = model.parameters();
  auto& b = loaded.parameters();
  REQUIRE(a.numel() == b.numel());
  for (int64_t i = 0; i < a.numel(); ++i) REQUIRE(a.values()[i] == b.values()[i]);
  // The same file into a model of another shape: refused with the names.
  EulerFormerConfig other = c;
  other.pos = PosScheme::rope;
  EulerFormer<float> rope(other);
  auto file = safetensors::File::read(path);
  CHECK_THROWS_WITH_AS(load_weights(file, rope), doctest::Contains("tensors this model does not have: position_embedding.weight"),
                       safetensors::FormatError);
  EulerFormerConfig bigger = c;
  bigger.n_layers = 3;
  EulerFormer<float> deeper(bigger);
  CHECK_THROWS_WITH_AS(load_weights(file, deeper), doctest::Contains("missing tensors for this model: trm_encoder.layer.2"),
                       safetensors::FormatError);
  EulerFormerConfig wider = c;
  wider.n_items = 14;
  EulerFormer<float> more_items(wider);
  CHECK_THROWS_WITH_AS(load_weights(file, more_items), doctest::Contains("'item_embedding.weight' has shape [13, 8], expected [14, 8]"),
                       safetensors::FormatError);
  // No config in the metadata.
  safetensors::Writer w;
  auto t = Tensor<float>::zeros({1});
  w.add("x", t.view());
  std::string bare = temp_path("bare.safetensors");
  w.write(bare);
  CHECK_THROWS_WITH_AS(load_model<float>(bare), doctest::Contains("no 'config' in __metadata__"), safetensors::FormatError);
}

TEST_CASE("checkpoints: the format version is written, and a later or malformed one is refused") {
  EulerFormerConfig c;
  c.n_items = 9;
  c.hidden_size = 4;
  c.inner_size = 8;
  c.max_len = 3;
  EulerFormer<float> model(c, 5);
  std::string path = temp_path("versioned.safetensors");
  save_weights(path, model);
  CHECK(safetensors::File::read(path).metadata().at("format_version") == std::to_string(checkpoint_format_version));
  auto write_with = [&](const char* version) {
    safetensors::Writer w = weights_writer(model);
    if (version) w.metadata["format_version"] = version;
    else w.metadata.erase("format_version");
    w.write(path);
  };
  write_with(nullptr);  // a file written before the key existed reads as version 1
  CHECK(load_model<float>(path).config().to_json() == c.to_json());
  write_with(std::to_string(checkpoint_format_version + 1).c_str());
  CHECK_THROWS_WITH_AS(load_model<float>(path), doctest::Contains("checkpoint format version 2 is newer than this euler"),
                       safetensors::FormatError);
  for (const char* bad : {"", "one", "1.0", "0", "-1", "99999999999999999999"}) {
    CAPTURE(bad);
    write_with(bad);
    CHECK_THROWS_WITH_AS(load_model<float>(path), doctest::Contains("metadata 'format_version' is"), safetensors::FormatError);
  }
}

TEST_CASE("atomic writes: a failed write leaves the previous file intact") {
  std::string path = temp_path("atomic.bin");
  write_file_atomically(path, "first");
  CHECK(read_file(path) == "first");
  write_file_atomically(path, "second");
  CHECK(read_file(path) == "second");
  CHECK_THROWS_WITH_AS(write_file_atomically("/nonexistent_dir_euler/x.bin", "data"), doctest::Contains("/nonexistent_dir_euler/x.bin"),
                       IoError);
  CHECK_THROWS_WITH_AS(write_file_atomically(fs::path(path).parent_path().string(), "x"), doctest::Contains("not a regular file"),
                       IoError);
  // A write that fails half-way (here: the file-size limit, as a full disk would) throws and keeps
  // the previous file.
  struct rlimit saved;
  getrlimit(RLIMIT_FSIZE, &saved);
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit tiny = saved;
  tiny.rlim_cur = 3;
  setrlimit(RLIMIT_FSIZE, &tiny);
  CHECK_THROWS_WITH_AS(write_file_atomically(path, "a much longer third version"), doctest::Contains("write failed"), IoError);
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);
  for (const auto& entry : fs::directory_iterator(fs::path(path).parent_path()))
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);  // no temporary left behind
  CHECK(read_file(path) == "second");
}

TEST_CASE("checkpoints: the authors' layout (scalars as [1], the alpha angle table) is written, and read back either way") {
  EulerFormerConfig c;
  c.n_items = 9;
  c.hidden_size = 4;
  c.inner_size = 8;
  c.max_len = 3;
  EulerFormer<float> model(c, 5);
  std::string path = temp_path("authors_layout.safetensors");
  save_weights(path, model);
  auto file = safetensors::File::read(path);
  const std::string mha = "trm_encoder.layer.1.multi_head_attention.";
  CHECK(file.info(mha + "euler.delta").shape == std::vector<int64_t>{1});
  CHECK(file.info(mha + "euler.b").shape == std::vector<int64_t>{1});
  REQUIRE(file.info(mha + "euler.alpha").shape == std::vector<int64_t>{3, 2, 2});
  Tensor<float> alpha = file.tensor<float>(mha + "euler.alpha");
  for (int j = 0; j < 3; ++j)
    for (int t = 0; t < 2; ++t)
      for (int k = 0; k < 2; ++k) CHECK(alpha.at({j, t, k}) == doctest::Approx(j * std::pow(10000.0, -2.0 * t / 4)).epsilon(1e-6));
  CHECK(load_model<float>(path).parameters().value(mha + "euler.delta")[0] == model.parameters().value(mha + "euler.delta")[0]);

  // Rewritten: scalars as [] (euler's files before), without alpha, and with one angle changed.
  auto rewrite = [&](const std::string& out, float alpha_change, bool keep_alpha) {
    safetensors::Writer w;
    w.metadata = file.metadata();
    std::vector<Tensor<float>> kept;
    kept.reserve(file.tensors().size());
    for (const auto& info : file.tensors()) {
      bool is_alpha = info.name.find(".euler.alpha") != std::string::npos;
      if (is_alpha && !keep_alpha) continue;
      kept.push_back(file.tensor<float>(info.name));
      if (info.shape == std::vector<int64_t>{1}) kept.back() = Tensor<float>::full(Shape{}, kept.back()[0]);
      if (is_alpha && info.name == mha + "euler.alpha") kept.back().at({2, 1, 0}) += alpha_change;
      w.add(info.name, kept.back().view());
    }
    w.write(temp_path(out));
    return temp_path(out);
  };
  EulerFormer<float> scalar_shapes = load_model<float>(rewrite("scalars.safetensors", 0, false));
  for (int64_t i = 0; i < model.parameters().numel(); ++i)
    REQUIRE(scalar_shapes.parameters().values()[i] == model.parameters().values()[i]);
  CHECK_NOTHROW(load_model<float>(rewrite("tiny_change.safetensors", 1e-7f, true)));
  const std::string other_angles = "tensor '" + mha + "euler.alpha' holds, at position 2, channel 1, the angle";
  CHECK_THROWS_WITH_AS(load_model<float>(rewrite("other_angles.safetensors", 0.01f, true)), doctest::Contains(other_angles.c_str()),
                       safetensors::FormatError);
  // RoPE has no alpha buffer: one in its file is an unexpected tensor.
  EulerFormerConfig rope = c;
  rope.pos = PosScheme::rope;
  EulerFormer<float> rope_model(rope, 5);
  save_weights(path, rope_model);
  CHECK_FALSE(safetensors::File::read(path).contains(mha + "euler.alpha"));
}

}  // namespace test_safetensors
