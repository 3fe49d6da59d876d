// Every op of the GPU path against the CPU op it mirrors: fresh random inputs, a random seed gradient,
// output and every input gradient within rel_error 1e-4 (float). check_every_op(run) takes the runner:
// euler::gpu::run_op with HostDevice (tests/test_cuda_emulated.cpp, always) or euler::cuda::run_op
// (tests/test_cuda_device.cpp, on a GPU), so the same cases check both.
#pragma once

#include <doctest/doctest.h>

#include "cuda_test_helpers.hpp"

#include <euler/cuda/cuda.hpp>
#include <euler/eulerformer.hpp>

#include <functional>
#include <string>
#include <vector>

namespace euler_test {

using OpRunner = std::function<euler::cuda::OpResult(const euler::cuda::OpCase&)>;

// One case: the device result against the CPU reference, which `reference` computes on a float tape
// from the case's own inputs (returns the output Var; the inputs are given as tape inputs in order).
inline void check_op(const OpRunner& run, euler::cuda::OpCase c,
                     const std::function<euler::Var<float>(euler::Tape<float>&, std::vector<euler::Var<float>>&, euler::Rng&)>& reference,
                     const std::vector<bool>& wants_grad = {}) {
  using namespace euler;
  CAPTURE(c.op);
  Tape<float> tape;
  std::vector<Tensor<float>> tensors;
  std::vector<Var<float>> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    Tensor<float> t(c.shapes[i]);
    std::copy(c.inputs[i].begin(), c.inputs[i].end(), t.data());
    tensors.push_back(t);
    bool grad = wants_grad.empty() || wants_grad[i];
    in.push_back(grad ? tape.input(t.view()) : tape.constant(t.view()));
  }
  Rng rng(c.rng);
  Var<float> out = reference(tape, in, rng);
  Rng seed_rng(c.rng.seed ^ 0xABCDEF);
  c.seed = random_floats(seed_rng, size_t(out.numel()));
  Tensor<float> seed(out.shape());
  std::copy(c.seed.begin(), c.seed.end(), seed.data());
  tape.backward(out, seed.view());

  euler::cuda::OpResult r = run(c);
  CHECK(r.shape == out.shape());
  CHECK(rel_error(r.output, std::vector<float>(out.value().begin(), out.value().end())) <= kFloatTolerance);
  REQUIRE(r.grads.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    CAPTURE(i);
    if (!in[i].requires_grad()) continue;
    TensorView<float> g = tape.grad(in[i]);
    CHECK(rel_error(r.grads[i], std::vector<float>(g.begin(), g.end())) <= kFloatTolerance);
  }
  CHECK(r.rng == rng.state());
}

inline euler::cuda::OpCase op_case(const std::string& op, std::vector<euler::Shape> shapes, euler::Rng& rng,
                                   std::vector<double> settings = {}, double lo = -1, double hi = 1) {
  euler::cuda::OpCase c;
  c.op = op;
  c.shapes = shapes;
  for (const euler::Shape& s : shapes) c.inputs.push_back(random_floats(rng, size_t(s.numel()), lo, hi));
  c.settings = settings;
  c.rng = {rng.seed() + 1000, rng.counter()};
  return c;
}

