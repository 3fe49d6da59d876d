// euler/model/weights.hpp: EulerFormer weights in safetensors, named as the authors' PyTorch modules.
//
// A checkpoint holds one tensor per parameter (item_embedding.weight, trm_encoder.layer.0...., see
// docs/model.md) and the configuration as JSON under the metadata key "config", so a file alone
// rebuilds its model. Loading checks that the file has exactly the model's parameters with the
// model's shapes: a missing, unexpected or misshapen tensor is a FormatError naming it.
//
//     euler::save_weights("model.safetensors", model);
//     euler::EulerFormer<float> again = euler::load_model<float>("model.safetensors");
#pragma once

#include <map>
#include <string>

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

// The configuration stored in a checkpoint's metadata.
inline EulerFormerConfig read_config(const safetensors::File& file) {
  auto it = file.metadata().find("config");
  if (it == file.metadata().end()) throw safetensors::FormatError(file.name() + ": no 'config' in __metadata__");
  try {
    EulerFormerConfig c = EulerFormerConfig::from_json(nlohmann::json::parse(it->second));
    c.validate();
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw safetensors::FormatError(file.name() + ": metadata 'config' is not valid JSON: " + e.what());
  } catch (const ConfigError& e) {
    throw safetensors::FormatError(file.name() + ": metadata " + e.what());
  }
}

// Copy every parameter from the file; the file must hold exactly the model's parameters.
template <class T>
void load_weights(const safetensors::File& file, EulerFormer<T>& model) {
  Parameters<T>& p = model.parameters();
  std::string missing, unexpected;
  for (const auto& e : p.entries())
    if (!file.contains(e.name)) missing += (missing.empty() ? "" : ", ") + e.name;
  for (const auto& t : file.tensors())
    if (!p.contains(t.name)) unexpected += (unexpected.empty() ? "" : ", ") + t.name;
  if (!missing.empty()) throw safetensors::FormatError(file.name() + ": missing tensors for this model: " + missing);
  if (!unexpected.empty()) throw safetensors::FormatError(file.name() + ": tensors this model does not have: " + unexpected);
  for (int i = 0; i < p.count(); ++i) file.copy_to(p.entry(i).name, p.value(i));
}

template <class T = float>
EulerFormer<T> load_model(const std::string& path) {
  safetensors::File file = safetensors::File::read(path);
  EulerFormer<T> model(read_config(file));
  load_weights(file, model);
  return model;
}

}  // namespace euler
