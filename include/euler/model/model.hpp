// euler/model/model.hpp: EulerFormer on the SASRec and BERT4Rec backbones, with every positional scheme.
//
// The model of docs/model.md: the paper's, following the authors' code (github.com/Ethan-TZ/EulerFormer)
// where the two differ. One code path serves every positional scheme:
//   none        no positional information at all
//   learned     learned absolute position embeddings (plain SASRec / BERT4Rec)
//   sinusoidal  fixed sinusoidal embeddings added to the input
//   rope        q and k rotated by the fixed angles alpha[j, t] = j g_t, g_t = 10000^(-2t/d)
//   euler       EulerFormer: learned absolute positions, the input rotary table psi, and in every layer
//               the Euler transform of q and k to polar form with the adaptation function
//                   theta~Q = delta theta_Q + b + alpha,   theta~K = delta theta_K + alpha
//               (delta and b learned per layer), mapped back to real before the dot product; plus the
//               phase contrastive loss on the rotated phases.
// Letters: B batch, N list length, D hidden, H heads, K items (rows of the item table).
//
//     euler::EulerFormerConfig cfg; cfg.n_items = 101;
//     euler::EulerFormer<float> model(cfg, /*seed=*/42);
//     euler::Tape<float> tape; euler::Rng rng(7);
//     euler::Context<float> ctx{tape, model.parameters(), /*dropout_on=*/true, rng};
//     auto losses = model.loss(ctx, {ids, targets});     // ids [B, N], targets [B]
//     tape.backward(losses.total);                       // gradients in model.parameters().grads()
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "euler/data/rows.hpp"
#include "euler/model/config.hpp"
#include "euler/model/contrastive.hpp"
#include "euler/model/fused_layer.hpp"
#include "euler/nn/layers.hpp"
#include "euler/ops/complex.hpp"
#include "euler/ops/layout.hpp"
#include "euler/ops/linear_cross_entropy.hpp"
#include "euler/ops/reduce.hpp"

namespace euler {

// Inner values of one forward pass, for those who study them (attention maps, phases per layer).
template <class T>
struct Trace {
  std::vector<Var<T>> attention_logits;  // per layer [B, H, N, N], before the mask
  std::vector<Var<T>> attention;         // per layer [B, H, N, N], after softmax
  std::vector<Var<T>> query_phase;       // per layer [B, N, D/2], phases of the rotated queries (euler)
  std::vector<Var<T>> key_phase;         // per layer [B, N, D/2]
};

// A batch of right-padded lists: position 0 holds the oldest item, 0 is padding.
struct Batch {
  TensorView<const int32_t> ids;      // [B, N]
  TensorView<const int32_t> targets;  // [B] (objective last) or [B, N] (objective all, BERT4Rec); 0 = no loss
};

template <class T>
struct Losses {
  Var<T> total;        // ce + contrastive
  Var<T> ce;           // cross-entropy over all items
  Var<T> contrastive;  // sum over layers of the phase contrastive terms ([] zero when off)
};

template <class T = float>
class EulerFormer {
 public:
  // Multi-head attention with the configured positional scheme (see attend() and rotate() below):
  // LN(x + dropout(dense(softmax(rot(q) rot(k)^T / sqrt(d_h) + mask) v))).
  struct MultiHeadAttention {
    Linear<T> query, key, value, dense;
    LayerNorm<T> norm;
    int delta = -1, bias = -1, freq = -1, w = -1;  // EulerFormer parameters (-1: absent)
  };
  struct Layer {
    MultiHeadAttention attention;
    FeedForward<T> feed_forward;
  };

  explicit EulerFormer(const EulerFormerConfig& config, uint64_t seed = 2024) : config_(config) {
    config_.validate();
    declare();
    params_.allocate();
    Rng rng(seed);
    initialize(rng);
    build_tables();
  }

