// euler/model/config.hpp: every hyperparameter of EulerFormer, with the paper's defaults.
//
// A plain struct. Written out as JSON (in checkpoints' metadata and by `euler train`), it uses the
// authors' RecBole key where one exists (n_layers, hidden_size, MAX_ITEM_LIST_LENGTH, lamb, ...) and
// our own keys for the rest (n_items, backbone, pos, delta_shape, objective, ...). Reading JSON, a
// missing key keeps its default; an unknown key or a bad value throws ConfigError naming the key.
//
//     euler::EulerFormerConfig cfg;          // EulerFormer on SASRec, d = 64, 2 layers, 2 heads
//     cfg.n_items = 3417;                    // items + the padding row 0
//     cfg.pos = euler::PosScheme::rope;      // a baseline
//     cfg.validate();
//     std::string json = cfg.to_json().dump();
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>

namespace euler {

class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class Backbone { sasrec, bert4rec };
enum class PosScheme { none, learned, sinusoidal, rope, euler };
enum class DeltaShape { scalar, vector };
enum class Objective { last, all };
enum class ContrastiveMode { authors, masked };
enum class Activation { gelu, relu };

// Names of enum values, in declaration order (used for JSON, command lines and messages).
template <class E> constexpr auto enum_names();
template <> constexpr auto enum_names<Backbone>() { return std::array<std::string_view, 2>{"sasrec", "bert4rec"}; }
template <> constexpr auto enum_names<PosScheme>() {
  return std::array<std::string_view, 5>{"none", "learned", "sinusoidal", "rope", "euler"};
}
template <> constexpr auto enum_names<DeltaShape>() { return std::array<std::string_view, 2>{"scalar", "vector"}; }
template <> constexpr auto enum_names<Objective>() { return std::array<std::string_view, 2>{"last", "all"}; }
template <> constexpr auto enum_names<ContrastiveMode>() { return std::array<std::string_view, 2>{"authors", "masked"}; }
template <> constexpr auto enum_names<Activation>() { return std::array<std::string_view, 2>{"gelu", "relu"}; }

template <class E>
std::string to_string(E value) {
  return std::string(enum_names<E>()[size_t(value)]);
}
// Parse an enum value by name, or throw ConfigError naming `what` and the accepted names.
template <class E>
E parse_enum(std::string_view what, std::string_view text) {
  auto names = enum_names<E>();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == text) return E(i);
  std::string accepted;
  for (auto n : names) accepted += (accepted.empty() ? "" : "|") + std::string(n);
  throw ConfigError(std::string(what) + ": '" + std::string(text) + "' is not one of " + accepted);
}

// The fused transformer layer keeps the intermediates its backward reads while a layer's take at most
// this many bytes, and computes them again in backward above it (FusedLayerSpec::keep_bytes, `euler train
// --keep-mb`). 2 GB covers the authors' EulerFormer step (B = 4096, N = 50: 1.16 GB in the first layer,
// 0.46 GB in the last), where keeping made the step 19% faster than computing the forward twice
// (docs/performance.md).
inline constexpr int64_t kDefaultKeepBytes = int64_t(2048) << 20;

struct EulerFormerConfig {
  // ---- the transformer (RecBole keys) ----
  int n_layers = 2;                    // transformer blocks
  int n_heads = 2;                     // attention heads (contiguous channel blocks of hidden_size / n_heads)
  int hidden_size = 64;                // d; even (pairs of channels are complex numbers)
  int inner_size = 256;                // feed-forward width, 4d
  double hidden_dropout_prob = 0.5;    // RecBole SASRec default
  double attn_dropout_prob = 0.5;
  Activation hidden_act = Activation::gelu;  // exact (erf) GELU
  double layer_norm_eps = 1e-12;
  int max_len = 50;                    // N; key MAX_ITEM_LIST_LENGTH
  double initializer_range = 0.02;     // std of the normal init of Linear and Embedding weights
  // ---- EulerFormer (the authors' keys) ----
  double init_factor = 1.0;            // initial delta (the authors search {0, 0.5, 1, 2})
  bool euler_bias = true;              // learn the phase bias b of the queries
  double tep = 1.0;                    // temperature tau of the phase contrastive loss
  double lamb = 1e-5;                  // weight epsilon of the contrastive loss; 0 turns it off
  // ---- our keys ----
  int n_items = 0;                     // rows of the item table, padding row 0 included
  Backbone backbone = Backbone::sasrec;
  PosScheme pos = PosScheme::euler;
  DeltaShape delta_shape = DeltaShape::scalar;  // the authors' code: scalar; the paper: a d/2 vector
  Objective objective = Objective::last;        // loss on the last position (RecBole) or on all
  ContrastiveMode contrastive_mode = ContrastiveMode::authors;  // padding among negatives, as the authors
  // Ablations of the paper (all on = full EulerFormer):
  bool adaptation = true;              // delta and b; off: the semantic phase is rotated by alpha only
  bool learnable_freq = false;         // learn the frequencies g_t of alpha (the paper's "learnable" ablation)
  bool differential_rotation = true;   // rotate q and k in every layer; off: no rotation in attention
  bool input_rotary = true;            // the input rotary table psi
  bool absolute_positions = true;      // pos euler: keep SASRec's learned absolute position table, as the
                                       // authors do; off: positions enter only through the rotations
  bool padding_idx = false;            // true: row 0 of the item table gets no gradient from lookups, as
                                       // RecBole's nn.Embedding(padding_idx=0); false: the true derivative
  double mask_ratio = 0.2;             // BERT4Rec: fraction of positions replaced by the mask token

