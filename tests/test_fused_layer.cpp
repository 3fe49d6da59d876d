// The fused transformer layer (euler/model/fused_layer.hpp) against the composed one (model/forward.hpp's
// attend and feed_forward): the same losses, the same gradient for every parameter, and the same
// random draws, in double precision, over the positional schemes, both backbones, both objectives,
// dropout on and off, the EulerFormer variants, padded lists, and several tiles per batch; scores in
// evaluation; and a whole-model finite-difference check with the fused layer and dropout on.
#include <doctest/doctest.h>

#include <euler/eulerformer.hpp>

#include <algorithm>
#include <random>

namespace test_fused_layer {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

EulerFormerConfig small_config(Backbone backbone, PosScheme pos, int N) {
  EulerFormerConfig c;
  c.hidden_size = 8;
  c.inner_size = 12;
  c.n_layers = 2;
  c.n_heads = 2;
  c.max_len = N;
  c.n_items = 23;
  c.backbone = backbone;
  c.pos = pos;
  c.lamb = 0.5;  // large, so that the contrastive gradient matters
  c.init_factor = 0.7;
  c.initializer_range = 0.3;
  c.hidden_dropout_prob = 0.3;
  c.attn_dropout_prob = 0.2;
  return c;
}

// B lists of length N, right-padded to random lengths (one all-padding list, one full), with targets.
struct RandomBatch {
  std::vector<int32_t> ids, targets;
  int64_t B, N;
  bool per_position;
  Batch batch() const {
    return {{Shape{B, N}, ids.data()}, {per_position ? Shape{B, N} : Shape{B}, targets.data()}};
  }
};

RandomBatch random_batch(const EulerFormerConfig& c, int64_t B, uint64_t seed) {
  std::mt19937_64 gen(seed);
  const int64_t N = c.max_len;
  RandomBatch r{{}, {}, B, N, c.backbone == Backbone::bert4rec || c.objective == Objective::all};
  r.ids.assign(size_t(B * N), 0);
  r.targets.assign(size_t(r.per_position ? B * N : B), 0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t length = b == 0 ? N : b == 1 ? 0 : int64_t(1 + gen() % uint64_t(N));
    for (int64_t j = 0; j < length; ++j) {
      int32_t item = int32_t(1 + gen() % uint64_t(c.n_items - 1));
      bool masked = c.backbone == Backbone::bert4rec && gen() % 3 == 0;
      r.ids[size_t(b * N + j)] = masked ? c.mask_token() : item;
      if (r.per_position) r.targets[size_t(b * N + j)] = c.backbone == Backbone::bert4rec ? (masked ? item : 0) : int32_t(1 + gen() % uint64_t(c.n_items - 1));
    }
    if (!r.per_position) r.targets[size_t(b)] = length ? int32_t(1 + gen() % uint64_t(c.n_items - 1)) : 0;
  }
  return r;
}

struct Run {
  double total = 0, ce = 0, contrastive = 0;
  std::vector<double> grads;
  uint64_t draws = 0;
};

// fused: the fused layer, which keeps its tiles' intermediates for backward (these batches are small);
// recompute: the fused layer computing them again in backward (keep_bytes 0, as for large batches).
enum class Layer { fused, recompute, composed };
// Which loss backward starts from.
enum class From { total, ce, contrastive };

// (In float too: Run holds the values widened to double, which is exact.)
template <class T>
Run run(EulerFormer<T>& model, const RandomBatch& rb, Layer layer, bool dropout_on, From from = From::total) {
  model.set_fused(layer != Layer::composed);
  model.set_keep_bytes(layer == Layer::recompute ? 0 : FusedLayerSpec{}.keep_bytes);
  Parameters<T>& p = model.parameters();
  p.zero_grad();
  Tape<T> tape;
  Rng rng(77);
  Context<T> ctx{tape, p, dropout_on, rng};
  Losses<T> l = model.loss(ctx, rb.batch());
  tape.backward(from == From::total ? l.total : from == From::ce ? l.ce : l.contrastive);
  Run r{l.total.value()[0], l.ce.value()[0], l.contrastive.value()[0], {}, rng.counter()};
  r.grads.assign(p.grads().begin(), p.grads().end());
  model.set_keep_bytes(FusedLayerSpec{}.keep_bytes);
  return r;
}

// Every parameter's gradient, fused against composed, relative to the largest of that parameter.
void check_same(const EulerFormer<double>& model, const Run& fused, const Run& composed) {
  CHECK(fused.total == doctest::Approx(composed.total).epsilon(1e-12));
  CHECK(fused.ce == doctest::Approx(composed.ce).epsilon(1e-12));
  CHECK(fused.contrastive == doctest::Approx(composed.contrastive).epsilon(1e-12));
  CHECK(fused.draws == composed.draws);
  const Parameters<double>& p = model.parameters();
  double largest_all = 0;
  for (const auto& e : p.entries()) {
    double largest = 0, worst = 0;
    for (int64_t i = 0; i < e.shape.numel(); ++i) {
      double a = fused.grads[size_t(e.offset + i)], b = composed.grads[size_t(e.offset + i)];
      largest = std::max(largest, std::abs(b));
      worst = std::max(worst, std::abs(a - b));
    }
    largest_all = std::max(largest_all, largest);
    CAPTURE(e.name);
    CHECK(worst <= 1e-10 * std::max(1.0, largest));
  }
  CHECK(largest_all > 1e-3);  // not a comparison of zeros
}

// The three ways: fused (kept and recomputed: the same bits) and composed (the same values).
void check_all(EulerFormer<double>& model, const RandomBatch& rb, bool dropout_on) {
  Run kept = run(model, rb, Layer::fused, dropout_on), recomputed = run(model, rb, Layer::recompute, dropout_on);
  Run composed = run(model, rb, Layer::composed, dropout_on);
  CHECK(kept.total == recomputed.total);
  CHECK(kept.grads == recomputed.grads);
  check_same(model, kept, composed);
}

}  // namespace

