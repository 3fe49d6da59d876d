// euler/io/safetensors.hpp: read and write the safetensors format (the Python safetensors package's).
//
// Layout: 8 bytes little-endian u64 = header size H; H bytes of JSON
//     {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//      "__metadata__": {"key": "string value", ...}}
// padded with spaces to a multiple of 8; then the raw little-endian data, offsets relative to its start.
// The reader checks everything before touching data (header length within the file, valid JSON, known
// dtypes, shapes that agree with the byte ranges, ranges inside the data, no overlaps, no holes), so a
// bad file gives a FormatError naming the file and the problem, never an out-of-bounds read.
// JSON goes through nlohmann::json.
//
//     euler::safetensors::Writer w;
//     w.add("weight", tensor.view());                 // Tensor<float> -> F32, Tensor<double> -> F64
//     w.metadata["config"] = cfg.to_json().dump();
//     w.write("model.safetensors");                   // atomic: temp file, fsync, rename
//     auto f = euler::safetensors::File::read("model.safetensors");
//     f.copy_to("weight", tensor.view());             // shape-checked, F32 <-> F64 converted (never to inf)
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "euler/core/tensor.hpp"
#include "euler/io/atomic_file.hpp"

namespace euler::safetensors {

static_assert(std::endian::native == std::endian::little, "euler's safetensors I/O assumes a little-endian host");

// A file is not valid safetensors, or does not hold what was asked; names the file and the problem.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType { F32, F64, I32, I64 };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "F32";
    case DType::F64: return "F64";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}
inline size_t dtype_size(DType d) { return d == DType::F32 || d == DType::I32 ? 4 : 8; }
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::F32;
  else if constexpr (std::is_same_v<T, double>) return DType::F64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::I32;
  else return DType::I64;
}

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t e : shape) n *= e;
    return n;
  }
  std::string shape_str() const {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
  }
};

inline constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the Python package
// The header parse holds at most this many JSON values and keys, nested at most this deep: a real
// header nests 3 deep (tensor -> "shape" -> entry) and holds about 12 values per tensor, while 10 MB
// of "[[[[..." would otherwise take ~900 MB to parse. With these bounds the parse needs about the
// header's size plus 2 MB.
inline constexpr int kMaxHeaderDepth = 6;
inline constexpr size_t kMaxHeaderValues = 1u << 16;

class File {
 public:
  // Read and validate a whole file.
  static File read(const std::string& path) { return parse(read_file(path), path); }

  // Validate bytes already in memory; `name` is used in messages.
  static File parse(std::string bytes, const std::string& name) {
    File f;
    f.name_ = name;
    f.bytes_ = std::move(bytes);
    const nlohmann::json header = f.read_header();
    if (!header.is_object()) f.fail("header is not a JSON object");
    for (auto& [key, value] : header.items()) {
      if (key == "__metadata__") f.read_metadata(value);
      else f.tensors_.push_back(f.tensor_entry(key, value));
    }
    f.check_tiling();
    return f;
  }

