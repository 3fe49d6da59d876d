// Bad safetensors files and checkpoints, case by case: truncated at every length, a header length
// beyond the file, invalid JSON, unknown dtypes, offsets that overlap, run past the data or disagree
// with the shape, missing and unexpected tensors, configs that do not match the tensors or the model,
// damaged training state. Each is a FormatError naming the file and the problem; ASan (the sanitizer
// build) checks that none reads out of bounds. The fuzz target fuzz/safetensors.cpp covers the rest.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/eulerformer.hpp>
#include <euler/train/trainer.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <tuple>
#include <vector>

namespace test_bad_safetensors {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;
using safetensors::FormatError;

namespace {

std::string temp_path(const std::string& name) {
  return (euler_test::scratch_dir("bad_st") / name).string();
}
// 8-byte little-endian header length (`claimed`, or the real one), header, data.
std::string raw(const std::string& header, const std::string& data, int64_t claimed = -1) {
  uint64_t n = claimed < 0 ? header.size() : uint64_t(claimed);
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  return out + header + data;
}
std::string format_error(const std::function<void()>& f) { return euler_test::error_of<FormatError>(f); }
std::string parse_error(const std::string& bytes) {
  return format_error([&] { safetensors::File::parse(bytes, "bad.safetensors"); });
}

const std::string kData(16, '\1');  // room for [4] F32 or [2] F64
std::string tensor(const std::string& name, const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

EulerFormerConfig tiny_config() {
  EulerFormerConfig c;
  c.n_items = 9;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.n_layers = 1;
  c.max_len = 6;
  return c;
}
// 40 users with 8 items each out of 8: user u has u, u + 1, ... (mod 8).
Dataset tiny_data() {
  std::string text;
  for (int u = 0; u < 40; ++u) {
    text += std::to_string(u);
    for (int k = 0; k < 8; ++k) text += " " + std::to_string(1 + (u + k) % 8);
    text += "\n";
  }
  return build_dataset(parse_interactions(text, "tiny", Format::sequences));
}
// The options of a one-epoch training run of tiny_config() into temp_path(dir).
TrainOptions one_epoch_run(const std::string& dir) {
  TrainOptions t;
  t.verbose = t.progress = false;
  t.epochs = 1;
  t.batch_size = 16;
  t.out_dir = temp_path(dir);
  return t;
}
std::string tiny_checkpoint(const std::string& name) {
  EulerFormer<float> model(tiny_config(), 3);
  std::string path = temp_path(name);
  save_weights(path, model);
  return path;
}

}  // namespace

TEST_CASE("bad safetensors: truncated at every length, each a FormatError and no out-of-bounds read") {
  std::string bytes = read_file(tiny_checkpoint("whole.safetensors"));
  REQUIRE_NOTHROW(safetensors::File::parse(bytes, "whole"));
  int refused = 0, tried = 0;
  for (size_t length = 0; length < bytes.size(); length += (length < 4096 ? 1 : 61), ++tried) {
    std::string cut = bytes.substr(0, length);
    cut.shrink_to_fit();  // so ASan sees the exact end
    std::string message = parse_error(cut);
    CHECK_MESSAGE(message.rfind("bad.safetensors: ", 0) == 0, "length " << length << ": " << message);
    refused += !message.empty();
  }
  CHECK(refused == tried);
  CHECK(tried > 4000);
  CHECK_CONTAINS(parse_error(bytes.substr(0, 5)), "file too short for a safetensors header (5 bytes)");
  CHECK_CONTAINS(parse_error(bytes.substr(0, 100)), "runs past the end of the file (100 bytes)");
  CHECK_CONTAINS(parse_error(bytes.substr(0, bytes.size() - 4)), "run past the data");
}

TEST_CASE("bad safetensors: a header length beyond the file or implausibly large") {
  std::string header = "{" + tensor("w", "F32", "[4]", "[0,16]") + "}";
  CHECK_NOTHROW(safetensors::File::parse(raw(header, kData), "ok"));
  CHECK_CONTAINS(parse_error(raw(header, kData, int64_t(header.size() + 17))), "header length " + std::to_string(header.size() + 17) +
                                                                                  " runs past the end of the file");
  CHECK_CONTAINS(parse_error(raw(header, kData, int64_t(1) << 62)), "is implausibly large");
  std::string all_ones = std::string(8, '\xff') + header + kData;  // 2^64 - 1
  CHECK_CONTAINS(parse_error(all_ones), "header length 18446744073709551615 is implausibly large");
}

TEST_CASE("bad safetensors: a header that is not valid JSON, or not the expected JSON") {
  for (std::string header : {std::string("{\"w\": [1, 2"), std::string("{\"w\"}"), std::string("\x01\x02\x03\x04"),
                             std::string("{} trailing"), std::string("{\"a\":1e99999}"), std::string(8, ' ')}) {
    CAPTURE(header);
    CHECK_CONTAINS(parse_error(raw(header, "")), "header is not valid JSON");
  }
  CHECK_CONTAINS(parse_error(raw("[1, 2]", "")), "header is not a JSON object");
  CHECK_CONTAINS(parse_error(raw("{\"w\": 3}", kData)), "tensor 'w': entry is not an object");
  CHECK_CONTAINS(parse_error(raw("{\"w\": {\"dtype\": \"F32\", \"shape\": [4]}}", kData)), "tensor 'w': missing 'data_offsets'");
  CHECK_CONTAINS(parse_error(raw("{\"w\":{\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,16]}}", kData)), "shape is not an array");
  CHECK_CONTAINS(parse_error(raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[4.5],\"data_offsets\":[0,16]}}", kData)),
                 "shape entry 4.5 is not a non-negative integer");
  CHECK_CONTAINS(parse_error(raw("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", kData)),
                 "rank 9 is too large");
  CHECK_CONTAINS(parse_error(raw("{\"__metadata__\": [1]}", "")), "__metadata__ is not an object of strings");
  CHECK_CONTAINS(parse_error(raw("{\"__metadata__\": {\"config\": {\"n_items\": 3}}}", "")),
                 "__metadata__ value for 'config' is not a string");
}

TEST_CASE("bad safetensors: a header nested too deep or with too many values is refused before it takes memory") {
  // 10 MB of '[' once took 900 MB to refuse; now the parse stops at the seventh level.
  std::string nested(10 << 20, '[');
  CHECK_CONTAINS(parse_error(raw(nested, "")), "header nests deeper than 6 levels (a safetensors header nests 3)");
  CHECK_CONTAINS(parse_error(raw("{\"w\": {\"a\": [[[[[1]]]]]}}", "")), "header nests deeper than 6 levels");
  // A flat array of two million numbers (a shape no tensor has).
  std::string wide = "{\"w\":{\"dtype\":\"F32\",\"shape\":[";
  for (int i = 0; i < 2000000; ++i) wide += "1,";
  wide += "1],\"data_offsets\":[0,4]}}";
  CHECK_CONTAINS(parse_error(raw(wide, kData)), "header holds more than 65536 JSON values");
  // A real header is far inside both bounds, and long metadata strings are single values.
  std::map<std::string, std::string> metadata;
  std::vector<std::string> tokens(200000, "1234567");
  put_item_tokens(metadata, tokens);
  EulerFormer<float> model(tiny_config(), 3);
  std::string path = temp_path("long_metadata.safetensors");
  save_weights(path, model, metadata);
  CHECK(get_item_tokens(safetensors::File::read(path), path).size() == tokens.size());
}

TEST_CASE("bad safetensors: item ids that are not UTF-8 (a Latin-1 csv) are stored and read back byte for byte") {
  std::map<std::string, std::string> metadata;
  std::vector<std::string> tokens = {"", "caf\xe9", "plain", std::string("\xff\0x", 3)};
  put_item_tokens(metadata, tokens);
  CHECK(metadata.count("item_tokens") == 0);
  CHECK(metadata.at("item_tokens_hex") == R"(["","636166e9","706c61696e","ff0078"])");
  EulerFormer<float> model(tiny_config(), 3);
  std::string path = temp_path("latin1_tokens.safetensors");
  save_weights(path, model, metadata);
  CHECK(get_item_tokens(safetensors::File::read(path), path) == tokens);
  // Damaged hex is a FormatError naming the key.
  std::string bytes = read_file(path);
  size_t at = bytes.find("636166e9");
  REQUIRE(at != std::string::npos);
  bytes.replace(at, 8, "63616zz9");
  CHECK_THROWS_WITH_AS(get_item_tokens(safetensors::File::parse(bytes, "damaged"), "damaged"),
                       doctest::Contains("damaged: metadata 'item_tokens_hex' holds '63616zz9', which is not hex bytes"),
                       safetensors::FormatError);
}

TEST_CASE("bad safetensors: an unknown dtype") {
  for (std::string dtype : {"F16", "BF16", "BOOL", "U8", "f32", ""}) {
    CAPTURE(dtype);
    CHECK_CONTAINS(parse_error(raw("{" + tensor("w", dtype, "[4]", "[0,16]") + "}", kData)),
                   "tensor 'w': unsupported dtype '" + dtype + "' (euler reads F32, F64, I32, I64)");
  }
  CHECK_CONTAINS(parse_error(raw("{\"w\":{\"dtype\":4,\"shape\":[4],\"data_offsets\":[0,16]}}", kData)), "dtype is not a string");
}

TEST_CASE("bad safetensors: offsets that overlap, leave holes, run past the data or disagree with the shape") {
  auto file = [&](const std::string& tensors) { return parse_error(raw("{" + tensors + "}", kData)); };
  CHECK_CONTAINS(file(tensor("a", "F32", "[4]", "[0,16]") + "," + tensor("b", "F32", "[2]", "[8,16]")),
                 "tensor 'b' overlaps the tensor before it in the data");
  CHECK_CONTAINS(file(tensor("a", "F32", "[2]", "[0,8]") + "," + tensor("b", "F32", "[2]", "[0,8]")), "overlaps");
  CHECK_CONTAINS(file(tensor("a", "F32", "[2]", "[8,16]")), "hole in the data before tensor 'a'");
  CHECK_CONTAINS(file(tensor("a", "F32", "[2]", "[0,8]")), "data section has 8 trailing bytes no tensor covers");
  CHECK_CONTAINS(file(tensor("a", "F32", "[8]", "[0,32]")), "tensor 'a': data_offsets [0, 32] run past the data (16 bytes)");
  CHECK_CONTAINS(file(tensor("a", "F32", "[1]", "[18446744073709551612,18446744073709551616]")), "data_offsets must be [begin, end]");
  CHECK_CONTAINS(file(tensor("a", "F32", "[1]", "[18446744073709551611,18446744073709551615]")), "run past the data");
  CHECK_CONTAINS(file(tensor("a", "F32", "[3]", "[0,16]")), "tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets cover 16");
  CHECK_CONTAINS(file(tensor("a", "F64", "[4]", "[0,16]")), "shape [4] of F64 needs 32 bytes but data_offsets cover 16");
  CHECK_CONTAINS(file(tensor("a", "F32", "[4]", "[16,0]")), "data_offsets begin > end");
  CHECK_CONTAINS(file(tensor("a", "F32", "[4]", "[0,-16]")), "data_offsets must be [begin, end] with non-negative integers");
  CHECK_CONTAINS(file(tensor("a", "F32", "[4294967296,4294967296,4294967296]", "[0,16]")), "is too large");
  CHECK_CONTAINS(file(tensor("a", "F32", "[0,4611686018427387904]", "[0,16]")), "is too large");
}

TEST_CASE("bad safetensors: missing and unexpected tensors, for the model and for a resumed run") {
  EulerFormer<float> model(tiny_config(), 3);
  const Parameters<float>& p = model.parameters();
  auto write_without = [&](const std::string& name, const std::string& skip, const std::string& extra) {
    safetensors::Writer w = weights_writer(model);
    safetensors::Writer out;
    out.metadata = w.metadata;
    for (int i = 0; i < p.count(); ++i)
      if (p.entry(i).name != skip) out.add(p.entry(i).name, TensorView<const float>{p.value(i).shape, p.value(i).data});
    Tensor<float> one = Tensor<float>::zeros({1});
    if (!extra.empty()) out.add(extra, one.view());
    std::string path = temp_path(name);
    out.write(path);
    return path;
  };
  std::string missing = write_without("missing.safetensors", "trm_encoder.layer.0.feed_forward.dense_1.weight", "");
  CHECK_CONTAINS(format_error([&] { load_model<float>(missing); }),
                 missing + ": missing tensors for this model: trm_encoder.layer.0.feed_forward.dense_1.weight");
  std::string unexpected = write_without("unexpected.safetensors", "", "decoder.bias");
  CHECK_CONTAINS(format_error([&] { load_model<float>(unexpected); }), unexpected + ": tensors this model does not have: decoder.bias");

  // A weights-only file is not a training checkpoint.
  Dataset data = tiny_data();
  EulerFormerConfig c = tiny_config();
  TrainOptions t;
  t.verbose = t.progress = false;
  Trainer<float> trainer(c, t, data);
  std::string weights = temp_path("weights_only.safetensors");
  save_weights(weights, trainer.model());
  CHECK_CONTAINS(format_error([&] { trainer.resume(weights); }), weights + ": not a training checkpoint (no 'train_state' metadata)");
}

TEST_CASE("bad safetensors: a config that does not match the tensors, the model or anything") {
  EulerFormer<float> model(tiny_config(), 3);
  auto with_config = [&](const std::string& name, const std::string& config) {
    safetensors::Writer w = weights_writer(model);
    w.metadata["config"] = config;
    std::string path = temp_path(name);
    w.write(path);
    return path;
  };
  nlohmann::json good = tiny_config().to_json();
  nlohmann::json fewer = good;
  fewer["n_items"] = 8;
  std::string path = with_config("fewer.safetensors", fewer.dump());
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "'item_embedding.weight' has shape [9, 8], expected [8, 8]");
  nlohmann::json wider = good;
  wider["hidden_size"] = 16;
  path = with_config("wider.safetensors", wider.dump());
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "'item_embedding.weight' has shape [9, 8], expected [9, 16]");
  nlohmann::json huge = good;
  huge["hidden_size"] = 60000;
  huge["n_heads"] = 2;
  path = with_config("huge.safetensors", huge.dump());
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "the config does not match the tensors");
  nlohmann::json deep = good;
  deep["n_layers"] = 1000;
  path = with_config("deep.safetensors", deep.dump());
  std::string message = format_error([&] { load_model<float>(path); });
  CHECK_CONTAINS(message, "missing tensors for this model: trm_encoder.layer.1.multi_head_attention.query.weight, ");
  CHECK_CONTAINS(message, " and 18973 more");
  CHECK(message.size() < 800);
  deep["hidden_size"] = 64;
  path = with_config("deeper.safetensors", deep.dump());
  // 766 parameters and each layer's alpha table (the authors' layout, model/weights.hpp).
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "its config describes a model of at least 18433152 parameters, but the file holds 814 values");
  path = with_config("notjson.safetensors", "{\"n_items\": 9,");
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), path + ": metadata 'config' is not valid JSON");
  path = with_config("unknown.safetensors", "{\"n_items\": 9, \"colour\": \"red\"}");
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), path + ": metadata config: unknown key 'colour'");
  path = with_config("range.safetensors", "{\"n_items\": 9, \"n_layers\": 10000000000}");
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "config: key 'n_layers' is out of range, got 10000000000");
  path = with_config("heads.safetensors", "{\"n_items\": 9, \"hidden_size\": 8, \"n_heads\": 16}");
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "n_heads 16 is more than hidden_size 8");
  path = with_config("items.safetensors", "{\"n_items\": 1}");
  CHECK_CONTAINS(format_error([&] { load_model<float>(path); }), "n_items must be >= 2");
}

