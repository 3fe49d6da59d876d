// euler/model/weights.hpp: EulerFormer weights in safetensors, named as the authors' PyTorch modules.
//
// A checkpoint holds one tensor per parameter (item_embedding.weight, trm_encoder.layer.0...., see
// docs/model.md) and the configuration as JSON under the metadata key "config", so a file alone
// rebuilds its model. Loading checks that the file has exactly the model's parameters with the
// model's shapes: a missing, unexpected or misshapen tensor is a FormatError naming it. So is a
// parameter that holds a NaN or an infinity (one would make every score and loss NaN), integers, or
// F64 numbers beyond the range of the model's float type: the message names the first bad element.
//
//     euler::save_weights("model.safetensors", model);
//     euler::EulerFormer<float> again = euler::load_model<float>("model.safetensors");
#pragma once

#include <charconv>
#include <cstdio>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "euler/check/finite.hpp"
#include "euler/io/safetensors.hpp"
#include "euler/model/model.hpp"
#include "euler/version.hpp"

namespace euler {

// The layout of euler's checkpoints, written as the metadata key "format_version". It changes only
// when a file of the old layout would be misread by a new reader; read_config refuses a file from a
// later version and reads one without the key (written before it existed) as version 1.
inline constexpr int checkpoint_format_version = 1;

// The authors' layout, so that a file moves 1:1 into their PyTorch model (strict load_state_dict)
// and back: a scalar parameter (delta, b with delta_shape scalar) is stored with shape [1], as
// nn.Parameter(torch.ones(1)) is; each EulerFormer layer carries the authors' fixed angle table
// `...multi_head_attention.euler.alpha`, [N, d/2, 2] with the angle j g_t twice. Reading accepts [1]
// or [] for a scalar, and an alpha only when it holds euler's angles (a model whose rotation differs
// is refused, not silently rotated by other angles).
template <class T>
bool has_alpha_buffer(const EulerFormer<T>& model) {
  const EulerFormerConfig& c = model.config();
  return c.uses_euler() && c.differential_rotation && !c.learnable_freq;
}
inline std::string alpha_buffer_name(int layer) {
  return "trm_encoder.layer." + std::to_string(layer) + ".multi_head_attention.euler.alpha";
}

template <class T>
safetensors::Writer weights_writer(const EulerFormer<T>& model, const std::map<std::string, std::string>& extra = {}) {
  safetensors::Writer writer;
  writer.metadata = extra;
  writer.metadata["format"] = "pt";
  writer.metadata["format_version"] = std::to_string(checkpoint_format_version);
  writer.metadata["config"] = model.config().to_json().dump();
  const Parameters<T>& p = model.parameters();
  for (int i = 0; i < p.count(); ++i) {
    Shape shape = p.value(i).shape.rank == 0 ? Shape{1} : p.value(i).shape;  // the authors' scalars
    writer.add(p.entry(i).name, TensorView<const T>{shape, p.value(i).data});
  }
  if (has_alpha_buffer(model)) {
    const Tensor<T>& angles = model.positional_angles();  // [N, d/2]
    Tensor<T> alpha(Shape{angles.shape()[0], angles.shape()[1], 2});
    for (int64_t i = 0; i < angles.numel(); ++i) alpha[2 * i] = alpha[2 * i + 1] = angles[i];
    for (int l = 0; l < model.config().n_layers; ++l) writer.add(alpha_buffer_name(l), alpha.view());
  }
  return writer;
}

template <class T>
void save_weights(const std::string& path, const EulerFormer<T>& model, const std::map<std::string, std::string>& extra = {}) {
  weights_writer(model, extra).write(path);
}

// A checkpoint's item ids (the data file's raw tokens, [0] = "" for padding) in its metadata:
// "item_tokens", a JSON list of strings; when an id is not UTF-8 (a Latin-1 csv, which JSON cannot
// hold), "item_tokens_hex" instead, the same list with each id's bytes in hex, so every id comes back
// byte for byte.
inline void put_item_tokens(std::map<std::string, std::string>& metadata, const std::vector<std::string>& tokens) {
  try {
    metadata["item_tokens"] = nlohmann::json(tokens).dump();
    return;
  } catch (const nlohmann::json::type_error&) {  // 316: not UTF-8
  }
  metadata.erase("item_tokens");
  static constexpr char hex[] = "0123456789abcdef";
  nlohmann::json list = nlohmann::json::array();
  for (const std::string& token : tokens) {
    std::string digits;
    for (unsigned char c : token) digits += hex[c >> 4], digits += hex[c & 15];
    list.push_back(digits);
  }
  metadata["item_tokens_hex"] = list.dump();
}

// The item ids put_item_tokens stored in `file` (read from `path`), or {} when it has none.
inline std::vector<std::string> get_item_tokens(const safetensors::File& file, const std::string& path) {
  const auto& metadata = file.metadata();
  bool in_hex = !metadata.count("item_tokens") && metadata.count("item_tokens_hex");
  auto it = metadata.find(in_hex ? "item_tokens_hex" : "item_tokens");
  if (it == metadata.end()) return {};
  std::vector<std::string> tokens;
  try {
    tokens = nlohmann::json::parse(it->second).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw safetensors::FormatError(path + ": metadata '" + it->first + "' is not a JSON list of strings: " + e.what());
  }
  if (in_hex)
    for (std::string& token : tokens) {
      std::string bytes;
      bool valid = token.size() % 2 == 0;
      for (size_t i = 0; valid && i < token.size(); i += 2) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(token.data() + i, token.data() + i + 2, value, 16);
        valid = ec == std::errc() && end == token.data() + i + 2;
        bytes += char(value);
      }
      if (!valid)
        throw safetensors::FormatError(path + ": metadata 'item_tokens_hex' holds '" + token.substr(0, 48) + "', which is not hex bytes");
      token = std::move(bytes);
    }
  return tokens;
}