  const EulerFormerConfig& config() const { return config_; }
  // Each layer as one fused node (model/fused_layer.hpp; the default) or composed from tape ops (the
  // reference, always used for a Trace and for learnable frequencies). Same values and gradients.
  void set_fused(bool on) { fused_ = on; }
  bool fused() const { return fused_; }
  // The fused layer keeps each tile's intermediates for backward while a layer's take at most this many
  // bytes, and recomputes them above it (FusedLayerSpec::keep_bytes; 0: always recompute).
  void set_keep_bytes(int64_t bytes) { keep_bytes_ = bytes; }
  int64_t keep_bytes() const { return keep_bytes_; }
  Parameters<T>& parameters() { return params_; }
  const Parameters<T>& parameters() const { return params_; }
  // The fixed positional angles alpha[j, t] = j g_t, [N, d/2] (the authors' buffer euler.alpha).
  const Tensor<T>& positional_angles() const { return alpha_; }
  const std::vector<Layer>& layers() const { return layers_; }

  // ---- forward ----------------------------------------------------------------------------------

  // The transformer: ids [B, N] -> hidden states [B, N, D]. Adds the layers' contrastive terms to
  // *contrastive when asked (EulerFormer with lamb > 0 only).
  //
  // With `rows` ([B], one position per list) it returns only the hidden state at that position, [B, D],
  // and the last layer computes no more than that needs: its keys and values (and, for the contrastive
  // loss, its rotated queries) for every position, but attention, the dense projection and the
  // feed-forward for the one row. Same values as gathering from the full output; about a third fewer
  // FLOPs at two layers. A trace always gets the full layers.
  Var<T> encode(const Context<T>& ctx, TensorView<const int32_t> ids, Var<T>* contrastive = nullptr,
                Trace<T>* trace = nullptr, TensorView<const int32_t> rows = {}) const {
    const EulerFormerConfig& c = config_;
    require(ids.rank() == 2, "EulerFormer::encode", "ids must be [B, N], got " + ids.shape.str());
    int64_t B = ids.shape[0], N = ids.shape[1];
    require(N >= 1 && N <= c.max_len, "EulerFormer::encode",
            "list length " + std::to_string(N) + " is outside 1.." + std::to_string(c.max_len) + " (MAX_ITEM_LIST_LENGTH)");
    Tape<T>& tape = ctx.tape;
    TensorView<const int32_t> kept_ids = tape.keep(ids);

    // Input: item embedding (+ positions), the input rotary table, LayerNorm, dropout.
    Var<T> x = item_embedding_.forward(ctx, kept_ids, c.padding_idx ? 0 : -1);  // [B, N, D]
    if (position_embedding_ >= 0) x = x + first_rows(ctx.param(position_embedding_), N);
    if (c.pos == PosScheme::sinusoidal) x = x + tape.constant(rows_of(sinusoid_, N), "sinusoid");
    if (rotary_embedding_ >= 0) x = rotate_by_phase(x, first_rows(ctx.param(rotary_embedding_), N));
    x = ctx.dropout(input_norm_.forward(ctx, x), c.hidden_dropout_prob);

    TensorView<const T> mask;  // [B, 1, N, N], made when a composed layer first needs it (the fused one masks by itself)
    bool prune = rows.data != nullptr && trace == nullptr;
    if (rows.data) require(rows.shape == Shape{B}, "EulerFormer::encode", "rows must be [B], got " + rows.shape.str());
    for (size_t l = 0; l < layers_.size(); ++l) {
      bool last = l + 1 == layers_.size();
      TensorView<const int32_t> layer_rows = prune && last ? rows : TensorView<const int32_t>{};
      if (fused_ && trace == nullptr && layers_[l].attention.freq < 0) {
        FusedLayerOutputs<T> out = fused_layer(ctx, fused_spec(contrastive != nullptr), fused_inputs(ctx, layers_[l], contrastive != nullptr),
                                               x, kept_ids, rows_of_const(alpha_, N), layer_rows);
        x = out.out;
        if (out.contrastive.tape) *contrastive = *contrastive + out.contrastive;
        continue;
      }
      if (!mask.data) mask = attention_mask(tape, kept_ids);
      x = attend(ctx, layers_[l].attention, x, kept_ids, mask, contrastive, trace, layer_rows);
      x = layers_[l].feed_forward.forward(ctx, x);
    }
    if (prune) return reshape(x, Shape{B, c.hidden_size});
    return rows.data ? gather_rows(x, rows) : x;
  }

