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

#include <cstdio>
#include <map>
#include <string>

#include "euler/check/finite.hpp"
#include "euler/io/safetensors.hpp"
#include "euler/model/model.hpp"

namespace euler {

template <class T>
safetensors::Writer weights_writer(const EulerFormer<T>& model, const std::map<std::string, std::string>& extra = {}) {
  safetensors::Writer writer;
  writer.metadata = extra;
  writer.metadata["format"] = "pt";
  writer.metadata["config"] = model.config().to_json().dump();
  const Parameters<T>& p = model.parameters();
  for (int i = 0; i < p.count(); ++i) writer.add(p.entry(i).name, TensorView<const T>{p.value(i).shape, p.value(i).data});
  return writer;
}

template <class T>
void save_weights(const std::string& path, const EulerFormer<T>& model, const std::map<std::string, std::string>& extra = {}) {
  weights_writer(model, extra).write(path);
}

// Parameters a model of this config has at the least: the item table, every layer's four attention
// projections and two feed-forward matrices, the learned position tables (weights only, no biases).
inline uint64_t minimum_parameter_count(const EulerFormerConfig& c) {
  uint64_t D = uint64_t(c.hidden_size), layers = uint64_t(c.n_layers), inner = uint64_t(c.inner_size);
  uint64_t count = uint64_t(c.item_rows()) * D + layers * (4 * D * D + 2 * D * inner);
  if (c.pos == PosScheme::learned || c.pos == PosScheme::euler) count += uint64_t(c.max_len) * D;
  if (c.pos == PosScheme::euler && c.input_rotary) count += uint64_t(c.max_len) * (D / 2);
  return count;
}

// The configuration stored in a checkpoint's metadata. Checked against the file before any model is
// built from it, so a damaged config (say hidden_size 60000 in a 1 MB file) is a FormatError, not an
// attempt to allocate terabytes: the model it describes may be at most about twice the file's size.
inline EulerFormerConfig read_config(const safetensors::File& file) {
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
  for (const auto& t : file.tensors())
    if (!p.contains(t.name)) unexpected.add(t.name);
  if (!missing.empty()) throw safetensors::FormatError(file.name() + ": missing tensors for this model: " + missing.str());
  if (!unexpected.empty() && !allow_unexpected) throw safetensors::FormatError(file.name() + ": tensors this model does not have: " + unexpected.str());
  for (int i = 0; i < p.count(); ++i) copy_finite(file, p.entry(i).name, p.value(i));
}

template <class T = float>
EulerFormer<T> load_model(const std::string& path) {
  safetensors::File file = safetensors::File::read(path);
  EulerFormer<T> model(read_config(file));
  load_weights(file, model);
  return model;
}

}  // namespace euler
