// The math of the CUDA kernels (include/euler/cuda/device_math.hpp), run on the CPU against the CPU ops:
// values and gradients of every per-element and per-row function, on fresh random inputs, within
// rel_error 1e-4 in float (bit for bit where it must be: the dropout key and Adam's norm; atan2 and the
// dropout hash are one definition for both sides, core/host_device.hpp).
// These always run; they need no GPU and no CUDA toolkit.
#include <doctest/doctest.h>

#include "cuda_test_helpers.hpp"

#include <euler/cuda/device_math.hpp>
#include <euler/eulerformer.hpp>
#include <euler/train/optimizer.hpp>

namespace test_cuda_math {  // this file's own names: see "unity build" in CMakeLists.txt


using namespace euler;
using euler_test::kFloatTolerance;
using euler_test::random_floats;
using euler_test::rel_error;
namespace dm = euler::device;

namespace {

std::vector<float> to_vector(TensorView<float> v) { return std::vector<float>(v.data, v.data + v.numel()); }
Tensor<float> tensor_of(const Shape& s, const std::vector<float>& values) {
  Tensor<float> t(s);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

}  // namespace

TEST_CASE("device math: euler_phase and its backward match the CPU op (zero pairs included)") {
  Rng rng(2);
  const int64_t B = 3, N = 4, D = 8, h = D / 2;
  std::vector<float> x = random_floats(rng, size_t(B * N * D)), dout = random_floats(rng, size_t(B * N * h));
  x[2] = x[3] = 0.0f;  // a zero pair: gradient 0 by convention
  for (bool vector_params : {false, true}) {
    CAPTURE(vector_params);
    Shape ps = vector_params ? Shape{h} : Shape{};
    std::vector<float> delta = random_floats(rng, size_t(ps.numel()), 0.3, 1.7), bias = random_floats(rng, size_t(ps.numel()));
    std::vector<float> angle = random_floats(rng, size_t(N * h), -3, 3);
    Tape<float> tape;
    Var<float> xv = tape.input(tensor_of({B, N, D}, x)), dv = tape.input(tensor_of(ps, delta));
    Var<float> bv = tape.input(tensor_of(ps, bias)), av = tape.input(tensor_of({N, h}, angle));
    Var<float> out = euler_phase(xv, dv, bv, av);
    tape.backward(out, tensor_of(out.shape(), dout));

    std::vector<float> y(size_t(B * N * h)), dx(x.size(), 0.0f), ddelta(delta.size(), 0.0f), dbias(bias.size(), 0.0f),
        dangle(angle.size(), 0.0f);
    for (int64_t c = 0; c < B * N * h; ++c) {
      int64_t t = c % h, k = vector_params ? t : 0;
      float theta;
      y[size_t(c)] = dm::euler_phase(x[size_t(2 * c)], x[size_t(2 * c + 1)], delta[size_t(k)], bias[size_t(k)],
                                     angle[size_t(c % (N * h))], &theta);
      dm::euler_phase_backward(x[size_t(2 * c)], x[size_t(2 * c + 1)], dout[size_t(c)], delta[size_t(k)], &dx[size_t(2 * c)],
                               &dx[size_t(2 * c + 1)]);
      ddelta[size_t(k)] += dout[size_t(c)] * theta;
      dbias[size_t(k)] += dout[size_t(c)];
      dangle[size_t(c % (N * h))] += dout[size_t(c)];
    }
    CHECK(rel_error(y, to_vector(out.value())) <= kFloatTolerance);
    CHECK(rel_error(dx, to_vector(tape.grad(xv))) <= kFloatTolerance);
    CHECK(rel_error(ddelta, to_vector(tape.grad(dv))) <= kFloatTolerance);
    CHECK(rel_error(dbias, to_vector(tape.grad(bv))) <= kFloatTolerance);
    CHECK(rel_error(dangle, to_vector(tape.grad(av))) <= kFloatTolerance);
    CHECK(dx[2] == 0.0f);
    CHECK(dx[3] == 0.0f);
  }
}

TEST_CASE("device math: with_phase and rotate, forward and backward, match the CPU ops") {
  Rng rng(3);
  const int64_t B = 2, N = 5, D = 6, h = D / 2;
  std::vector<float> x = random_floats(rng, size_t(B * N * D)), dy = random_floats(rng, size_t(B * N * D));
  x[0] = x[1] = 0.0f;
  SUBCASE("with_phase") {
    std::vector<float> phase = random_floats(rng, size_t(B * N * h), -4, 4);
    Tape<float> tape;
    Var<float> xv = tape.input(tensor_of({B, N, D}, x)), pv = tape.input(tensor_of({B, N, h}, phase));
    Var<float> y = with_phase(xv, pv);
    tape.backward(y, tensor_of(y.shape(), dy));
    std::vector<float> yd(x.size()), dx(x.size(), 0.0f), dphase(phase.size(), 0.0f);
    for (size_t c = 0; c < phase.size(); ++c) {
      dm::with_phase(x[2 * c], x[2 * c + 1], phase[c], &yd[2 * c], &yd[2 * c + 1]);
      dm::with_phase_backward(x[2 * c], x[2 * c + 1], yd[2 * c], yd[2 * c + 1], dy[2 * c], dy[2 * c + 1], &dx[2 * c],
                              &dx[2 * c + 1], &dphase[c]);
    }
    CHECK(rel_error(yd, to_vector(y.value())) <= kFloatTolerance);
    CHECK(rel_error(dx, to_vector(tape.grad(xv))) <= kFloatTolerance);
    CHECK(rel_error(dphase, to_vector(tape.grad(pv))) <= kFloatTolerance);
  }
  SUBCASE("rotate_by_phase with angles shared by the lists") {
    std::vector<float> phase = random_floats(rng, size_t(N * h), -4, 4);
    Tape<float> tape;
    Var<float> xv = tape.input(tensor_of({B, N, D}, x)), pv = tape.input(tensor_of({N, h}, phase));
    Var<float> y = rotate_by_phase(xv, pv);
    tape.backward(y, tensor_of(y.shape(), dy));
    std::vector<float> yd(x.size()), dx(x.size(), 0.0f), dphase(phase.size(), 0.0f);
    for (size_t c = 0; c < x.size() / 2; ++c) {
      size_t p = c % phase.size();
      float cs = std::cos(phase[p]), sn = std::sin(phase[p]);
      dm::rotate(x[2 * c], x[2 * c + 1], cs, sn, &yd[2 * c], &yd[2 * c + 1]);
      dphase[p] += dm::rotate_backward(yd[2 * c], yd[2 * c + 1], cs, sn, dy[2 * c], dy[2 * c + 1], &dx[2 * c], &dx[2 * c + 1]);
    }
    CHECK(rel_error(yd, to_vector(y.value())) <= kFloatTolerance);
    CHECK(rel_error(dx, to_vector(tape.grad(xv))) <= kFloatTolerance);
    CHECK(rel_error(dphase, to_vector(tape.grad(pv))) <= kFloatTolerance);
  }
}

TEST_CASE("device math: masked softmax rows, forward and backward, match softmax with a broadcast mask") {
  Rng rng(4);
  const int64_t B = 2, H = 3, N = 5, S = N;
  std::vector<float> x = random_floats(rng, size_t(B * H * N * S), -3, 3), dy = random_floats(rng, x.size());
  std::vector<float> mask(size_t(B * N * S));  // [B, 1, N, S]: causal and one padded key, one row of -inf
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < N; ++t)
      for (int64_t s = 0; s < S; ++s) mask[size_t((b * N + t) * S + s)] = (s <= t && !(b == 1 && s == 3)) ? 0.0f : -10000.0f;
  for (int64_t s = 0; s < S; ++s) mask[size_t((1 * N + 2) * S + s)] = -INFINITY;
  Tape<float> tape;
  Tensor<float> mask_tensor = tensor_of({B, 1, N, S}, mask);
  Var<float> xv = tape.input(tensor_of({B, H, N, S}, x));
  Var<float> y = softmax(xv, mask_tensor.view());
  tape.backward(y, tensor_of(y.shape(), dy));
  std::vector<float> yd(x.size()), dx(x.size(), 0.0f);
  for (int64_t r = 0; r < B * H * N; ++r) {
    int64_t b = r / (H * N), t = r % N;
    dm::softmax_row(&x[size_t(r * S)], &mask[size_t((b * N + t) * S)], &yd[size_t(r * S)], S);
    dm::softmax_row_backward(&yd[size_t(r * S)], &dy[size_t(r * S)], &dx[size_t(r * S)], S);
  }
  CHECK(rel_error(yd, to_vector(y.value())) <= kFloatTolerance);
  CHECK(rel_error(dx, to_vector(tape.grad(xv))) <= kFloatTolerance);
  CHECK(yd[size_t(((1 * H + 0) * N + 2) * S)] == 0.0f);  // the -inf row is zeros
}

TEST_CASE("device math: layer norm rows, forward and backward (x, gamma, beta), match layer_norm") {
  Rng rng(5);
  for (float eps : {1e-5f, 1e-12f}) {
    CAPTURE(eps);
    const int64_t rows = 7, D = 16;
    std::vector<float> x = random_floats(rng, size_t(rows * D), -2, 3), dy = random_floats(rng, x.size());
    std::vector<float> gamma = random_floats(rng, size_t(D), 0.5, 1.5), beta = random_floats(rng, size_t(D));
    Tape<float> tape;
    Var<float> xv = tape.input(tensor_of({rows, D}, x)), gv = tape.input(tensor_of({D}, gamma)), bv = tape.input(tensor_of({D}, beta));
    Var<float> y = layer_norm(xv, gv, bv, eps);
    tape.backward(y, tensor_of(y.shape(), dy));
    std::vector<float> yd(x.size()), dx(x.size(), 0.0f), dgamma(size_t(D), 0.0f), dbeta(size_t(D), 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      float mean, rstd;
      const float* xr = &x[size_t(r * D)];
      dm::layer_norm_row(xr, gamma.data(), beta.data(), eps, D, &yd[size_t(r * D)], &mean, &rstd);
      dm::layer_norm_row_backward(xr, &dy[size_t(r * D)], gamma.data(), mean, rstd, D, &dx[size_t(r * D)]);
      for (int64_t i = 0; i < D; ++i) {
        dgamma[size_t(i)] += dy[size_t(r * D + i)] * ((xr[i] - mean) * rstd);
        dbeta[size_t(i)] += dy[size_t(r * D + i)];
      }
    }
    CHECK(rel_error(yd, to_vector(y.value())) <= kFloatTolerance);
    CHECK(rel_error(dx, to_vector(tape.grad(xv))) <= kFloatTolerance);
    CHECK(rel_error(dgamma, to_vector(tape.grad(gv))) <= kFloatTolerance);
    CHECK(rel_error(dbeta, to_vector(tape.grad(bv))) <= kFloatTolerance);
  }
}

TEST_CASE("device math: GELU (erf form) and ReLU with their derivatives match the CPU ops") {
  Rng rng(6);
  std::vector<float> x = random_floats(rng, 4000, -6, 6), dy = random_floats(rng, 4000);
  x[0] = 0.0f;
  for (bool use_gelu : {true, false}) {
    CAPTURE(use_gelu);
    Tape<float> tape;
    Var<float> xv = tape.input(tensor_of({4000}, x));
    Var<float> y = use_gelu ? gelu(xv) : relu(xv);
    tape.backward(y, tensor_of(y.shape(), dy));
    std::vector<float> yd(x.size()), dx(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      yd[i] = use_gelu ? dm::gelu(x[i]) : dm::relu(x[i]);
      dx[i] = dy[i] * (use_gelu ? dm::gelu_grad(x[i]) : dm::relu_grad(x[i]));
    }
    CHECK(rel_error(yd, to_vector(y.value())) <= kFloatTolerance);
    CHECK(rel_error(dx, to_vector(tape.grad(xv))) <= kFloatTolerance);
  }
}

TEST_CASE("device math: the dropout key and hash are DropoutMask's, so GPU and CPU draw the same masks") {
  int mismatches = 0;
  for (uint64_t seed : {0ull, 7ull, 0x5eed5eed5eedull})
    for (uint64_t first : {0ull, 1ull, 123456789ull, (1ull << 40) + 3})
      for (double p : {0.1, 0.5, 0.9}) {
        DropoutMask cpu(RandomStream(seed, Rng::kStream), first, p);
        dm::DropoutKey key = dm::dropout_key(seed, first, p);
        CHECK(key.key0 == cpu.key0);
        CHECK(key.key1 == cpu.key1);
        CHECK(key.threshold == cpu.threshold);
        for (int64_t i = 0; i < 5000; ++i) mismatches += cpu.keep(i) != dm::dropout_keep(key, i);
      }
  CHECK(mismatches == 0);

  // And the whole op: euler::dropout(x, p, rng) is x * keep / (1 - p) with the key of the Rng's counter.
  Rng rng(99);
  rng.reserve(17);
  RngState before = rng.state();
  Tape<float> tape;
  Tensor<float> x = Tensor<float>::full({3, 1000}, 2.0f);
  Var<float> y = dropout(tape.constant(x.view()), 0.3f, rng);
  CHECK(rng.counter() == before.counter + 3000);
  dm::DropoutKey key = dm::dropout_key(before.seed, before.counter, 0.3);
  int wrong = 0;
  for (int64_t i = 0; i < 3000; ++i) wrong += y.value()[i] != (dm::dropout_keep(key, i) ? 2.0f * (1.0f / 0.7f) : 0.0f);
  CHECK(wrong == 0);
}

TEST_CASE("device math: cross-entropy rows, loss and gradient, match cross_entropy with ignored rows") {
  Rng rng(7);
  const int64_t M = 9, K = 37;
  std::vector<float> logits = random_floats(rng, size_t(M * K), -4, 4);
  std::vector<int32_t> targets = {3, 0, 36, 1, 0, 17, 5, 5, 30};  // 0: ignored
  Tape<float> tape;
  Var<float> lv = tape.input(tensor_of({M, K}, logits));
  Tensor<int32_t> tt({M});
  std::copy(targets.begin(), targets.end(), tt.data());
  Var<float> loss = cross_entropy(lv, tt.view(), 0);
  const float dloss = 0.7f;
  tape.backward(loss, tensor_of({}, {dloss}));
  int64_t count = 0;
  double total = 0;
  std::vector<float> lse(static_cast<size_t>(M));
  for (int64_t r = 0; r < M; ++r)
    if (targets[size_t(r)] != 0) {
      total += dm::cross_entropy_row(&logits[size_t(r * K)], K, targets[size_t(r)], &lse[size_t(r)]);
      ++count;
    }
  std::vector<float> dl(logits.size(), 0.0f);
  float g = dloss / float(count);
  for (int64_t r = 0; r < M; ++r)
    if (targets[size_t(r)] != 0)
      for (int64_t j = 0; j < K; ++j) dl[size_t(r * K + j)] = dm::cross_entropy_grad(logits[size_t(r * K + j)], lse[size_t(r)], j == targets[size_t(r)], g);
  CHECK(std::abs(total / double(count) - double(loss.value()[0])) <= kFloatTolerance * std::abs(double(loss.value()[0])));
  CHECK(rel_error(dl, to_vector(tape.grad(lv))) <= kFloatTolerance);
}

TEST_CASE("device math: the phase contrastive pieces compose to phase_contrastive_loss (value, dP, dw)") {
  Rng data(8);
  const int64_t B = 2, N = 5, h = 4;
  std::vector<int32_t> ids = {3, 1, 4, 0, 0, 5, 9, 2, 6, 5};
  Tensor<int32_t> id_tensor({B, N});
  std::copy(ids.begin(), ids.end(), id_tensor.data());
  const double tep = 0.7, lamb = 0.3;
  for (ContrastiveMode mode : {ContrastiveMode::authors, ContrastiveMode::masked})
    for (bool dropout_on : {false, true}) {
      CAPTURE(to_string(mode));
      CAPTURE(dropout_on);
      std::vector<float> phases = random_floats(data, size_t(B * N * h), -3, 3), w = random_floats(data, size_t(h), 0.5, 1.5);
      const float dy = 1.3f;
      // CPU reference.
      Tape<float> tape;
      Parameters<float> no_params;
      Rng rng(21);
      rng.reserve(5);
      RngState before = rng.state();
      Context<float> ctx{tape, no_params, dropout_on, rng};
      Var<float> pv = tape.input(tensor_of({B, N, h}, phases)), wv = tape.input(tensor_of({h}, w));
      Var<float> loss = phase_contrastive_loss(ctx, pv, wv, id_tensor.view(), tep, lamb, mode);
      tape.backward(loss, tensor_of({}, {dy}));

      // The same from the device pieces, written out as the kernels do it.
      const bool masked = mode == ContrastiveMode::masked;
      dm::DropoutKey key = dm::dropout_key(before.seed, before.counter, 0.5);
      int64_t count = B * N;
      if (masked) count = std::count_if(ids.begin(), ids.end(), [](int32_t i) { return i != 0; });
      const float inv_tep = float(1 / tep), scale = float(lamb / double(count));
      std::vector<float> view(phases.size()), a(size_t(B * N * 2 * h)), c(a.size()), probs(size_t(B * N * N));
      for (size_t e = 0; e < phases.size(); ++e) view[e] = dm::contrastive_view(phases[e], dropout_on, dm::dropout_keep(key, int64_t(e)));
      for (int64_t r = 0; r < B * N; ++r)
        for (int64_t i = 0; i < h; ++i) {
          size_t e = size_t(r * h + i), o = size_t(r * 2 * h + i);
          dm::contrastive_features(phases[e], view[e], w[size_t(i)], &a[o], &a[o + size_t(h)], &c[o], &c[o + size_t(h)]);
        }
      double total = 0;
      std::vector<float> ut(size_t(B * N));
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < N; ++t) {
          float* z = &probs[size_t((b * N + t) * N)];
          for (int64_t s = 0; s < N; ++s) {
            float dot = 0;
            for (int64_t k = 0; k < 2 * h; ++k) dot += a[size_t((b * N + t) * 2 * h + k)] * c[size_t((b * N + s) * 2 * h + k)];
            z[s] = dot * inv_tep + (masked && ids[size_t(b * N + s)] == 0 ? -10000.0f : 0.0f);
          }
          float lse = dm::contrastive_softmax_row(z, N);
          bool counts = !masked || ids[size_t(b * N + t)] != 0;
          float positive = dm::contrastive_positive(&phases[size_t((b * N + t) * h)], &view[size_t((b * N + t) * h)], w.data(), h, inv_tep);
          if (counts) total += lse - positive;
          ut[size_t(b * N + t)] = counts ? dy * scale * inv_tep : 0.0f;
        }
      CHECK(std::abs(total * scale - double(loss.value()[0])) <= kFloatTolerance * std::abs(double(loss.value()[0])));

      // Backward: dS = probs * ut per row; da = dS c, dc = dS^T a; then per element.
      std::vector<float> da(a.size(), 0.0f), dc(c.size(), 0.0f), dp(phases.size(), 0.0f), dw(size_t(h), 0.0f);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < N; ++t)
          for (int64_t s = 0; s < N; ++s) {
            float ds = probs[size_t((b * N + t) * N + s)] * ut[size_t(b * N + t)];
            for (int64_t k = 0; k < 2 * h; ++k) {
              da[size_t((b * N + t) * 2 * h + k)] += ds * c[size_t((b * N + s) * 2 * h + k)];
              dc[size_t((b * N + s) * 2 * h + k)] += ds * a[size_t((b * N + t) * 2 * h + k)];
            }
          }
      for (int64_t r = 0; r < B * N; ++r)
        for (int64_t i = 0; i < h; ++i) {
          size_t e = size_t(r * h + i), o = size_t(r * 2 * h + i);
          float direct, dv, dw_share;
          dm::contrastive_backward(phases[e], view[e], w[size_t(i)], da[o], da[o + size_t(h)], dc[o], dc[o + size_t(h)], ut[size_t(r)],
                                   &direct, &dv, &dw_share);
          dp[e] = direct + (dropout_on ? (dm::dropout_keep(key, int64_t(e)) ? 2.0f * dv : 0.0f) : dv);
          dw[size_t(i)] += dw_share;
        }
      CHECK(rel_error(dp, to_vector(tape.grad(pv))) <= kFloatTolerance);
      CHECK(rel_error(dw, to_vector(tape.grad(wv))) <= kFloatTolerance);
    }
}