  // Training losses for a batch (dropout as ctx says). See Batch for the target layout.
  Losses<T> loss(const Context<T>& ctx, const Batch& batch, Trace<T>* trace = nullptr) const {
    const EulerFormerConfig& c = config_;
    Tape<T>& tape = ctx.tape;
    int64_t B = batch.ids.shape[0], N = batch.ids.shape[1];
    Var<T> contrastive = tape.scalar(T(0), "zero");
    bool want_contrastive = c.uses_euler() && c.differential_rotation && c.lamb > 0;
    Var<T>* con = want_contrastive ? &contrastive : nullptr;
    Var<T> ce;
    if (c.backbone == Backbone::sasrec && c.objective == Objective::last) {
      require(batch.targets.shape == Shape{B}, "EulerFormer::loss",
              "objective 'last' needs targets [B] = [" + std::to_string(B) + "], got " + batch.targets.shape.str());
      Var<T> user = encode(ctx, batch.ids, con, trace, last_positions(tape, batch.ids));  // [B, D]
      ce = item_cross_entropy(ctx, user, batch.targets);                               // over [B, K] scores
    } else {
      require(batch.targets.shape == (Shape{B, N}), "EulerFormer::loss",
              "this objective needs targets [B, N] = [" + std::to_string(B) + ", " + std::to_string(N) + "], got " +
                  batch.targets.shape.str());
      Var<T> hidden = encode(ctx, batch.ids, con, trace);
      ce = item_cross_entropy(ctx, reshape(hidden, Shape{B * N, c.hidden_size}),
                              TensorView<const int32_t>{Shape{B * N}, batch.targets.data});  // over [B N, K] scores
    }
    return {want_contrastive ? ce + contrastive : ce, ce, contrastive};
  }

  // Scores of every item as the next one, [B, K] (row 0, padding, included as in the authors' code).
  // SASRec reads the output at the last valid position; BERT4Rec appends the mask token and reads it
  // there (dropping the oldest item when the list is full).
  Var<T> score(const Context<T>& ctx, TensorView<const int32_t> ids /*[B, N]*/) const {
    Tape<T>& tape = ctx.tape;
    int64_t B = ids.shape[0], N = ids.shape[1];
    if (config_.backbone == Backbone::sasrec) return item_logits(ctx, encode(ctx, ids, nullptr, nullptr, last_positions(tape, ids)));
    TensorView<int32_t> with_mask = tape.template alloc_as<int32_t>(Shape{B, N});
    TensorView<int32_t> where = tape.template alloc_as<int32_t>(Shape{B});
    for (int64_t b = 0; b < B; ++b) {
      std::span<const int32_t> history(ids.data + b * N, size_t(valid_length(ids.data + b * N, N)));
      where[b] = int32_t(fill_masked(history, N, config_.mask_token(), with_mask.data + b * N));
    }
    return item_logits(ctx, encode(ctx, TensorView<const int32_t>{with_mask.shape, with_mask.data}, nullptr, nullptr,
                                   TensorView<const int32_t>{where.shape, where.data}));
  }

  // Number of leading non-padding entries of a right-padded list.
  static int64_t valid_length(const int32_t* row, int64_t N) {
    int64_t length = 0;
    while (length < N && row[length] != 0) ++length;
    return length;
  }