  const std::string& name() const { return name_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  bool contains(const std::string& tensor) const { return find(tensor) != nullptr; }
  const TensorInfo& info(const std::string& tensor) const {
    const TensorInfo* t = find(tensor);
    if (!t) throw FormatError(name_ + ": no tensor named '" + tensor + "'");
    return *t;
  }

  // Copy a tensor into `out`, whose shape must match. F32 and F64 convert to either float type, I32
  // and I64 to either integer type; a conversion that would change the numbers is a FormatError
  // naming the tensor: integers read as floats (or floats as integers), or an F64 number beyond
  // float's range read as float (it would become inf). NaN and inf are copied as they are.
  template <class T>
  void copy_to(const std::string& tensor, TensorView<T> out) const {
    const TensorInfo& t = info(tensor);
    bool same_shape = int(t.shape.size()) == out.shape.rank;
    for (int i = 0; same_shape && i < out.shape.rank; ++i) same_shape = t.shape[size_t(i)] == out.shape[i];
    if (!same_shape)
      throw FormatError(name_ + ": tensor '" + tensor + "' has shape " + t.shape_str() + ", expected " + out.shape.str());
    const bool float_data = t.dtype == DType::F32 || t.dtype == DType::F64;
    if (float_data != std::is_floating_point_v<T>)
      throw FormatError(name_ + ": tensor '" + tensor + "' holds " + dtype_name(t.dtype) +
                        (float_data ? " floating-point numbers, but integers (I32 or I64) are expected"
                                    : " integers, but floating-point numbers (F32 or F64) are expected"));
    const char* src = bytes_.data() + data_offset_ + t.begin;
    int64_t n = t.numel();
    auto convert = [&](auto tag) {
      using S = decltype(tag);
      for (int64_t i = 0; i < n; ++i) {
        S v;
        std::memcpy(&v, src + size_t(i) * sizeof(S), sizeof(S));
        out[i] = T(v);
        if constexpr (std::is_same_v<S, double> && std::is_same_v<T, float>) {
          if (std::isinf(out[i]) && std::isfinite(v)) {
            char text[32];
            std::snprintf(text, sizeof text, "%g", v);
            throw FormatError(name_ + ": tensor '" + tensor + "' (F64, shape " + t.shape_str() +
                              ") holds a number beyond the range of float, first at element " + std::to_string(i) + " (" + text + ")");
          }
        }
      }
    };
    switch (t.dtype) {
      case DType::F32: convert(float{}); break;
      case DType::F64: convert(double{}); break;
      case DType::I32: convert(int32_t{}); break;
      case DType::I64: convert(int64_t{}); break;
    }
  }
  template <class T = float>
  Tensor<T> tensor(const std::string& name) const {
    const TensorInfo& t = info(name);
    if (t.shape.size() > size_t(kMaxRank)) throw FormatError(name_ + ": tensor '" + name + "' has rank > 4");
    Shape s = Shape::of_rank(int(t.shape.size()));
    for (size_t i = 0; i < t.shape.size(); ++i) s[int(i)] = t.shape[i];
    Tensor<T> out(s);
    copy_to(name, out.view());
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(name_ + ": " + what); }
  uint64_t data_size() const { return bytes_.size() - data_offset_; }

  // The 8-byte length and the JSON header after it, parsed within kMaxHeaderDepth and kMaxHeaderValues;
  // sets data_offset_.
  nlohmann::json read_header() {
    if (bytes_.size() < 8) fail("file too short for a safetensors header (" + std::to_string(bytes_.size()) + " bytes)");
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes_.data(), 8);
    if (header_size > kMaxHeaderBytes) fail("header length " + std::to_string(header_size) + " is implausibly large");
    if (header_size > bytes_.size() - 8)
      fail("header length " + std::to_string(header_size) + " runs past the end of the file (" + std::to_string(bytes_.size()) +
           " bytes)");
    data_offset_ = 8 + header_size;
    size_t values = 0;
    auto bounded = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
      using Event = nlohmann::json::parse_event_t;
      if ((event == Event::object_start || event == Event::array_start) && depth >= kMaxHeaderDepth)
        fail("header nests deeper than " + std::to_string(kMaxHeaderDepth) + " levels (a safetensors header nests 3)");
      if ((event == Event::value || event == Event::key) && ++values > kMaxHeaderValues)
        fail("header holds more than " + std::to_string(kMaxHeaderValues) + " JSON values (about 12 per tensor)");
      return true;
    };
    try {
      return nlohmann::json::parse(bytes_.begin() + 8, bytes_.begin() + std::ptrdiff_t(data_offset_), bounded);
    } catch (const nlohmann::json::exception& e) {
      fail(std::string("header is not valid JSON: ") + e.what());
    }
  }

  void read_metadata(const nlohmann::json& value) {
    if (!value.is_object()) fail("__metadata__ is not an object of strings");
    for (auto& [mk, mv] : value.items()) {
      if (!mv.is_string()) fail("__metadata__ value for '" + mk + "' is not a string");
      metadata_[mk] = mv.get<std::string>();
    }
  }

  // One tensor's entry: dtype, shape and data_offsets, checked against each other and the data's size.
  TensorInfo tensor_entry(const std::string& key, const nlohmann::json& value) const {
    std::string where = "tensor '" + key + "': ";
    if (!value.is_object()) fail(where + "entry is not an object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!value.contains(field)) fail(where + "missing '" + field + "'");
    TensorInfo info;
    info.name = key;
    if (!value["dtype"].is_string()) fail(where + "dtype is not a string");
    std::string dtype = value["dtype"].get<std::string>();
    if (dtype == "F32") info.dtype = DType::F32;
    else if (dtype == "F64") info.dtype = DType::F64;
    else if (dtype == "I32") info.dtype = DType::I32;
    else if (dtype == "I64") info.dtype = DType::I64;
    else fail(where + "unsupported dtype '" + dtype + "' (euler reads F32, F64, I32, I64)");
    const auto& shape = value["shape"];
    if (!shape.is_array()) fail(where + "shape is not an array");
    if (shape.size() > 8) fail(where + "rank " + std::to_string(shape.size()) + " is too large");
    int64_t numel = 1;
    for (const auto& e : shape) {
      if (!e.is_number_unsigned()) fail(where + "shape entry " + e.dump() + " is not a non-negative integer");
      uint64_t extent = e.get<uint64_t>();
      if (extent > (uint64_t(1) << 40) || (numel > 0 && extent > uint64_t(INT64_MAX / 8) / uint64_t(numel)))
        fail(where + "shape " + shape.dump() + " is too large");
      numel *= int64_t(extent);
      info.shape.push_back(int64_t(extent));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      fail(where + "data_offsets must be [begin, end] with non-negative integers");
    info.begin = offsets[0].get<uint64_t>();
    info.end = offsets[1].get<uint64_t>();
    if (info.begin > info.end) fail(where + "data_offsets begin > end");
    if (info.end > data_size())
      fail(where + "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) + "] run past the data (" +
           std::to_string(data_size()) + " bytes)");
    if (info.end - info.begin != uint64_t(numel) * dtype_size(info.dtype))
      fail(where + "shape " + info.shape_str() + " of " + dtype + " needs " + std::to_string(uint64_t(numel) * dtype_size(info.dtype)) +
           " bytes but data_offsets cover " + std::to_string(info.end - info.begin));
    return info;
  }

  // The byte ranges must tile the data section: sorted, no overlap, no hole.
  void check_tiling() const {
    std::vector<const TensorInfo*> by_offset;
    for (const auto& t : tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](auto* a, auto* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
    uint64_t expected = 0;
    for (const TensorInfo* t : by_offset) {
      if (t->begin < expected) fail("tensor '" + t->name + "' overlaps the tensor before it in the data");
      if (t->begin > expected) fail("hole in the data before tensor '" + t->name + "'");
      expected = t->end;
    }
    if (expected != data_size()) fail("data section has " + std::to_string(data_size() - expected) + " trailing bytes no tensor covers");
  }

  const TensorInfo* find(const std::string& tensor) const {
    for (const auto& t : tensors_)
      if (t.name == tensor) return &t;
    return nullptr;
  }
  std::string name_, bytes_;
  uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<TensorInfo> tensors_;
};

class Writer {
 public:
  std::map<std::string, std::string> metadata;

  template <class T>
  void add(const std::string& name, TensorView<const T> v) {
    if (name == "__metadata__" || names_.count(name)) throw FormatError("safetensors writer: duplicate or reserved name '" + name + "'");
    names_[name] = entries_.size();
    Entry e{name, dtype_of<T>(), {}, std::string(reinterpret_cast<const char*>(v.data), size_t(v.numel()) * sizeof(T))};
    for (int i = 0; i < v.shape.rank; ++i) e.shape.push_back(v.shape[i]);
    entries_.push_back(std::move(e));
  }
  template <class T>
  void add(const std::string& name, TensorView<T> v) {
    add(name, TensorView<const T>{v.shape, v.data});
  }

  std::string bytes() const {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const Entry& e : entries_) {
      header[e.name] = {{"dtype", dtype_name(e.dtype)}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.data.size()}}};
      offset += e.data.size();
    }
    // Bytes that are not UTF-8 in a metadata string (a Latin-1 file name) become U+FFFD rather than an
    // exception; put_item_tokens (model/weights.hpp) keeps such ids byte for byte.
    std::string json = header.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    json.append((8 - json.size() % 8) % 8, ' ');
    uint64_t size = json.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &size, 8);
    out += json;
    for (const Entry& e : entries_) out += e.data;
    return out;
  }
  void write(const std::string& path) const { write_file_atomically(path, bytes()); }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::string data;
  };
  std::vector<Entry> entries_;
  std::map<std::string, size_t> names_;
};

}  // namespace euler::safetensors