TEST_CASE("bad safetensors: a damaged training state is refused before the run changes") {
  Dataset data = tiny_data();
  TrainOptions t = one_epoch_run("run");
  Trainer<float>(tiny_config(), t, data).run();
  std::string checkpoint = t.out_dir + "/checkpoint.safetensors";
  safetensors::File good = safetensors::File::read(checkpoint);
  auto rewrite = [&](const std::string& name, const std::string& key, const std::string& value, const std::string& drop = "") {
    safetensors::Writer w;
    w.metadata = good.metadata();
    if (!key.empty()) w.metadata[key] = value;
    std::vector<Tensor<float>> keep;
    for (const auto& info : good.tensors()) {
      if (info.name == drop) continue;
      keep.push_back(good.tensor<float>(info.name));
      w.add(info.name, keep.back().view());
    }
    std::string path = temp_path(name);
    w.write(path);
    return path;
  };
  Trainer<float> fresh(tiny_config(), t, data);
  for (auto [name, key, value, expect] : std::initializer_list<std::array<std::string, 4>>{
           {"state1", "train_state", "{\"epoch\": 1", "damaged training state in the metadata"},
           {"state2", "train_state", "{\"epoch\": \"one\"}", "damaged training state in the metadata"},
           {"state3", "train_state", "{\"epoch\": -3, \"best_metric\": 0, \"best_epoch\": 0, \"bad_epochs\": 0, \"rng_seed\": 1, \"rng_counter\": 2}",
            "damaged training state in the metadata"},
           {"steps", "adam_steps", "many", "damaged training state in the metadata: adam_steps 'many'"},
           {"negative", "adam_steps", "-1", "damaged training state in the metadata: adam_steps '-1'"}}) {
    CAPTURE(name);
    std::string path = rewrite(name + ".safetensors", key, value);
    CHECK_CONTAINS(format_error([&] { fresh.resume(path); }), path + ": " + expect);
    CHECK(fresh.state().epoch == 0);
  }
  std::string no_moments = rewrite("moments.safetensors", "", "", "optimizer.moment2");
  CHECK_CONTAINS(format_error([&] { fresh.resume(no_moments); }), no_moments + ": no tensor named 'optimizer.moment2'");
  std::string no_best = rewrite("best.safetensors", "", "", "best.values");
  CHECK_CONTAINS(format_error([&] { fresh.resume(no_best); }), "no tensor named 'best.values'");
  CHECK(fresh.state().epoch == 0);
  // The original still resumes.
  fresh.resume(checkpoint);
  CHECK(fresh.state().epoch == 1);
}