 private:
  // ---- parameters (names and shapes of the authors' PyTorch modules) ------------------------------
  void declare() {
    const EulerFormerConfig& c = config_;
    int D = c.hidden_size;
    item_embedding_.declare(params_, "item_embedding", c.item_rows(), D);
    if (c.has_position_table())
      position_embedding_ = params_.declare("position_embedding.weight", {c.max_len, D});
    if (c.pos == PosScheme::euler && c.input_rotary)
      rotary_embedding_ = params_.declare("rotary_embedding.weight", {c.max_len, D / 2});
    input_norm_.declare(params_, "LayerNorm", D, c.layer_norm_eps);
    for (int l = 0; l < c.n_layers; ++l) {
      Layer layer;
      std::string prefix = "trm_encoder.layer." + std::to_string(l);
      std::string mha = prefix + ".multi_head_attention";
      layer.attention.query.declare(params_, mha + ".query", D, D);
      layer.attention.key.declare(params_, mha + ".key", D, D);
      layer.attention.value.declare(params_, mha + ".value", D, D);
      if (c.uses_euler() && c.differential_rotation) {
        Shape phase_shape = c.delta_shape == DeltaShape::scalar ? Shape{} : Shape{D / 2};
        if (c.adaptation) {
          layer.attention.delta = params_.declare(mha + ".euler.delta", phase_shape);
          if (c.euler_bias) layer.attention.bias = params_.declare(mha + ".euler.b", phase_shape);
        }
        if (c.learnable_freq) layer.attention.freq = params_.declare(mha + ".euler.freq", {D / 2});
        layer.attention.w = params_.declare(mha + ".w", {D / 2});
      }
      layer.attention.dense.declare(params_, mha + ".dense", D, D);
      layer.attention.norm.declare(params_, mha + ".LayerNorm", D, c.layer_norm_eps);
      layer.feed_forward.declare(params_, prefix + ".feed_forward", D, c.inner_size, c.layer_norm_eps,
                                 c.hidden_act == Activation::gelu, c.hidden_dropout_prob);
      layers_.push_back(layer);
    }
  }

  // Linear and Embedding weights N(0, initializer_range), biases 0, LayerNorm (1, 0), psi 0,
  // delta = init_factor, b = 0, w = 1, learnable frequencies start at g_t.
  void initialize(Rng& rng) {
    const EulerFormerConfig& c = config_;
    double std = c.initializer_range;
    item_embedding_.init(params_, rng, std);
    if (position_embedding_ >= 0) fill_normal(params_.value(position_embedding_), rng, T(0), T(std));
    input_norm_.init(params_);
    for (const Layer& layer : layers_) {
      const MultiHeadAttention& a = layer.attention;
      for (const Linear<T>* linear : {&a.query, &a.key, &a.value, &a.dense}) linear->init(params_, rng, std);
      a.norm.init(params_);
      layer.feed_forward.init(params_, rng, std);
      if (a.delta >= 0) fill(a.delta, T(c.init_factor));
      if (a.bias >= 0) fill(a.bias, T(0));
      if (a.w >= 0) fill(a.w, T(1));
      if (a.freq >= 0)
        for (int t = 0; t < c.hidden_size / 2; ++t) params_.value(a.freq)[t] = T(frequency(t));
    }
  }
  void fill(int index, T value) {
    TensorView<T> v = params_.value(index);
    std::fill(v.begin(), v.end(), value);
  }
  double frequency(int t) const { return std::pow(10000.0, -2.0 * t / config_.hidden_size); }