TEST_CASE("fused layer == composed layer: every scheme, both backbones and objectives, dropout on and off") {
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec})
    for (PosScheme pos : {PosScheme::none, PosScheme::learned, PosScheme::sinusoidal, PosScheme::rope, PosScheme::euler})
      for (Objective objective : {Objective::last, Objective::all})
        for (bool dropout_on : {false, true}) {
          if (backbone == Backbone::bert4rec && objective == Objective::all) continue;  // one objective there
          EulerFormerConfig c = small_config(backbone, pos, 7);
          c.objective = objective;
          CAPTURE(to_string(backbone));
          CAPTURE(to_string(pos));
          CAPTURE(to_string(objective));
          CAPTURE(dropout_on);
          EulerFormer<double> model(c, 3);
          RandomBatch rb = random_batch(c, 11, 9);  // 11 lists of 7: several tiles only with more lists; see below
          check_all(model, rb, dropout_on);
        }
}

TEST_CASE("fused layer == composed layer: EulerFormer variants, many tiles, lengths not a multiple of anything") {
  EulerFormerConfig base = small_config(Backbone::sasrec, PosScheme::euler, 13);
  std::vector<std::pair<std::string, EulerFormerConfig>> variants;
  auto add = [&](std::string name, auto change) {
    EulerFormerConfig c = base;
    change(c);
    variants.push_back({name, c});
  };
  add("default", [](EulerFormerConfig&) {});
  add("vector delta", [](EulerFormerConfig& c) { c.delta_shape = DeltaShape::vector; });
  add("no bias", [](EulerFormerConfig& c) { c.euler_bias = false; });
  add("no adaptation", [](EulerFormerConfig& c) { c.adaptation = false; });
  add("masked contrastive, tep 0.5", [](EulerFormerConfig& c) { c.contrastive_mode = ContrastiveMode::masked; c.tep = 0.5; });
  add("no contrastive loss", [](EulerFormerConfig& c) { c.lamb = 0; });  // objective last: q only at the last rows
  add("no contrastive loss, vector delta", [](EulerFormerConfig& c) { c.lamb = 0; c.delta_shape = DeltaShape::vector; });
  add("no differential rotation", [](EulerFormerConfig& c) { c.differential_rotation = false; });
  add("relu, 1 head, 3 layers", [](EulerFormerConfig& c) { c.hidden_act = Activation::relu; c.n_heads = 1; c.n_layers = 3; });
  add("objective all", [](EulerFormerConfig& c) { c.objective = Objective::all; });
  for (auto& [name, c] : variants)
    for (bool dropout_on : {false, true}) {
      CAPTURE(name);
      CAPTURE(dropout_on);
      EulerFormer<double> model(c, 5);
      // 45 lists of 13: 19 lists per tile (fused_tile_lists), so three tiles, the last one short.
      RandomBatch rb = random_batch(c, 45, 21);
      check_all(model, rb, dropout_on);
    }
}