// Parameters a model of this config has at the least: the item table, every layer's four attention
// projections and two feed-forward matrices, the learned position tables (weights only, no biases).
inline uint64_t minimum_parameter_count(const EulerFormerConfig& c) {
  uint64_t D = uint64_t(c.hidden_size), layers = uint64_t(c.n_layers), inner = uint64_t(c.inner_size);
  uint64_t count = uint64_t(c.item_rows()) * D + layers * (4 * D * D + 2 * D * inner);
  if (c.has_position_table()) count += uint64_t(c.max_len) * D;
  if (c.pos == PosScheme::euler && c.input_rotary) count += uint64_t(c.max_len) * (D / 2);
  return count;
}

// The configuration stored in a checkpoint's metadata. Checked against the file before any model is
// built from it, so a damaged config (say hidden_size 60000 in a 1 MB file) is a FormatError, not an
// attempt to allocate terabytes: the model it describes may be at most about twice the file's size.
inline EulerFormerConfig read_config(const safetensors::File& file) {
  if (auto v = file.metadata().find("format_version"); v != file.metadata().end()) {
    int version = 0;
    auto [end, error] = std::from_chars(v->second.data(), v->second.data() + v->second.size(), version);
    if (error != std::errc() || end != v->second.data() + v->second.size() || version < 1)
      throw safetensors::FormatError(file.name() + ": metadata 'format_version' is '" + v->second.substr(0, 32) +
                                     "', not a version number");
    if (version > checkpoint_format_version)
      throw safetensors::FormatError(file.name() + ": checkpoint format version " + v->second + " is newer than this euler (" +
                                     EULER_VERSION_STRING + ") reads (up to " + std::to_string(checkpoint_format_version) +
                                     "); update euler to load it");
  }
  auto it = file.metadata().find("config");
  if (it == file.metadata().end()) throw safetensors::FormatError(file.name() + ": no 'config' in __metadata__");
  EulerFormerConfig c;
  try {
    c = EulerFormerConfig::from_json(nlohmann::json::parse(it->second));
    c.validate();
  } catch (const nlohmann::json::exception& e) {
    throw safetensors::FormatError(file.name() + ": metadata 'config' is not valid JSON: " + e.what());
  } catch (const ConfigError& e) {
    throw safetensors::FormatError(file.name() + ": metadata " + e.what());
  }
  // Leaves room for a tensor or two too few, which load_weights names more precisely.
  uint64_t stored = 0;
  for (const auto& t : file.tensors()) stored += uint64_t(t.numel());
  if (minimum_parameter_count(c) > 2 * stored + (uint64_t(1) << 20))
    throw safetensors::FormatError(file.name() + ": its config describes a model of at least " +
                                   std::to_string(minimum_parameter_count(c)) + " parameters, but the file holds " +
                                   std::to_string(stored) + " values: the config does not match the tensors");
  return c;
}