  // Fixed tables: alpha[j, t] = j g_t and the sinusoid PE[j, 2t] = sin(j g_t), PE[j, 2t+1] = cos(j g_t).
  void build_tables() {
    int N = config_.max_len, half = config_.hidden_size / 2;
    alpha_ = Tensor<T>({N, half});
    sinusoid_ = Tensor<T>({N, 2 * half});
    positions_ = Tensor<T>({N, 1});
    for (int j = 0; j < N; ++j) {
      positions_[j] = T(j);
      for (int t = 0; t < half; ++t) {
        double angle = j * frequency(t);
        alpha_.at({j, t}) = T(angle);
        sinusoid_.at({j, 2 * t}) = T(std::sin(angle));
        sinusoid_.at({j, 2 * t + 1}) = T(std::cos(angle));
      }
    }
  }

  // ---- pieces of the forward --------------------------------------------------------------------

  // The first n rows of a table, as a view (no copy) or a slice on the tape.
  static Var<T> first_rows(Var<T> table /*[max_len, C]*/, int64_t n) {
    return n == table.size(0) ? table : slice(table, 0, 0, n);
  }
  static TensorView<T> rows_of(const Tensor<T>& table, int64_t n) {
    return {table.shape().with(0, n), table.data()};
  }
  static TensorView<const T> rows_of_const(const Tensor<T>& table, int64_t n) {
    return {table.shape().with(0, n), table.data()};
  }

  // The fused layer's settings and its parameters on the tape (see fused_layer.hpp).
  FusedLayerSpec fused_spec(bool want_contrastive) const {
    const EulerFormerConfig& c = config_;
    FusedLayerSpec s;
    s.D = c.hidden_size;
    s.H = c.n_heads;
    s.I = c.inner_size;
    s.causal = c.backbone == Backbone::sasrec;
    s.gelu = c.hidden_act == Activation::gelu;
    s.eps = c.layer_norm_eps;
    s.attn_dropout = c.attn_dropout_prob;
    s.hidden_dropout = c.hidden_dropout_prob;
    bool euler_rotation = c.uses_euler() && c.differential_rotation;
    s.rotation = c.pos == PosScheme::rope ? LayerRotation::rope : euler_rotation ? LayerRotation::euler : LayerRotation::none;
    s.contrastive = want_contrastive && euler_rotation && c.lamb > 0;
    s.tep = c.tep;
    s.lamb = c.lamb;
    s.contrastive_mode = c.contrastive_mode;
    s.keep_bytes = keep_bytes_;
    return s;
  }
  FusedLayerInputs<T> fused_inputs(const Context<T>& ctx, const Layer& layer, bool want_contrastive) const {
    const MultiHeadAttention& a = layer.attention;
    const FeedForward<T>& f = layer.feed_forward;
    FusedLayerInputs<T> in;
    in.wq = ctx.param(a.query.weight), in.bq = ctx.param(a.query.bias);
    in.wk = ctx.param(a.key.weight), in.bk = ctx.param(a.key.bias);
    in.wv = ctx.param(a.value.weight), in.bv = ctx.param(a.value.bias);
    in.wd = ctx.param(a.dense.weight), in.bd = ctx.param(a.dense.bias);
    in.g1 = ctx.param(a.norm.weight), in.be1 = ctx.param(a.norm.bias);
    in.w1 = ctx.param(f.dense_1.weight), in.b1 = ctx.param(f.dense_1.bias);
    in.w2 = ctx.param(f.dense_2.weight), in.b2 = ctx.param(f.dense_2.bias);
    in.g2 = ctx.param(f.norm.weight), in.be2 = ctx.param(f.norm.bias);
    if (a.delta >= 0) in.delta = ctx.param(a.delta);
    if (a.bias >= 0) in.bias = ctx.param(a.bias);
    if (a.w >= 0 && want_contrastive && fused_spec(true).contrastive) in.w = ctx.param(a.w);
    return in;
  }