namespace {
// The tiny model's weights, with `replace` written in place of the tensor `name` (any dtype).
template <class S>
std::string with_tensor(const std::string& file, const std::string& name, const Tensor<S>& replace) {
  EulerFormer<float> model(tiny_config(), 3);
  const Parameters<float>& p = model.parameters();
  safetensors::Writer w;
  w.metadata = weights_writer(model).metadata;
  for (int i = 0; i < p.count(); ++i) {
    if (p.entry(i).name == name) w.add(name, TensorView<const S>{replace.shape(), replace.data()});
    else w.add(p.entry(i).name, TensorView<const float>{p.value(i).shape, p.value(i).data});
  }
  std::string path = temp_path(file);
  w.write(path);
  return path;
}
template <class S>
Tensor<S> item_table(S value_at_26) {  // [9, 8], element 26 = row 3, column 2
  Tensor<S> t = Tensor<S>::zeros({9, 8});
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = S(i % 7) / S(8);
  t[26] = value_at_26;
  return t;
}
}  // namespace

TEST_CASE("bad safetensors: NaN, inf, an F64 number beyond float and integer data in a parameter are refused") {
  const std::string table = "item_embedding.weight";
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (auto [file, value, shown] : {std::tuple{"nan.safetensors", nan, "nan"}, std::tuple{"inf.safetensors", inf, "inf"},
                                    std::tuple{"minus_inf.safetensors", -inf, "-inf"}}) {
    CAPTURE(file);
    std::string path = with_tensor(file, table, item_table<float>(value));
    std::string expected = path + ": tensor 'item_embedding.weight' (shape [9, 8]) holds a non-finite number, first at element 26 (" + shown + ")";
    CHECK(format_error([&] { load_model<float>(path); }) == expected);
    CHECK(format_error([&] { load_model<double>(path); }) == expected);
  }
  // F64 data is read as float when it fits; 1e300 does not (it would become inf).
  std::string big = with_tensor("big.safetensors", table, item_table<double>(1e300));
  CHECK(format_error([&] { load_model<float>(big); }) ==
        big + ": tensor 'item_embedding.weight' (F64, shape [9, 8]) holds a number beyond the range of float, first at element 26 (1e+300)");
  CHECK(load_model<double>(big).parameters().value(table)[26] == 1e300);  // a double model holds it
  std::string nan64 = with_tensor("nan64.safetensors", table, item_table<double>(std::nan("")));
  CHECK_CONTAINS(format_error([&] { load_model<float>(nan64); }), "holds a non-finite number, first at element 26 (nan)");
  // Integers where a float parameter is expected.
  std::string ints = with_tensor("ints.safetensors", table, item_table<int32_t>(5));
  CHECK(format_error([&] { load_model<float>(ints); }) ==
        ints + ": tensor 'item_embedding.weight' holds I32 integers, but floating-point numbers (F32 or F64) are expected");
  std::string longs = with_tensor("longs.safetensors", "LayerNorm.bias", Tensor<int64_t>::zeros({8}));
  CHECK_CONTAINS(format_error([&] { load_model<double>(longs); }), "tensor 'LayerNorm.bias' holds I64 integers");
  // Good files still load: F32 as written, and F64 numbers within float's range.
  std::string good = with_tensor("good.safetensors", table, item_table<float>(0.5f));
  CHECK(load_model<float>(good).parameters().value(table)[26] == 0.5f);
  std::string good64 = with_tensor("good64.safetensors", table, item_table<double>(-3e38));
  CHECK(load_model<float>(good64).parameters().value(table)[26] == -3e38f);
}