// Copy a floating-point tensor of the file into `out` (a parameter, an optimizer moment), refusing
// one that holds a NaN or an infinity with a FormatError naming the tensor and its first such element.
// copy_to has already refused integers and F64 numbers that do not fit T.
template <class T>
void copy_finite(const safetensors::File& file, const std::string& tensor, TensorView<T> out) {
  if (out.shape.rank == 0 && file.info(tensor).shape == std::vector<int64_t>{1}) out.shape = Shape{1};  // the authors' scalars
  file.copy_to(tensor, out);
  int64_t bad = first_nonfinite_index(out.data, out.numel());
  if (bad < 0) return;
  char value[32];
  std::snprintf(value, sizeof value, "%g", double(out[bad]));
  throw safetensors::FormatError(file.name() + ": tensor '" + tensor + "' (shape " + out.shape.str() +
                                 ") holds a non-finite number, first at element " + std::to_string(bad) + " (" + value + ")");
}

// Copy every parameter from the file; the file must hold exactly the model's parameters (or, with
// `allow_unexpected`, at least them: a training checkpoint also holds the optimizer's state).
template <class T>
void load_weights(const safetensors::File& file, EulerFormer<T>& model, bool allow_unexpected = false) {
  Parameters<T>& p = model.parameters();
  // Up to 8 names, then how many more.
  struct NameList {
    std::string text;
    int count = 0;
    void add(const std::string& name) {
      if (count++ < 8) text += (text.empty() ? "" : ", ") + name;
    }
    bool empty() const { return count == 0; }
    std::string str() const { return text + (count > 8 ? " and " + std::to_string(count - 8) + " more" : ""); }
  } missing, unexpected;
  for (const auto& e : p.entries())
    if (!file.contains(e.name)) missing.add(e.name);
  std::set<std::string> alpha_names;
  if (has_alpha_buffer(model))
    for (int l = 0; l < model.config().n_layers; ++l) alpha_names.insert(alpha_buffer_name(l));
  for (const auto& t : file.tensors())
    if (!p.contains(t.name) && !alpha_names.count(t.name)) unexpected.add(t.name);
  if (!missing.empty()) throw safetensors::FormatError(file.name() + ": missing tensors for this model: " + missing.str());
  if (!unexpected.empty() && !allow_unexpected) throw safetensors::FormatError(file.name() + ": tensors this model does not have: " + unexpected.str());
  for (int i = 0; i < p.count(); ++i) copy_finite(file, p.entry(i).name, p.value(i));
  // An alpha buffer (optional: euler computes the angles) must hold euler's angles.
  const Tensor<T>& angles = model.positional_angles();
  for (const std::string& name : alpha_names) {
    if (!file.contains(name)) continue;
    Tensor<double> alpha(Shape{angles.shape()[0], angles.shape()[1], 2});
    copy_finite(file, name, alpha.view());
    for (int64_t i = 0; i < alpha.numel(); ++i) {
      double expected = double(angles[i / 2]);
      if (std::abs(alpha[i] - expected) <= 1e-5 * std::abs(expected) + 1e-6) continue;
      char text[96];
      std::snprintf(text, sizeof text, "%.9g where euler's rotation uses %.9g", alpha[i], expected);
      throw safetensors::FormatError(file.name() + ": tensor '" + name + "' holds, at position " +
                                     std::to_string(i / 2 / angles.shape()[1]) + ", channel " +
                                     std::to_string(i / 2 % angles.shape()[1]) + ", the angle " + text +
                                     " (j * 10000^(-2t/hidden_size)): its model rotates by other angles");
    }
  }
}

template <class T = float>
EulerFormer<T> load_model(const std::string& path) {
  safetensors::File file = safetensors::File::read(path);
  EulerFormer<T> model(read_config(file));
  load_weights(file, model);
  return model;
}

}  // namespace euler