TEST_CASE("fused layer: the same bits for a given thread count, and the same values within rounding for others") {
  // (kept or recomputed intermediates give the same bits too: check_all above, and 3 threads here)
  EulerFormerConfig c = small_config(Backbone::sasrec, PosScheme::euler, 9);
  EulerFormer<double> model(c, 8);
  RandomBatch rb = random_batch(c, 70, 4);
  int previous = num_threads();
  set_num_threads(1);
  Run one = run(model, rb, Layer::fused, true), one_again = run(model, rb, Layer::fused, true);
  set_num_threads(2);
  Run a = run(model, rb, Layer::fused, true), again = run(model, rb, Layer::fused, true);
  set_num_threads(3);
  Run b = run(model, rb, Layer::fused, true), b_recomputed = run(model, rb, Layer::recompute, true);
  set_num_threads(previous);
  CHECK(b.grads == b_recomputed.grads);
  CHECK(one.grads == one_again.grads);
  CHECK(a.total == again.total);
  for (const auto& e : model.parameters().entries()) {
    bool same = std::equal(a.grads.begin() + e.offset, a.grads.begin() + e.offset + e.shape.numel(), again.grads.begin() + e.offset);
    CAPTURE(e.name);
    CHECK(same);
  }
  CHECK(a.total == doctest::Approx(b.total).epsilon(1e-12));
  for (size_t i = 0; i < a.grads.size(); ++i) REQUIRE(std::abs(a.grads[i] - b.grads[i]) < 1e-10);
}

TEST_CASE("fused layer in float: kept intermediates, written in place, give the bits of recomputed ones") {
  // Forward writes what backward reads straight into the layer's kept memory, one block per tile and
  // matrix (fused_detail::bind_kept), or into the tile's own memory when nothing is kept. Odd sizes
  // (hidden 12, 7 positions, 61 lists: a full tile and a shorter last one) make blocks that are not
  // whole SIMD packets; a block overlapping the next, or bound to another tile's memory, changes the
  // bits. Float is the precision training runs in.
  EulerFormerConfig c = small_config(Backbone::sasrec, PosScheme::euler, 7);
  c.hidden_size = 12;
  c.inner_size = 20;
  EulerFormer<float> model(c, 5);
  RandomBatch rb = random_batch(c, 61, 8);
  Run kept = run(model, rb, Layer::fused, true), recomputed = run(model, rb, Layer::recompute, true);
  CHECK(kept.total == recomputed.total);
  CHECK(kept.grads == recomputed.grads);
  CHECK(std::any_of(kept.grads.begin(), kept.grads.end(), [](double g) { return std::abs(g) > 1e-3; }));
}

TEST_CASE("fused layer: scores in evaluation equal the composed model's") {
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec})
    for (PosScheme pos : {PosScheme::learned, PosScheme::rope, PosScheme::euler}) {
      EulerFormerConfig c = small_config(backbone, pos, 8);
      EulerFormer<double> model(c, 6);
      RandomBatch rb = random_batch(c, 30, 2);
      std::vector<std::vector<double>> scores;
      for (bool fused : {true, false}) {
        model.set_fused(fused);
        Tape<double> tape;
        Rng rng(1);
        NoGrad<double> no_grad(tape);
        Context<double> ctx{tape, model.parameters(), false, rng};
        Var<double> s = model.score(ctx, rb.batch().ids);
        scores.emplace_back(s.value().begin(), s.value().end());
      }
      double worst = 0;
      for (size_t i = 0; i < scores[0].size(); ++i) worst = std::max(worst, std::abs(scores[0][i] - scores[1][i]));
      CAPTURE(to_string(backbone));
      CAPTURE(to_string(pos));
      CHECK(worst < 1e-12);
    }
}

