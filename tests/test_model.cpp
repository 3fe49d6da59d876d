// EulerFormer as a whole: gradients of every parameter (double, finite differences) for every
// positional scheme and both backbones, RoPE as the special case, causality, padding, the config.
#include <doctest/doctest.h>

#include <euler/eulerformer.hpp>

namespace test_model {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

EulerFormerConfig tiny(Backbone backbone, PosScheme pos) {
  EulerFormerConfig c;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.max_len = 6;
  c.n_items = 11;
  c.backbone = backbone;
  c.pos = pos;
  c.lamb = 0.5;  // large, so that a wrong contrastive gradient would show
  c.init_factor = 0.7;
  c.initializer_range = 0.3;  // larger weights: gradients of every parameter well above rounding
  return c;
}

// Two right-padded lists (the second full) and their targets for the given backbone and objective.
struct TinyBatch {
  std::vector<int32_t> ids, targets;
  Batch batch(const EulerFormerConfig& c) const {
    int64_t N = 6;
    bool per_position = c.backbone == Backbone::bert4rec || c.objective == Objective::all;
    return {{Shape{2, N}, ids.data()}, {per_position ? Shape{2, N} : Shape{2}, targets.data()}};
  }
};
TinyBatch tiny_batch(const EulerFormerConfig& c) {
  TinyBatch t;
  if (c.backbone == Backbone::bert4rec) {
    int32_t m = c.mask_token();
    t.ids = {1, m, 3, 0, 0, 0, 4, 5, m, 7, m, 9};
    t.targets = {0, 2, 0, 0, 0, 0, 0, 0, 6, 0, 8, 0};
  } else if (c.objective == Objective::all) {
    t.ids = {1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9};
    t.targets = {2, 3, 4, 0, 0, 0, 5, 6, 7, 8, 9, 10};
  } else {
    t.ids = {1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9};
    t.targets = {4, 10};
  }
  return t;
}

// Finite-difference check of d(total loss)/d(every parameter).
check::GradcheckResult model_gradcheck(const EulerFormerConfig& c, bool dropout_on) {
  EulerFormer<double> model(c, 11);
  // Move the EulerFormer scalars off their initial values so no symmetry hides an error.
  Parameters<double>& p = model.parameters();
  for (const auto& e : p.entries())
    if (e.name.find("euler.b") != std::string::npos || e.name.find("rotary_embedding") != std::string::npos)
      for (double& v : p.value(p.index(e.name))) v = 0.3 + 0.1 * double(&v - p.value(p.index(e.name)).data);
  TinyBatch tb = tiny_batch(c);
  std::vector<check::Wrt> wrt;
  for (int i = 0; i < p.count(); ++i) wrt.push_back({p.entry(i).name, p.value(i), p.grad(i)});
  auto forward = [&](Tape<double>& tape) {
    Rng rng(5);  // the same dropout masks in every evaluation
    Context<double> ctx{tape, p, dropout_on, rng};
    return model.loss(ctx, tb.batch(c)).total;
  };
  return check::gradcheck_wrt(forward, wrt);
}

}  // namespace

TEST_CASE("whole-model gradcheck: every positional scheme, both backbones, contrastive loss on") {
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec})
    for (PosScheme pos : {PosScheme::none, PosScheme::learned, PosScheme::sinusoidal, PosScheme::rope, PosScheme::euler}) {
      EulerFormerConfig c = tiny(backbone, pos);
      CAPTURE(to_string(backbone));
      CAPTURE(to_string(pos));
      auto r = model_gradcheck(c, false);
      INFO(r.report);
      CHECK(r.ok);
      CHECK(r.elements == EulerFormer<double>(c).parameters().numel());
    }
}