  static constexpr int kMaxLayers = 1024, kMaxWidth = 1 << 16, kMaxLength = 1 << 16;  // validate()'s bounds

  int head_size() const { return hidden_size / n_heads; }
  // Rows of the item embedding table: BERT4Rec appends the mask token as row n_items.
  int item_rows() const { return backbone == Backbone::bert4rec ? n_items + 1 : n_items; }
  int mask_token() const { return n_items; }
  bool uses_euler() const { return pos == PosScheme::euler; }
  // The learned absolute position table position_embedding.weight: SASRec's, and EulerFormer's unless
  // absolute_positions is off.
  bool has_position_table() const {
    return pos == PosScheme::learned || (pos == PosScheme::euler && absolute_positions);
  }

  void validate() const {
    auto fail = [](const std::string& what) { throw ConfigError("config: " + what); };
    if (n_layers < 1) fail("n_layers must be >= 1, got " + std::to_string(n_layers));
    if (n_heads < 1) fail("n_heads must be >= 1, got " + std::to_string(n_heads));
    if (hidden_size < 2 || hidden_size % 2) fail("hidden_size must be even and >= 2, got " + std::to_string(hidden_size));
    if (n_heads > hidden_size)
      fail("n_heads " + std::to_string(n_heads) + " is more than hidden_size " + std::to_string(hidden_size) +
           " (each head needs at least one channel)");
    if (hidden_size % n_heads)
      fail("hidden_size " + std::to_string(hidden_size) + " is not divisible by n_heads " + std::to_string(n_heads));
    if (inner_size < 1) fail("inner_size must be >= 1, got " + std::to_string(inner_size));
    if (max_len < 1) fail("MAX_ITEM_LIST_LENGTH must be >= 1, got " + std::to_string(max_len));
    if (n_items < 2) fail("n_items must be >= 2 (padding row 0 and one item), got " + std::to_string(n_items));
    // Far beyond any use, and low enough that the sizes below cannot overflow or exhaust memory silently.
    if (n_layers > kMaxLayers) fail("n_layers " + std::to_string(n_layers) + " is more than " + std::to_string(kMaxLayers));
    if (hidden_size > kMaxWidth) fail("hidden_size " + std::to_string(hidden_size) + " is more than " + std::to_string(kMaxWidth));
    if (inner_size > kMaxWidth) fail("inner_size " + std::to_string(inner_size) + " is more than " + std::to_string(kMaxWidth));
    if (max_len > kMaxLength)
      fail("MAX_ITEM_LIST_LENGTH " + std::to_string(max_len) + " is more than " + std::to_string(kMaxLength));
    if (n_items == std::numeric_limits<int>::max() && backbone == Backbone::bert4rec)
      fail("n_items " + std::to_string(n_items) + " leaves no id for BERT4Rec's mask token");
    for (auto [name, p] : {std::pair{"hidden_dropout_prob", hidden_dropout_prob}, {"attn_dropout_prob", attn_dropout_prob},
                           {"mask_ratio", mask_ratio}})
      if (!(p >= 0 && p < 1)) fail(std::string(name) + " must be in [0, 1), got " + std::to_string(p));
    if (!(layer_norm_eps > 0)) fail("layer_norm_eps must be > 0");
    if (!(tep > 0)) fail("tep must be > 0, got " + std::to_string(tep));
    if (!(lamb >= 0)) fail("lamb must be >= 0, got " + std::to_string(lamb));
    if (!(initializer_range > 0)) fail("initializer_range must be > 0");
    if (!absolute_positions && pos != PosScheme::euler)
      fail("absolute_positions = false applies to pos euler only, got pos " + to_string(pos) +
           " (pos learned is the absolute table; pos none, sinusoidal and rope have no learned one)");
  }