TEST_CASE("bad safetensors: a training checkpoint with NaN or inf in the weights, Adam moments or best weights does not resume") {
  Dataset data = tiny_data();
  TrainOptions t = one_epoch_run("nonfinite_run");
  Trainer<float>(tiny_config(), t, data).run();
  std::string checkpoint = t.out_dir + "/checkpoint.safetensors";
  safetensors::File good = safetensors::File::read(checkpoint);
  auto with_bad_value = [&](const std::string& name, const std::string& tensor_name, float value) {
    safetensors::Writer w;
    w.metadata = good.metadata();
    for (const auto& info : good.tensors()) {
      Tensor<float> values = good.tensor<float>(info.name);
      if (info.name == tensor_name) values[5] = value;
      w.add(info.name, values.view());
    }
    std::string path = temp_path(name);
    w.write(path);
    return path;
  };
  Trainer<float> fresh(tiny_config(), t, data);
  const int64_t numel = fresh.model().parameters().numel();
  TensorView<float> values = fresh.model().parameters().values();
  std::vector<float> before(values.data, values.data + numel);
  for (auto [name, tensor_name, value, shape] :
       {std::tuple{"moment1.safetensors", "optimizer.moment1", std::numeric_limits<float>::quiet_NaN(), "[" + std::to_string(numel) + "]"},
        std::tuple{"moment2.safetensors", "optimizer.moment2", std::numeric_limits<float>::infinity(), "[" + std::to_string(numel) + "]"},
        std::tuple{"best_values.safetensors", "best.values", std::numeric_limits<float>::quiet_NaN(), "[" + std::to_string(numel) + "]"},
        std::tuple{"weight.safetensors", "LayerNorm.weight", std::numeric_limits<float>::infinity(), std::string("[8]")}}) {
    CAPTURE(name);
    std::string path = with_bad_value(name, tensor_name, value);
    CHECK(format_error([&] { fresh.resume(path); }) ==
          path + ": tensor '" + tensor_name + "' (shape " + shape + ") holds a non-finite number, first at element 5 (" +
              (std::isnan(value) ? "nan" : "inf") + ")");
    CHECK(fresh.state().epoch == 0);
    CHECK_MESSAGE(std::equal(before.begin(), before.end(), values.data), "a refused checkpoint changed the model's parameters");
  }
  fresh.resume(checkpoint);
  CHECK(fresh.state().epoch == 1);
}

}  // namespace test_bad_safetensors