  // Additive mask [B, 1, N, N]: key s is visible to query t when ids[s] != 0 and (SASRec) s <= t;
  // hidden keys get -10000 as in the authors' code.
  TensorView<const T> attention_mask(Tape<T>& tape, TensorView<const int32_t> ids) const {
    int64_t B = ids.shape[0], N = ids.shape[1];
    bool causal = config_.backbone == Backbone::sasrec;
    TensorView<T> mask = tape.alloc(Shape{B, 1, N, N});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < N; ++t)
        for (int64_t s = 0; s < N; ++s)
          mask[(b * N + t) * N + s] = (ids[b * N + s] != 0 && (!causal || s <= t)) ? T(0) : T(-10000);
    return {mask.shape, mask.data};
  }

  // Rows [B, 1, 1, N] of the mask [B, 1, N, N]: row rows[b] of list b.
  static TensorView<const T> mask_rows(Tape<T>& tape, TensorView<const T> mask, TensorView<const int32_t> rows) {
    int64_t B = mask.shape[0], N = mask.shape[3];
    TensorView<T> picked = tape.alloc(Shape{B, 1, 1, N});
    for (int64_t b = 0; b < B; ++b) std::copy_n(mask.data + (b * N + rows[b]) * N, N, picked.data + b * N);
    return {picked.shape, picked.data};
  }

  // Index of the last valid position of every list, [B] (0 for an all-padding list).
  static TensorView<const int32_t> last_positions(Tape<T>& tape, TensorView<const int32_t> ids) {
    int64_t B = ids.shape[0], N = ids.shape[1];
    TensorView<int32_t> last = tape.template alloc_as<int32_t>(Shape{B});
    for (int64_t b = 0; b < B; ++b) last[b] = int32_t(std::max<int64_t>(0, valid_length(ids.data + b * N, N) - 1));
    return {last.shape, last.data};
  }

  // Cross-entropy of the scores against the item table, targets 0 ignored: [M, D] with targets [M] -> [].
  // Fused (linear_cross_entropy: no [M, K] scores kept) unless the model runs its composed reference.
  Var<T> item_cross_entropy(const Context<T>& ctx, Var<T> hidden /*[M, D]*/, TensorView<const int32_t> targets /*[M]*/) const {
    if (!fused_) return cross_entropy(item_logits(ctx, hidden), targets, 0);
    return linear_cross_entropy(hidden, item_embedding_.table(ctx), targets, 0, config_.n_items);
  }

  // Scores against the item table: [..., D] -> [..., K] (BERT4Rec leaves out its mask-token row).
  Var<T> item_logits(const Context<T>& ctx, Var<T> hidden) const {
    Var<T> table = item_embedding_.table(ctx);
    if (config_.backbone == Backbone::bert4rec) table = slice(table, 0, 0, config_.n_items);
    return matmul(hidden, table, false, true);
  }

  // The positional rotation of q or k [B, N, D] inside attention. EulerFormer also hands back the
  // rotated phases theta~ [B, N, D/2] through *phase (for the phase contrastive loss).
  Var<T> rotate(const Context<T>& ctx, const MultiHeadAttention& a, Var<T> x, bool is_query, int64_t N,
                Var<T>* phase = nullptr) const {
    const EulerFormerConfig& c = config_;
    Tape<T>& tape = ctx.tape;
    Var<T> angle;  // the positional angle [N, D/2]
    if (a.freq >= 0)
      angle = matmul(tape.constant(rows_of(positions_, N), "positions"),
                     reshape(ctx.param(a.freq), Shape{1, c.hidden_size / 2}));  // j * g_t, learnable g
    else
      angle = tape.constant(rows_of(alpha_, N), "alpha");
    if (c.pos == PosScheme::rope) return rotate_by_phase(x, angle);
    // Euler transform: polar form, adapt the semantic phase, add the positional angle, map back
    // (fused: theta~ = delta arg(x) + b + alpha, then |x| e^{i theta~}; see ops/complex.hpp).
    Var<T> delta = a.delta >= 0 ? ctx.param(a.delta) : Var<T>{};
    Var<T> bias = is_query && a.bias >= 0 ? ctx.param(a.bias) : Var<T>{};
    Var<T> rotated_phase = euler_phase(x, delta, bias, angle);
    if (phase) *phase = rotated_phase;
    return with_phase(x, rotated_phase);
  }

