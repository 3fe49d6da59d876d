// fuzz/make_corpus.cpp: writes the binary and JSON seeds of fuzz/corpus/ (safetensors files and
// model configs) from euler's own writers, so the seeds are real files. The text seeds of the other
// targets are written by hand. Run from the repository root after a change to the formats:
//
//     cmake --build build-fuzz --target make_corpus && ./build-fuzz/make_corpus fuzz/corpus
#include <euler/eulerformer.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

using namespace euler;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <corpus folder>\n";
    return 2;
  }
  std::filesystem::path root = argv[1];
  std::filesystem::create_directories(root / "safetensors");
  std::filesystem::create_directories(root / "config");
  std::filesystem::create_directories(root / "checkpoint");
  auto write = [&](const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
    std::cout << path.string() << " (" << bytes.size() << " bytes)\n";
  };

  // The seeds' model: 3 items, width 2, one layer, N = 2.
  EulerFormerConfig tiny;
  tiny.n_items = 4;
  tiny.hidden_size = 2;
  tiny.inner_size = 2;
  tiny.n_heads = 1;
  tiny.n_layers = 1;
  tiny.max_len = 2;

  // A tiny model per backbone and positional scheme: the weights-only file euler writes.
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec})
    for (PosScheme pos : {PosScheme::euler, PosScheme::rope, PosScheme::learned}) {
      EulerFormerConfig c = tiny;
      c.backbone = backbone;
      c.pos = pos;
      EulerFormer<float> model(c, 7);
      std::string name = to_string(backbone) + "_" + to_string(pos);
      write(root / "safetensors" / ("model_" + name), weights_writer(model, {{"item_tokens", "[\"\",\"a\",\"b\",\"c\"]"}}).bytes());
      write(root / "checkpoint" / ("model_" + name), weights_writer(model, {{"item_tokens", "[\"\",\"a\",\"b\",\"c\"]"}}).bytes());
      write(root / "config" / ("config_" + name), c.to_json().dump());
    }
  // A checkpoint whose finite weights overflow in the forward pass (scores of inf and NaN).
  {
    EulerFormer<float> model(tiny, 7);
    TensorView<float> table = model.parameters().value("item_embedding.weight");
    for (int64_t i = 0; i < 4; ++i) table[i] = 3e38f;
    write(root / "checkpoint" / "overflowing_weights", weights_writer(model).bytes());
  }
  // Plain tensors of every dtype, with metadata, and an empty file.
  safetensors::Writer w;
  w.metadata["note"] = "seed";
  Tensor<float> f = Tensor<float>::from({2, 2}, {1, 2, 3, 4});
  Tensor<double> d = Tensor<double>::from({3}, {0.5, -1, 2});
  Tensor<int32_t> i = Tensor<int32_t>::from({1, 2}, {7, -7});
  Tensor<int64_t> l = Tensor<int64_t>::from({1}, {1234567890123});
  w.add("f", f.view());
  w.add("d", d.view());
  w.add("i", i.view());
  w.add("l", l.view());
  write(root / "safetensors" / "dtypes", w.bytes());
  write(root / "safetensors" / "empty", safetensors::Writer().bytes());
  write(root / "config" / "empty_object", "{}");
  write(root / "config" / "every_key",
        R"({"n_layers":2,"n_heads":2,"hidden_size":8,"inner_size":16,"hidden_dropout_prob":0.1,"attn_dropout_prob":0.1,)"
        R"("hidden_act":"relu","layer_norm_eps":1e-12,"MAX_ITEM_LIST_LENGTH":10,"initializer_range":0.02,"init_factor":0.5,)"
        R"("euler_bias":false,"tep":0.5,"lamb":0.001,"n_items":20,"backbone":"sasrec","pos":"euler","delta_shape":"vector",)"
        R"("objective":"all","contrastive_mode":"masked","adaptation":true,"learnable_freq":true,"differential_rotation":true,)"
        R"("input_rotary":false,"mask_ratio":0.3})");
  return 0;
}