TEST_CASE("whole-model gradcheck: EulerFormer variants and dropout with fixed masks") {
  EulerFormerConfig base = tiny(Backbone::sasrec, PosScheme::euler);
  base.n_layers = 1;  // one layer is enough to reach every variant's code; keeps the suite fast
  std::vector<std::pair<std::string, EulerFormerConfig>> variants;
  auto add = [&](std::string name, auto change) {
    EulerFormerConfig c = base;
    change(c);
    variants.push_back({name, c});
  };
  add("vector delta", [](EulerFormerConfig& c) { c.delta_shape = DeltaShape::vector; });
  add("no bias", [](EulerFormerConfig& c) { c.euler_bias = false; });
  add("masked contrastive", [](EulerFormerConfig& c) { c.contrastive_mode = ContrastiveMode::masked; });
  add("objective all", [](EulerFormerConfig& c) { c.objective = Objective::all; });
  add("learnable frequencies", [](EulerFormerConfig& c) { c.learnable_freq = true; c.adaptation = false; });
  add("no differential rotation", [](EulerFormerConfig& c) { c.differential_rotation = false; });
  add("no psi", [](EulerFormerConfig& c) { c.input_rotary = false; });
  add("no absolute positions", [](EulerFormerConfig& c) { c.absolute_positions = false; });
  add("relu, 1 head", [](EulerFormerConfig& c) { c.hidden_act = Activation::relu; c.n_heads = 1; });
  for (auto& [name, c] : variants) {
    CAPTURE(name);
    auto r = model_gradcheck(c, false);
    INFO(r.report);
    CHECK(r.ok);
  }
  auto r = model_gradcheck(base, true);  // dropout on everywhere, same masks each evaluation
  INFO(r.report);
  CHECK(r.ok);
}

TEST_CASE("the pruned last layer (one row per list) gives the full model's values and gradients") {
  // loss() with objective 'last' and score() compute the last layer for one row per list; a trace
  // turns that off. Both ways must agree (dropout off: the masks would differ in size).
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec})
    for (PosScheme pos : {PosScheme::learned, PosScheme::rope, PosScheme::euler}) {
      EulerFormerConfig c = tiny(backbone, pos);
      CAPTURE(to_string(backbone));
      CAPTURE(to_string(pos));
      EulerFormer<double> model(c, 3);
      Parameters<double>& p = model.parameters();
      TinyBatch tb = tiny_batch(c);
      auto run = [&](bool with_trace, std::vector<double>& grads) {
        Tape<double> tape;
        Rng rng(1);
        Context<double> ctx{tape, p, false, rng};
        Trace<double> trace;
        p.zero_grad();
        Losses<double> l = model.loss(ctx, tb.batch(c), with_trace ? &trace : nullptr);
        tape.backward(l.total);
        auto g = p.grads();
        grads.assign(g.begin(), g.end());
        return l.total.value()[0];
      };
      std::vector<double> pruned_grads, full_grads;
      double pruned = run(false, pruned_grads), full = run(true, full_grads);
      CHECK(pruned == doctest::Approx(full).epsilon(1e-12));
      double worst = 0;
      for (size_t i = 0; i < full_grads.size(); ++i) worst = std::max(worst, std::abs(pruned_grads[i] - full_grads[i]));
      CHECK(worst < 1e-12);
      // score(): the hidden state at the read position of the full encoder, against the item table.
      Tape<double> tape;
      Rng rng(1);
      Context<double> ctx{tape, p, false, rng};
      TensorView<const int32_t> ids = tb.batch(c).ids;
      if (backbone == Backbone::bert4rec) continue;  // score() rewrites the list first (mask token)
      Var<double> scores = model.score(ctx, ids);
      Var<double> hidden = model.encode(ctx, ids);
      std::vector<int32_t> last = {2, 5};
      Var<double> expected = matmul(gather_rows(hidden, TensorView<const int32_t>{Shape{2}, last.data()}),
                                    ctx.param(p.index("item_embedding.weight")), false, true);
      for (int64_t i = 0; i < scores.numel(); ++i) CHECK(scores.value()[i] == doctest::Approx(expected.value()[i]).epsilon(1e-12));
    }
}