  nlohmann::json to_json() const {
    return {{"n_layers", n_layers},
            {"n_heads", n_heads},
            {"hidden_size", hidden_size},
            {"inner_size", inner_size},
            {"hidden_dropout_prob", hidden_dropout_prob},
            {"attn_dropout_prob", attn_dropout_prob},
            {"hidden_act", to_string(hidden_act)},
            {"layer_norm_eps", layer_norm_eps},
            {"MAX_ITEM_LIST_LENGTH", max_len},
            {"initializer_range", initializer_range},
            {"init_factor", init_factor},
            {"euler_bias", euler_bias},
            {"tep", tep},
            {"lamb", lamb},
            {"n_items", n_items},
            {"backbone", to_string(backbone)},
            {"pos", to_string(pos)},
            {"delta_shape", to_string(delta_shape)},
            {"objective", to_string(objective)},
            {"contrastive_mode", to_string(contrastive_mode)},
            {"adaptation", adaptation},
            {"learnable_freq", learnable_freq},
            {"differential_rotation", differential_rotation},
            {"input_rotary", input_rotary},
            {"absolute_positions", absolute_positions},
            {"padding_idx", padding_idx},
            {"mask_ratio", mask_ratio}};
  }

  // Missing keys keep their defaults; unknown keys and bad values throw ConfigError.
  static EulerFormerConfig from_json(const nlohmann::json& j) {
    if (!j.is_object()) throw ConfigError("config: expected a JSON object, got " + std::string(j.type_name()));
    EulerFormerConfig c;
    for (const auto& entry : j.items()) {
      // Named references, not a structured binding: clang before 16 cannot capture those in lambdas.
      const std::string& key = entry.key();
      const nlohmann::json& value = entry.value();
      auto number = [&](auto& field) {
        using F = std::remove_reference_t<decltype(field)>;
        if constexpr (std::is_integral_v<F>) {
          if (!value.is_number_integer()) throw ConfigError("config: key '" + key + "' must be an integer, got " + value.dump());
          bool fits = value.is_number_unsigned() ? value.get<uint64_t>() <= uint64_t(std::numeric_limits<F>::max())
                                                 : value.get<int64_t>() >= int64_t(std::numeric_limits<F>::min()) &&
                                                       value.get<int64_t>() <= int64_t(std::numeric_limits<F>::max());
          if (!fits) throw ConfigError("config: key '" + key + "' is out of range, got " + value.dump());
          field = value.get<F>();
        } else {
          if (!value.is_number()) throw ConfigError("config: key '" + key + "' must be a number, got " + value.dump());
          field = value.get<F>();
        }
      };
      auto boolean = [&](bool& field) {
        if (!value.is_boolean()) throw ConfigError("config: key '" + key + "' must be true or false, got " + value.dump());
        field = value.get<bool>();
      };
      auto name = [&](auto& field) {
        if (!value.is_string()) throw ConfigError("config: key '" + key + "' must be a string, got " + value.dump());
        field = parse_enum<std::remove_reference_t<decltype(field)>>("config: key '" + key + "'", value.get<std::string>());
      };
      if (key == "n_layers") number(c.n_layers);
      else if (key == "n_heads") number(c.n_heads);
      else if (key == "hidden_size") number(c.hidden_size);
      else if (key == "inner_size") number(c.inner_size);
      else if (key == "hidden_dropout_prob") number(c.hidden_dropout_prob);
      else if (key == "attn_dropout_prob") number(c.attn_dropout_prob);
      else if (key == "hidden_act") name(c.hidden_act);
      else if (key == "layer_norm_eps") number(c.layer_norm_eps);
      else if (key == "MAX_ITEM_LIST_LENGTH") number(c.max_len);
      else if (key == "initializer_range") number(c.initializer_range);
      else if (key == "init_factor") number(c.init_factor);
      else if (key == "euler_bias") boolean(c.euler_bias);
      else if (key == "tep") number(c.tep);
      else if (key == "lamb") number(c.lamb);
      else if (key == "n_items") number(c.n_items);
      else if (key == "backbone") name(c.backbone);
      else if (key == "pos") name(c.pos);
      else if (key == "delta_shape") name(c.delta_shape);
      else if (key == "objective") name(c.objective);
      else if (key == "contrastive_mode") name(c.contrastive_mode);
      else if (key == "adaptation") boolean(c.adaptation);
      else if (key == "learnable_freq") boolean(c.learnable_freq);
      else if (key == "differential_rotation") boolean(c.differential_rotation);
      else if (key == "input_rotary") boolean(c.input_rotary);
      else if (key == "absolute_positions") boolean(c.absolute_positions);
      else if (key == "padding_idx") boolean(c.padding_idx);
      else if (key == "mask_ratio") number(c.mask_ratio);
      else throw ConfigError("config: unknown key '" + key + "'");
    }
    return c;
  }
};

}  // namespace euler
