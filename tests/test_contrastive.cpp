// The phase contrastive loss (euler/model/contrastive.hpp): the fused node against the composed
// reference (values and gradients, both modes, with and without the dropout view), finite
// differences on the fused node, and its errors.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/eulerformer.hpp>

#include <random>

namespace test_contrastive {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

struct Case {
  Tensor<double> phases, w;
  std::vector<int32_t> ids;
};

// Phases over several turns (as theta~ is: unwrapped), weights around 1, and two padded lists.
Case make_case(int64_t B, int64_t N, int64_t h, uint64_t seed) {
  std::mt19937_64 gen(seed);
  Case c{Tensor<double>::uniform({B, N, h}, gen, -9.0, 9.0), Tensor<double>::uniform({h}, gen, 0.5, 1.5), {}};
  c.ids.assign(size_t(B * N), 1);
  for (int64_t t = N - 2; t < N; ++t) c.ids[size_t(t)] = 0;      // list 0 ends with two padding slots
  if (B > 1) c.ids[size_t(N + N - 1)] = 0;                       // list 1 with one
  return c;
}

struct Result {
  double loss;
  std::vector<double> d_phases, d_w;
};

template <class Loss>
Result run(const Case& c, ContrastiveMode mode, bool dropout_on, double tep, Loss&& loss_fn) {
  Tape<double> tape;
  Parameters<double> none;
  Rng rng(17);
  Context<double> ctx{tape, none, dropout_on, rng};
  Var<double> p = tape.input(c.phases), w = tape.input(c.w);
  TensorView<const int32_t> ids{Shape{c.phases.shape()[0], c.phases.shape()[1]}, c.ids.data()};
  Var<double> l = loss_fn(ctx, p, w, ids, tep, 0.7, mode);
  tape.backward(l);
  Result r{l.value()[0], {}, {}};
  r.d_phases.assign(p.grad().begin(), p.grad().end());
  r.d_w.assign(w.grad().begin(), w.grad().end());
  CHECK(rng.counter() == (dropout_on ? uint64_t(c.phases.numel()) : 0));
  return r;
}

double max_difference(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("phase contrastive loss: the fused node equals the composed reference, values and gradients") {
  Case c = make_case(3, 7, 5, 1);
  auto fused = [](auto&&... a) { return phase_contrastive_loss<double>(a...); };
  auto composed = [](auto&&... a) { return phase_contrastive_loss_composed<double>(a...); };
  for (ContrastiveMode mode : {ContrastiveMode::authors, ContrastiveMode::masked})
    for (bool dropout_on : {false, true})
      for (double tep : {1.0, 0.3}) {
        CAPTURE(to_string(mode));
        CAPTURE(dropout_on);
        CAPTURE(tep);
        Result a = run(c, mode, dropout_on, tep, fused), b = run(c, mode, dropout_on, tep, composed);
        CHECK(a.loss == doctest::Approx(b.loss).epsilon(1e-12));
        CHECK(max_difference(a.d_phases, b.d_phases) < 1e-12);
        CHECK(max_difference(a.d_w, b.d_w) < 1e-12);
        double largest = 0;
        for (double g : b.d_phases) largest = std::max(largest, std::abs(g));
        CHECK(largest > 1e-5);  // the comparison is not of zeros (the smallest case, masked at tep 0.3 without the view, is ~2e-4)
      }
}

TEST_CASE("phase contrastive loss: fused node gradcheck (phases and w), dropout view on, both modes") {
  Case c = make_case(2, 5, 3, 2);
  for (ContrastiveMode mode : {ContrastiveMode::authors, ContrastiveMode::masked}) {
    CAPTURE(to_string(mode));
    auto f = [&](Tape<double>& tape, std::span<const Var<double>> v) {
      Parameters<double> none;
      Rng rng(23);  // the same view in every evaluation
      Context<double> ctx{tape, none, true, rng};
      return phase_contrastive_loss(ctx, v[0], v[1], TensorView<const int32_t>{Shape{2, 5}, c.ids.data()}, 0.5, 0.9, mode);
    };
    auto r = check::gradcheck(f, {c.phases.clone(), c.w.clone()});
    INFO(r.report);
    CHECK(r.ok);
  }
}

TEST_CASE("phase contrastive loss: shape errors name the op") {
  Tape<double> tape;
  Parameters<double> none;
  Rng rng(1);
  Context<double> ctx{tape, none, false, rng};
  std::vector<int32_t> ids(6, 1);
  Var<double> p = tape.input(Tensor<double>::zeros({2, 3, 4}));
  std::string m = euler_test::error_of<ShapeError>([&] {
    phase_contrastive_loss(ctx, p, tape.input(Tensor<double>::zeros({3})), TensorView<const int32_t>{Shape{2, 3}, ids.data()},
                           1.0, 1.0, ContrastiveMode::authors);
  });
  CHECK(m.find("phase_contrastive_loss") != std::string::npos);
  CHECK(m.find("[3]") != std::string::npos);
}

}  // namespace test_contrastive
