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
#include "euler/model/forward.hpp"
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
  // One transformer layer's parameters (model/forward.hpp runs them; the names are those of
  // cuda::ModelSpec::Layer): multi-head attention with the configured positional scheme,
  // LN(x + dropout(dense(softmax(rot(q) rot(k)^T / sqrt(d_h) + mask) v))), then the feed-forward block
  // LN(x + dropout(dense_2(act(dense_1(x))))).
  struct Layer {
    Linear<T> query, key, value, dense;
    LayerNorm<T> attention_norm;
    int delta = -1, bias = -1, freq = -1, w = -1;  // EulerFormer parameters (-1: absent)
    Linear<T> dense_1, dense_2;
    LayerNorm<T> feed_forward_norm;
  };

  explicit EulerFormer(const EulerFormerConfig& config, uint64_t seed = 2024) : config_(config) {
    config_.validate();
    settings_ = forward_settings(config_);
    declare();
    params_.allocate();
    Rng rng(seed);
    initialize(rng);
    build_tables();
  }

  const EulerFormerConfig& config() const { return config_; }
  // Each layer composed from tape ops (the default: model/forward.hpp, the path to read, always used for
  // a Trace and for learnable frequencies) or as one fused node (model/fused_layer.hpp: the same values
  // and gradients, several times faster and far smaller at large batches; the Trainer and the CLI turn
  // it on). docs/architecture.md, "Two paths, one math".
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
    TensorView<const int32_t> kept_ids = ctx.tape.keep(ids);
    bool prune = rows.data != nullptr && trace == nullptr;
    if (rows.data) require(rows.shape == Shape{B}, "EulerFormer::encode", "rows must be [B], got " + rows.shape.str());
    TapeBackend backend{*this, ctx, trace};
    Var<T> x = forward::encode(backend, kept_ids, contrastive, prune ? rows : TensorView<const int32_t>{});
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
      layer.query.declare(params_, mha + ".query", D, D);
      layer.key.declare(params_, mha + ".key", D, D);
      layer.value.declare(params_, mha + ".value", D, D);
      if (c.uses_euler() && c.differential_rotation) {
        Shape phase_shape = c.delta_shape == DeltaShape::scalar ? Shape{} : Shape{D / 2};
        if (c.adaptation) {
          layer.delta = params_.declare(mha + ".euler.delta", phase_shape);
          if (c.euler_bias) layer.bias = params_.declare(mha + ".euler.b", phase_shape);
        }
        if (c.learnable_freq) layer.freq = params_.declare(mha + ".euler.freq", {D / 2});
        layer.w = params_.declare(mha + ".w", {D / 2});
      }
      layer.dense.declare(params_, mha + ".dense", D, D);
      layer.attention_norm.declare(params_, mha + ".LayerNorm", D, c.layer_norm_eps);
      layer.dense_1.declare(params_, prefix + ".feed_forward.dense_1", D, c.inner_size);
      layer.dense_2.declare(params_, prefix + ".feed_forward.dense_2", c.inner_size, D);
      layer.feed_forward_norm.declare(params_, prefix + ".feed_forward.LayerNorm", D, c.layer_norm_eps);
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
    for (const Layer& a : layers_) {
      for (const Linear<T>* linear : {&a.query, &a.key, &a.value, &a.dense}) linear->init(params_, rng, std);
      a.attention_norm.init(params_);
      for (const Linear<T>* linear : {&a.dense_1, &a.dense_2}) linear->init(params_, rng, std);
      a.feed_forward_norm.init(params_);
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
  FusedLayerInputs<T> fused_inputs(const Context<T>& ctx, const Layer& a, bool want_contrastive) const {
    FusedLayerInputs<T> in;
    in.wq = ctx.param(a.query.weight), in.bq = ctx.param(a.query.bias);
    in.wk = ctx.param(a.key.weight), in.bk = ctx.param(a.key.bias);
    in.wv = ctx.param(a.value.weight), in.bv = ctx.param(a.value.bias);
    in.wd = ctx.param(a.dense.weight), in.bd = ctx.param(a.dense.bias);
    in.g1 = ctx.param(a.attention_norm.weight), in.be1 = ctx.param(a.attention_norm.bias);
    in.w1 = ctx.param(a.dense_1.weight), in.b1 = ctx.param(a.dense_1.bias);
    in.w2 = ctx.param(a.dense_2.weight), in.b2 = ctx.param(a.dense_2.bias);
    in.g2 = ctx.param(a.feed_forward_norm.weight), in.be2 = ctx.param(a.feed_forward_norm.bias);
    if (a.delta >= 0) in.delta = ctx.param(a.delta);
    if (a.bias >= 0) in.bias = ctx.param(a.bias);
    if (a.w >= 0 && want_contrastive && fused_spec(true).contrastive) in.w = ctx.param(a.w);
    return in;
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

  // What model/forward.hpp reads of the configuration.
  static ForwardSettings forward_settings(const EulerFormerConfig& c) {
    ForwardSettings s;
    s.layers = c.n_layers, s.heads = c.n_heads, s.hidden = c.hidden_size, s.inner = c.inner_size;
    s.hidden_dropout = c.hidden_dropout_prob, s.attn_dropout = c.attn_dropout_prob;
    s.position_table = c.has_position_table();
    s.sinusoid = c.pos == PosScheme::sinusoidal;
    s.rotary_table = c.pos == PosScheme::euler && c.input_rotary;
    s.rope = c.pos == PosScheme::rope;
    s.euler_rotation = c.uses_euler() && c.differential_rotation;
    return s;
  }

  // The CPU tape as the backend of model/forward.hpp: each call puts this model's parameters on the tape
  // and records one op (or, for a layer the fused path can run, one fused node).
  struct TapeBackend {
    using Var = euler::Var<T>;
    using Ids = TensorView<const int32_t>;
    using Rows = TensorView<const int32_t>;
    using Mask = TensorView<const T>;
    using Layer = EulerFormer::Layer;
    const EulerFormer& m;
    const Context<T>& ctx;
    Trace<T>* trace;  // filled when given (and then every layer is composed)

    const ForwardSettings& settings() const { return m.settings_; }
    const Layer& layer(int l) const { return m.layers_[size_t(l)]; }
    Var item_embedding(Ids ids) const { return m.item_embedding_.forward(ctx, ids, m.config_.padding_idx ? 0 : -1); }
    Var position_rows(int64_t N) const { return first_rows(ctx.param(m.position_embedding_), N); }
    Var sinusoid_rows(int64_t N) const { return ctx.tape.constant(rows_of(m.sinusoid_, N), "sinusoid"); }
    Var rotary_rows(int64_t N) const { return first_rows(ctx.param(m.rotary_embedding_), N); }
    Var input_norm(Var x) const { return m.input_norm_.forward(ctx, x); }
    Var linear(const Linear<T>& l, Var x, int64_t /*out: l knows it*/) const { return l.forward(ctx, x); }
    Var norm(const LayerNorm<T>& n, Var x) const { return n.forward(ctx, x); }
    Var activation(Var x) const { return m.config_.hidden_act == Activation::gelu ? gelu(x) : relu(x); }
    Var dropout(Var x, double p) const { return ctx.dropout(x, p); }
    Var phase_param(int index, const char* /*name*/) const { return ctx.param(index); }
    Var param_w(int index) const { return ctx.param(index); }
    // The positional angle [N, D/2]: alpha, or j g_t with the layer's learnable frequencies g.
    Var angles(const Layer& a, int64_t N) const {
      if (a.freq < 0) return ctx.tape.constant(rows_of(m.alpha_, N), "alpha");
      Var positions = ctx.tape.constant(rows_of(m.positions_, N), "positions");  // [N, 1]
      return matmul(positions, reshape(ctx.param(a.freq), Shape{1, m.settings_.hidden / 2}));
    }
    Var scaled_scores(Var qh, Var kh, double scale) const { return matmul(qh, kh, false, true) * T(scale); }
    Var phase_contrastive(Var phase, Var w, Ids ids) const {
      const EulerFormerConfig& c = m.config_;
      return phase_contrastive_loss(ctx, phase, w, ids, c.tep, c.lamb, c.contrastive_mode);
    }
    // Additive mask [B, 1, N, N]: 0 where key_visible (forward.hpp), kHiddenKeyLogit elsewhere.
    Mask attention_mask(Ids ids) const {
      int64_t B = ids.shape[0], N = ids.shape[1];
      bool causal = m.config_.backbone == Backbone::sasrec;
      TensorView<T> mask = ctx.tape.alloc(Shape{B, 1, N, N});
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < N; ++t)
          for (int64_t s = 0; s < N; ++s)
            mask[(b * N + t) * N + s] = key_visible(ids.data + b * N, s, t, causal) ? T(0) : T(kHiddenKeyLogit);
      return {mask.shape, mask.data};
    }
    // Rows [B, 1, 1, N] of the mask [B, 1, N, N]: row rows[b] of list b.
    Mask mask_rows(Mask mask, Rows rows) const {
      int64_t B = mask.shape[0], N = mask.shape[3];
      TensorView<T> picked = ctx.tape.alloc(Shape{B, 1, 1, N});
      for (int64_t b = 0; b < B; ++b) std::copy_n(mask.data + (b * N + rows[b]) * N, N, picked.data + b * N);
      return {picked.shape, picked.data};
    }
    // Layer l as one fused node (fused_layer.hpp) when the model runs fused, nothing traces it and its
    // frequencies are fixed; false leaves it to forward::attend and forward::feed_forward.
    bool fused_layer(int l, Var& x, Ids ids, Var* contrastive, Rows rows) const {
      const Layer& a = layer(l);
      if (!m.fused_ || trace || a.freq >= 0) return false;
      const int64_t N = ids.shape[1];
      const bool want_contrastive = contrastive != nullptr;
      FusedLayerOutputs<T> out = euler::fused_layer(ctx, m.fused_spec(want_contrastive), m.fused_inputs(ctx, a, want_contrastive), x,
                                                    ids, rows_of_const(m.alpha_, N), rows);
      x = out.out;
      if (out.contrastive.tape) *contrastive = *contrastive + out.contrastive;
      return true;
    }
    // The authors' code takes atan2 of the rotated q and k: theta~ up to multiples of 2 pi, which the
    // loss cannot see (it reads cos and sin of the phases and of twice the phases), with the same
    // gradients. The trace keeps the atan2 values, in [-pi, pi].
    void trace_phases(Var q, Var k) const {
      if (!trace) return;
      trace->query_phase.push_back(complex_arg(q));
      trace->key_phase.push_back(complex_arg(k));
    }
    void trace_attention(Var logits, Var attention) const {
      if (!trace) return;
      trace->attention_logits.push_back(logits);
      trace->attention.push_back(attention);
    }
  };

  EulerFormerConfig config_;
  Parameters<T> params_;
  Embedding<T> item_embedding_;                          // shared by the input and the output scores
  int position_embedding_ = -1, rotary_embedding_ = -1;  // -1: absent for this positional scheme
  LayerNorm<T> input_norm_;
  std::vector<Layer> layers_;
  ForwardSettings settings_;
  Tensor<T> alpha_, sinusoid_, positions_;
  bool fused_ = false;
  int64_t keep_bytes_ = FusedLayerSpec{}.keep_bytes;
};

}  // namespace euler