TEST_CASE("device math: Adam and AdamW updates and the gradient norm match euler::Adam step for step") {
  Rng rng(9);
  const int64_t P = 10000;  // more than two norm blocks of 4096
  struct Setting {
    double weight_decay, clip;
    bool decoupled;
  };
  for (Setting s : {Setting{0, 0, false}, Setting{0, 0.5, false}, Setting{0.01, 0, false}, Setting{0.1, 2.0, true}}) {
    CAPTURE(s.weight_decay);
    CAPTURE(s.clip);
    CAPTURE(s.decoupled);
    AdamConfig config;
    config.lr = 3e-3;
    config.weight_decay = s.weight_decay;
    config.decoupled = s.decoupled;
    config.clip_norm = s.clip;
    Adam<float> adam(config);
    std::vector<float> values = random_floats(rng, size_t(P)), device_values = values, m(size_t(P), 0.0f), v(size_t(P), 0.0f);
    for (int64_t step = 1; step <= 3; ++step) {
      std::vector<float> grads = random_floats(rng, size_t(P), -0.05, 0.05);
      double norm_cpu = adam.step(TensorView<float>{Shape{P}, values.data()}, TensorView<const float>{Shape{P}, grads.data()});
      double squares = 0;
      for (int64_t begin = 0; begin < P; begin += 4096) squares += dm::squared_sum_block(grads.data(), begin, std::min(P, begin + 4096));
      double norm = std::sqrt(squares);
      CHECK(norm == norm_cpu);  // bit for bit
      double clip_coef = s.clip > 0 ? std::min(1.0, s.clip / (norm + 1e-6)) : 1.0;
      dm::AdamCoefficients c = dm::adam_coefficients(config.lr, config.beta1, config.beta2, config.eps, config.weight_decay,
                                                     config.decoupled, step, clip_coef);
      for (int64_t i = 0; i < P; ++i) dm::adam_update(&device_values[size_t(i)], grads[size_t(i)], &m[size_t(i)], &v[size_t(i)], c);
      CHECK(rel_error(device_values, values) <= kFloatTolerance);
      CHECK(rel_error(m, std::vector<float>(adam.moment1().data(), adam.moment1().data() + P)) <= kFloatTolerance);
      CHECK(rel_error(v, std::vector<float>(adam.moment2().data(), adam.moment2().data() + P)) <= kFloatTolerance);
    }
  }
}

}  // namespace test_cuda_math