  // One post-LN attention block: LN(x + dropout(dense(attention(x)))). With `rows` ([B]) only the
  // query at rows[b] of each list attends, and the block returns [B, 1, D].
  Var<T> attend(const Context<T>& ctx, const MultiHeadAttention& a, Var<T> x /*[B, N, D]*/, TensorView<const int32_t> ids,
                TensorView<const T> mask, Var<T>* contrastive, Trace<T>* trace, TensorView<const int32_t> rows) const {
    const EulerFormerConfig& c = config_;
    int64_t B = x.size(0), N = x.size(1), D = x.size(2);
    Var<T> q = a.query.forward(ctx, x), k = a.key.forward(ctx, x), v = a.value.forward(ctx, x);  // [B, N, D]
    bool rotates = c.pos == PosScheme::rope || (c.uses_euler() && c.differential_rotation);
    Var<T> query_phase, key_phase;  // EulerFormer: theta~ of q and k, [B, N, D/2]
    if (rotates) {
      q = rotate(ctx, a, q, true, N, &query_phase);
      k = rotate(ctx, a, k, false, N, &key_phase);
    }
    if (c.uses_euler() && c.differential_rotation) {
      // The authors' code takes atan2 of the rotated q and k: theta~ up to multiples of 2 pi, which the
      // loss cannot see (it reads cos and sin of the phases and of twice the phases), with the same
      // gradients. The trace keeps the atan2 values, in [-pi, pi].
      if (trace) {
        trace->query_phase.push_back(complex_arg(q));
        trace->key_phase.push_back(complex_arg(k));
      }
      if (contrastive && a.w >= 0) {
        Var<T> w = ctx.param(a.w);
        // Two statements: the query term draws its view from ctx.rng before the key term.
        Var<T> query_term = phase_contrastive_loss(ctx, query_phase, w, ids, c.tep, c.lamb, c.contrastive_mode);
        Var<T> key_term = phase_contrastive_loss(ctx, key_phase, w, ids, c.tep, c.lamb, c.contrastive_mode);
        *contrastive = *contrastive + query_term + key_term;
      }
    }
    if (rows.data) {  // one query per list: its row of q, of x and of the mask
      q = reshape(gather_rows(q, rows), Shape{B, 1, D});
      x = reshape(gather_rows(x, rows), Shape{B, 1, D});
      mask = mask_rows(ctx.tape, mask, rows);
    }
    Var<T> qh = split_heads(q, c.n_heads), kh = split_heads(k, c.n_heads), vh = split_heads(v, c.n_heads);
    Var<T> logits = matmul(qh, kh, false, true) * T(1 / std::sqrt(double(c.head_size())));  // [B, H, N, N]
    Var<T> attention = softmax(logits, mask);
    if (trace) {
      trace->attention_logits.push_back(logits);
      trace->attention.push_back(attention);
    }
    attention = ctx.dropout(attention, c.attn_dropout_prob);
    Var<T> context = merge_heads(matmul(attention, vh));  // [B, N, D]
    Var<T> out = ctx.dropout(a.dense.forward(ctx, context), c.hidden_dropout_prob);
    return a.norm.forward(ctx, out + x);
  }

  EulerFormerConfig config_;
  Parameters<T> params_;
  Embedding<T> item_embedding_;                          // shared by the input and the output scores
  int position_embedding_ = -1, rotary_embedding_ = -1;  // -1: absent for this positional scheme
  LayerNorm<T> input_norm_;
  std::vector<Layer> layers_;
  Tensor<T> alpha_, sinusoid_, positions_;
  bool fused_ = true;
  int64_t keep_bytes_ = FusedLayerSpec{}.keep_bytes;
};

}  // namespace euler