inline void check_every_op(const OpRunner& run) {
  using namespace euler;
  using V = std::vector<Var<float>>;
  Rng rng(20250101);

  SUBCASE("add (same shape, broadcast row, scalar)") {
    check_op(run, op_case("add", {Shape{2, 3, 4}, Shape{2, 3, 4}}, rng), [](auto&, V& x, auto&) { return x[0] + x[1]; });
    check_op(run, op_case("add", {Shape{2, 3, 4}, Shape{3, 4}}, rng), [](auto&, V& x, auto&) { return x[0] + x[1]; });
    check_op(run, op_case("add", {Shape{}, Shape{}}, rng), [](auto&, V& x, auto&) { return x[0] + x[1]; });
  }
  SUBCASE("layer_norm") {
    for (double eps : {1e-5, 1e-12})
      check_op(run, op_case("layer_norm", {Shape{2, 5, 16}, Shape{16}, Shape{16}}, rng, {eps}, -2, 2),
               [eps](auto&, V& x, auto&) { return layer_norm(x[0], x[1], x[2], float(eps)); });
  }
  SUBCASE("gelu and relu") {
    check_op(run, op_case("gelu", {Shape{3, 70}}, rng, {}, -4, 4), [](auto&, V& x, auto&) { return gelu(x[0]); });
    check_op(run, op_case("relu", {Shape{3, 70}}, rng, {}, -4, 4), [](auto&, V& x, auto&) { return relu(x[0]); });
  }
  SUBCASE("dropout draws the CPU's masks and moves the Rng as far") {
    for (double p : {0.2, 0.5})
      check_op(run, op_case("dropout", {Shape{4, 300}}, rng, {p}), [p](auto&, V& x, Rng& r) { return dropout(x[0], float(p), r); });
  }
  SUBCASE("linear") {
    check_op(run, op_case("linear", {Shape{2, 3, 5}, Shape{4, 5}, Shape{4}}, rng), [](auto&, V& x, auto&) { return linear(x[0], x[1], x[2]); });
  }
  SUBCASE("matmul: every transpose, batched, scaled") {
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        CAPTURE(ta);
        CAPTURE(tb);
        Shape a = ta ? Shape{2, 3, 5, 4} : Shape{2, 3, 4, 5}, b = tb ? Shape{2, 3, 6, 5} : Shape{2, 3, 5, 6};
        check_op(run, op_case("matmul", {a, b}, rng, {double(ta), double(tb), 0.5}),
                 [ta, tb](auto&, V& x, auto&) { return matmul(x[0], x[1], ta != 0, tb != 0) * 0.5f; });
      }
    check_op(run, op_case("matmul", {Shape{7, 5}, Shape{9, 5}}, rng, {0, 1, 1}),
             [](auto&, V& x, auto&) { return matmul(x[0], x[1], false, true); });
  }
  SUBCASE("softmax with the attention mask broadcast over heads") {
    euler::cuda::OpCase c = op_case("softmax", {Shape{2, 3, 4, 5}, Shape{2, 1, 4, 5}}, rng, {}, -3, 3);
    for (size_t i = 0; i < c.inputs[1].size(); ++i) c.inputs[1][i] = (i % 5) <= (i / 5) % 4 && i % 7 != 3 ? 0.0f : -10000.0f;
    check_op(run, c, [](auto&, V& x, auto&) { return softmax(x[0], x[1].value()); }, {true, false});
  }
  SUBCASE("cross_entropy with ignored rows") {
    euler::cuda::OpCase c = op_case("cross_entropy", {Shape{6, 37}}, rng, {}, -4, 4);
    c.ints = {3, 0, 36, 1, 17, 0};
    c.ints_shape = Shape{6};
    Tensor<int32_t> targets({6});
    std::copy(c.ints.begin(), c.ints.end(), targets.data());
    check_op(run, c, [targets](auto&, V& x, auto&) { return cross_entropy(x[0], targets.view(), 0); });
  }
  SUBCASE("embedding with repeated ids, gather_rows") {
    euler::cuda::OpCase c = op_case("embedding", {Shape{7, 4}}, rng);
    c.ints = {1, 3, 3, 0, 6, 1};
    c.ints_shape = Shape{2, 3};
    Tensor<int32_t> ids({2, 3});
    std::copy(c.ints.begin(), c.ints.end(), ids.data());
    check_op(run, c, [ids](auto&, V& x, auto&) { return embedding(x[0], TensorView<const int32_t>(ids.view())); });
    euler::cuda::OpCase g = op_case("gather_rows", {Shape{3, 4, 5}}, rng);
    g.ints = {3, 0, 2};
    g.ints_shape = Shape{3};
    Tensor<int32_t> rows({3});
    std::copy(g.ints.begin(), g.ints.end(), rows.data());
    check_op(run, g, [rows](auto&, V& x, auto&) { return gather_rows(x[0], TensorView<const int32_t>(rows.view())); });
  }
  SUBCASE("split_heads, merge_heads, first_rows") {
    check_op(run, op_case("split_heads", {Shape{2, 3, 8}}, rng, {2}), [](auto&, V& x, auto&) { return split_heads(x[0], 2); });
    check_op(run, op_case("merge_heads", {Shape{2, 4, 3, 2}}, rng), [](auto&, V& x, auto&) { return merge_heads(x[0]); });
    check_op(run, op_case("first_rows", {Shape{6, 4}}, rng, {3}), [](auto&, V& x, auto&) { return slice(x[0], 0, 0, 3); });
  }
  SUBCASE("rotate_by_phase (angles shared by the lists) and with_phase, zero pairs included") {
    euler::cuda::OpCase r = op_case("rotate_by_phase", {Shape{2, 3, 8}, Shape{3, 4}}, rng, {}, -3, 3);
    r.inputs[0][4] = r.inputs[0][5] = 0.0f;
    check_op(run, r, [](auto&, V& x, auto&) { return rotate_by_phase(x[0], x[1]); });
    euler::cuda::OpCase w = op_case("with_phase", {Shape{2, 3, 8}, Shape{2, 3, 4}}, rng, {}, -3, 3);
    w.inputs[0][0] = w.inputs[0][1] = 0.0f;
    check_op(run, w, [](auto&, V& x, auto&) { return with_phase(x[0], x[1]); });
  }
  SUBCASE("euler_phase: delta and b scalar, vector or absent") {
    struct Variant {
      bool delta, bias;
      Shape shape;
    };
    for (Variant v : {Variant{true, true, Shape{}}, Variant{true, true, Shape{4}}, Variant{true, false, Shape{}}, Variant{false, false, Shape{}}}) {
      CAPTURE(v.delta);
      CAPTURE(v.bias);
      CAPTURE(v.shape.str());
      std::vector<Shape> shapes = {Shape{2, 3, 8}, Shape{3, 4}};
      if (v.delta) shapes.push_back(v.shape);
      if (v.bias) shapes.push_back(v.shape);
      euler::cuda::OpCase c = op_case("euler_phase", shapes, rng, {double(v.delta), double(v.bias)}, -2, 2);
      c.inputs[0][2] = c.inputs[0][3] = 0.0f;
      check_op(run, c, [v](auto&, V& x, auto&) {
        Var<float> delta = v.delta ? x[2] : Var<float>{}, bias = v.bias ? x[2 + size_t(v.delta)] : Var<float>{};
        return euler_phase(x[0], delta, bias, x[1]);
      });
    }
  }
  SUBCASE("position_angles (learnable frequencies)") {
    check_op(run, op_case("position_angles", {Shape{4}}, rng, {5}), [](Tape<float>& tape, V& x, auto&) {
      Tensor<float> positions({5, 1});
      for (int j = 0; j < 5; ++j) positions[j] = float(j);
      return matmul(tape.constant(std::move(positions)), reshape(x[0], Shape{1, 4}));
    });
  }
  SUBCASE("phase_contrastive_loss: both modes, with and without the dropout view") {
    std::vector<int32_t> ids = {3, 1, 4, 0, 0, 5, 9, 2, 6, 5};
    for (bool masked : {false, true})
      for (bool two_views : {false, true}) {
        CAPTURE(masked);
        CAPTURE(two_views);
        const double tep = 0.7, lamb = 0.3;
        euler::cuda::OpCase c = op_case("phase_contrastive_loss", {Shape{2, 5, 4}, Shape{4}}, rng,
                                        {tep, lamb, double(masked), double(two_views)}, -3, 3);
        c.ints = ids;
        c.ints_shape = Shape{2, 5};
        Tensor<int32_t> id_tensor({2, 5});
        std::copy(ids.begin(), ids.end(), id_tensor.data());
        check_op(run, c, [=](Tape<float>& tape, V& x, Rng& r) {
          static Parameters<float> none;
          Context<float> ctx{tape, none, two_views, r};
          return phase_contrastive_loss(ctx, x[0], x[1], TensorView<const int32_t>(id_tensor.view()), tep, lamb,
                                        masked ? ContrastiveMode::masked : ContrastiveMode::authors);
        });
      }
  }
}

}  // namespace euler_test