TEST_CASE("fused layer: whole-model gradcheck with dropout on (fixed masks) and the contrastive loss") {
  for (Objective objective : {Objective::last, Objective::all}) {
    EulerFormerConfig c = small_config(Backbone::sasrec, PosScheme::euler, 5);
    c.objective = objective;
    c.delta_shape = DeltaShape::vector;
    EulerFormer<double> model(c, 13);
    model.set_fused(true);
    Parameters<double>& p = model.parameters();
    for (const auto& e : p.entries())  // move the zero-initialised tables off zero
      if (e.name.find("euler.b") != std::string::npos || e.name.find("rotary_embedding") != std::string::npos)
        for (double& v : p.value(p.index(e.name))) v = 0.2 + 0.05 * double(&v - p.value(p.index(e.name)).data);
    RandomBatch rb = random_batch(c, 6, 31);
    std::vector<check::Wrt> wrt;
    for (int i = 0; i < p.count(); ++i) wrt.push_back({p.entry(i).name, p.value(i), p.grad(i)});
    auto forward = [&](Tape<double>& tape) {
      Rng rng(5);
      Context<double> ctx{tape, p, true, rng};
      return model.loss(ctx, rb.batch()).total;
    };
    CHECK(model.fused());
    auto r = check::gradcheck_wrt(forward, wrt);
    CAPTURE(to_string(objective));
    INFO(r.report);
    CHECK(r.ok);
  }
}

TEST_CASE("composed layer: the same bits for a given thread count") {
  EulerFormerConfig c = small_config(Backbone::sasrec, PosScheme::euler, 9);
  EulerFormer<double> model(c, 8);
  RandomBatch rb = random_batch(c, 70, 4);
  int previous = num_threads();
  set_num_threads(2);
  Run a = run(model, rb, Layer::composed, true), again = run(model, rb, Layer::composed, true);
  set_num_threads(previous);
  CHECK(a.total == again.total);
  CHECK(a.grads == again.grads);
}

TEST_CASE("fused layer: a second backward on the same tape adds the same gradients again, as the composed layer") {
  EulerFormerConfig c = small_config(Backbone::sasrec, PosScheme::euler, 6);
  EulerFormer<double> model(c, 2);
  RandomBatch rb = random_batch(c, 9, 3);
  for (Layer layer : {Layer::fused, Layer::recompute, Layer::composed}) {
    model.set_fused(layer != Layer::composed);
    model.set_keep_bytes(layer == Layer::recompute ? 0 : FusedLayerSpec{}.keep_bytes);
    Parameters<double>& p = model.parameters();
    p.zero_grad();
    Tape<double> tape;
    Rng rng(4);
    Context<double> ctx{tape, p, true, rng};
    Losses<double> l = model.loss(ctx, rb.batch());
    tape.backward(l.total);
    std::vector<double> once(p.grads().begin(), p.grads().end());
    tape.backward(l.total);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < once.size(); ++i) {
      worst = std::max(worst, std::abs(p.grads()[int64_t(i)] - 2 * once[i]));
      largest = std::max(largest, std::abs(once[i]));
    }
    CAPTURE(int(layer));
    CHECK(worst <= 1e-12 * largest);
    CHECK(largest > 1e-3);
  }
}

TEST_CASE("fused layer: the cross-entropy alone and the contrastive loss alone each give the composed layer's gradients") {
  // The contrastive sum is a second output of the fused node: backward from it alone must still run
  // the layer's backward (its rows' gradient is zero), and backward from the cross-entropy alone must
  // leave the contrastive terms out.
  EulerFormerConfig c = small_config(Backbone::sasrec, PosScheme::euler, 7);
  EulerFormer<double> model(c, 6);
  RandomBatch rb = random_batch(c, 8, 12);
  for (From from : {From::ce, From::contrastive}) {
    std::vector<std::vector<double>> grads;
    for (Layer layer : {Layer::fused, Layer::recompute, Layer::composed}) grads.push_back(run(model, rb, layer, true, from).grads);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < grads[2].size(); ++i) {
      worst = std::max({worst, std::abs(grads[0][i] - grads[2][i]), std::abs(grads[1][i] - grads[2][i])});
      largest = std::max(largest, std::abs(grads[2][i]));
    }
    CAPTURE(int(from));
    CHECK(worst <= 1e-10 * std::max(1.0, largest));
    CHECK(largest > 1e-4);  // not a comparison of zeros
  }
}

}  // namespace test_fused_layer