TEST_CASE("RoPE is the special case delta = 1, b = 0, psi = 0 of EulerFormer") {
  // With the absolute position table zeroed, or without one (absolute_positions off).
  for (bool absolute : {true, false}) {
    CAPTURE(absolute);
    EulerFormerConfig ce = tiny(Backbone::sasrec, PosScheme::euler);
    ce.init_factor = 1.0;  // delta = 1; b starts at 0 and psi at 0
    ce.absolute_positions = absolute;
    EulerFormerConfig cr = ce;
    cr.pos = PosScheme::rope;
    cr.absolute_positions = true;
    EulerFormer<double> euler_model(ce, 3), rope_model(cr, 4);
    // Same weights for every parameter both have.
    auto& pe = euler_model.parameters();
    auto& pr = rope_model.parameters();
    for (const auto& e : pr.entries()) std::copy(pr.value(pr.index(e.name)).begin(), pr.value(pr.index(e.name)).end(), pe.value(e.name).begin());
    CHECK(pe.contains("position_embedding.weight") == absolute);
    if (absolute)
      for (double& v : pe.value("position_embedding.weight")) v = 0;
    std::vector<int32_t> ids = {1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9};
    TensorView<const int32_t> idv{Shape{2, 6}, ids.data()};
    Tape<double> t1, t2;
    Rng rng(1);
    Trace<double> tr_euler, tr_rope;
    Context<double> c1{t1, pe, false, rng}, c2{t2, pr, false, rng};
    Var<double> h1 = euler_model.encode(c1, idv, nullptr, &tr_euler);
    Var<double> h2 = rope_model.encode(c2, idv, nullptr, &tr_rope);
    REQUIRE(tr_euler.attention_logits.size() == 2);
    for (size_t l = 0; l < 2; ++l) {
      auto a = tr_euler.attention_logits[l].value(), b = tr_rope.attention_logits[l].value();
      double worst = 0;
      for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
      CHECK(worst < 1e-6);
    }
    double worst = 0;
    for (int64_t i = 0; i < h1.numel(); ++i) worst = std::max(worst, std::abs(h1.value()[i] - h2.value()[i]));
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("a scalar delta equals a constant vector delta") {
  EulerFormerConfig cs = tiny(Backbone::sasrec, PosScheme::euler), cv = cs;
  cv.delta_shape = DeltaShape::vector;
  EulerFormer<double> ms(cs, 9), mv(cv, 9);
  auto& ps = ms.parameters();
  auto& pv = mv.parameters();
  for (const auto& e : ps.entries()) {
    auto src = ps.value(ps.index(e.name));
    auto dst = pv.value(e.name);
    for (int64_t i = 0; i < dst.numel(); ++i) dst[i] = src[src.numel() == 1 ? 0 : i];
  }
  TinyBatch tb = tiny_batch(cs);
  Tape<double> t1, t2;
  Rng r1(2), r2(2);
  Context<double> c1{t1, ps, false, r1}, c2{t2, pv, false, r2};
  double l1 = ms.loss(c1, tb.batch(cs)).total.value()[0];
  double l2 = mv.loss(c2, tb.batch(cv)).total.value()[0];
  CHECK(l1 == doctest::Approx(l2).epsilon(1e-12));
}

TEST_CASE("SASRec is causal: the output at t ignores items after t") {
  for (PosScheme pos : {PosScheme::learned, PosScheme::rope, PosScheme::euler}) {
    EulerFormerConfig c = tiny(Backbone::sasrec, pos);
    EulerFormer<double> model(c, 5);
    std::vector<int32_t> a = {1, 2, 3, 4, 5, 6}, b = {1, 2, 3, 9, 10, 7};
    Tape<double> tape;
    Rng rng(1);
    Context<double> ctx{tape, model.parameters(), false, rng};
    auto ha = model.encode(ctx, {Shape{1, 6}, a.data()}).value();
    auto hb = model.encode(ctx, {Shape{1, 6}, b.data()}).value();
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t d = 0; d < 8; ++d) CHECK(ha.at({0, t, d}) == doctest::Approx(hb.at({0, t, d})).epsilon(1e-12));
    CHECK(std::abs(ha.at({0, 3, 0}) - hb.at({0, 3, 0})) > 1e-6);  // and does see item t itself
  }
}

TEST_CASE("padding: a padded list has the representation of the same list unpadded") {
  for (Backbone backbone : {Backbone::sasrec, Backbone::bert4rec})
    for (PosScheme pos : {PosScheme::learned, PosScheme::euler}) {
      EulerFormerConfig c = tiny(backbone, pos);
      EulerFormer<double> model(c, 8);
      std::vector<int32_t> padded = {3, 1, 4, 0, 0, 0}, unpadded = {3, 1, 4};
      Tape<double> tape;
      Rng rng(1);
      Context<double> ctx{tape, model.parameters(), false, rng};
      auto hp = model.encode(ctx, {Shape{1, 6}, padded.data()}).value();
      auto hu = model.encode(ctx, {Shape{1, 3}, unpadded.data()}).value();
      for (int64_t t = 0; t < 3; ++t)
        for (int64_t d = 0; d < 8; ++d) CHECK(hp.at({0, t, d}) == doctest::Approx(hu.at({0, t, d})).epsilon(1e-12));
      // and the scores for the next item agree
      auto sp = model.score(ctx, {Shape{1, 6}, padded.data()}).value();
      std::vector<int32_t> four = {3, 1, 4, 0};
      auto s4 = model.score(ctx, {Shape{1, 4}, four.data()}).value();
      for (int64_t k = 0; k < 11; ++k) CHECK(sp[k] == doctest::Approx(s4[k]).epsilon(1e-12));
    }
}

TEST_CASE("config: defaults, JSON round trip with RecBole keys, clear errors") {
  EulerFormerConfig c;
  CHECK(c.n_layers == 2);
  CHECK(c.hidden_size == 64);
  CHECK(c.inner_size == 256);
  CHECK(c.layer_norm_eps == 1e-12);
  CHECK(c.max_len == 50);
  CHECK(c.pos == PosScheme::euler);
  c.n_items = 100;
  c.pos = PosScheme::rope;
  auto j = c.to_json();
  for (const char* key : {"n_layers", "n_heads", "hidden_size", "inner_size", "hidden_dropout_prob", "attn_dropout_prob",
                          "hidden_act", "layer_norm_eps", "MAX_ITEM_LIST_LENGTH", "init_factor", "euler_bias", "tep", "lamb",
                          "n_items", "backbone", "pos", "delta_shape", "objective", "absolute_positions", "padding_idx"})
    CHECK_MESSAGE(j.contains(key), key);
  EulerFormerConfig back = EulerFormerConfig::from_json(j);
  CHECK(back.to_json() == j);
  EulerFormerConfig partial = EulerFormerConfig::from_json(nlohmann::json{{"n_items", 7}});
  CHECK(partial.n_items == 7);
  CHECK(partial.hidden_size == 64);
  CHECK(partial.absolute_positions);  // a checkpoint written before the key existed keeps its table
  EulerFormerConfig relative = EulerFormerConfig::from_json(nlohmann::json{{"n_items", 7}, {"absolute_positions", false}});
  CHECK_FALSE(relative.absolute_positions);
  CHECK(EulerFormerConfig::from_json(relative.to_json()).to_json() == relative.to_json());
  relative.validate();
  relative.pos = PosScheme::rope;
  CHECK_THROWS_WITH_AS(relative.validate(), doctest::Contains("absolute_positions = false applies to pos euler only, got pos rope"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(EulerFormerConfig::from_json({{"hiden_size", 8}}), doctest::Contains("unknown key 'hiden_size'"), ConfigError);
  CHECK_THROWS_WITH_AS(EulerFormerConfig::from_json({{"pos", "rotary"}}),
                       doctest::Contains("'rotary' is not one of none|learned|sinusoidal|rope|euler"), ConfigError);
  CHECK_THROWS_WITH_AS(EulerFormerConfig::from_json({{"n_layers", "two"}}), doctest::Contains("'n_layers' must be an integer"), ConfigError);
  EulerFormerConfig bad;
  bad.n_items = 10;
  bad.hidden_size = 10;
  bad.n_heads = 3;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("not divisible by n_heads"), ConfigError);
  bad.n_heads = 2;
  bad.hidden_dropout_prob = 1.5;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("hidden_dropout_prob"), ConfigError);
}

TEST_CASE("parameter names and shapes follow the authors' modules") {
  EulerFormerConfig c;
  c.n_items = 3417;
  EulerFormer<float> model(c);
  auto& p = model.parameters();
  CHECK(p.value("item_embedding.weight").shape == Shape{3417, 64});
  CHECK(p.value("position_embedding.weight").shape == Shape{50, 64});
  CHECK(p.value("rotary_embedding.weight").shape == Shape{50, 32});
  CHECK(p.value("trm_encoder.layer.1.multi_head_attention.query.weight").shape == Shape{64, 64});
  CHECK(p.value("trm_encoder.layer.0.multi_head_attention.euler.delta").shape == Shape{});
  CHECK(p.value("trm_encoder.layer.0.multi_head_attention.w").shape == Shape{32});
  CHECK(p.value("trm_encoder.layer.1.feed_forward.dense_1.weight").shape == Shape{256, 64});
  CHECK(p.value("trm_encoder.layer.1.feed_forward.LayerNorm.bias").shape == Shape{64});
  CHECK(p.value("trm_encoder.layer.0.multi_head_attention.euler.delta")[0] == 1.0f);
  CHECK(p.value("trm_encoder.layer.0.multi_head_attention.w")[5] == 1.0f);
}

}  // namespace test_model
