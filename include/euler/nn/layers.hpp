// euler/nn/layers.hpp: the building blocks of a transformer, as small structs over Parameters:
// Embedding, Linear, LayerNorm; dropout is Context::dropout (a no-op when training is off). (The
// attention and feed-forward blocks that compose them live with the model, model/forward.hpp.)
//
// A layer declares its parameters (PyTorch names and layouts) in declare(), and its forward puts them
// on the tape and composes ops. A Context carries what every forward needs: the tape, the parameters,
// whether dropout is on, and the random stream it draws from.
//
//     euler::Linear<float> proj;
//     proj.declare(params, "dense", 64, 32);          // dense.weight [32, 64], dense.bias [32]
//     params.allocate(); proj.init(params, rng, 0.02);
//     euler::Context<float> ctx{tape, params, /*dropout_on=*/true, rng};
//     auto y = proj.forward(ctx, x);                   // x [B, N, 64] -> [B, N, 32]
#pragma once

#include <string>

#include "euler/core/random.hpp"
#include "euler/nn/parameters.hpp"
#include "euler/ops/elementwise.hpp"
#include "euler/ops/layout.hpp"
#include "euler/ops/matmul.hpp"
#include "euler/ops/nn.hpp"

namespace euler {

template <class T>
struct Context {
  Tape<T>& tape;
  const Parameters<T>& params;
  bool dropout_on;  // training mode: dropout (and BERT4Rec masking) active
  Rng& rng;

  Var<T> param(int index) const { return params.on(tape, index); }
  Var<T> dropout(Var<T> x, double p) const { return dropout_on && p > 0 ? euler::dropout(x, T(p), rng) : x; }
};

// A lookup table, PyTorch nn.Embedding: weight [rows, dim]; lookup gathers rows, and its backward
// scatters into the table. The table itself can be used too (SASRec scores items against it).
template <class T>
struct Embedding {
  int weight = -1;

  void declare(Parameters<T>& params, const std::string& name, int rows, int dim) {
    weight = params.declare(name + ".weight", {rows, dim});
  }
  void init(Parameters<T>& params, Rng& rng, double stddev) const { fill_normal(params.value(weight), rng, T(0), T(stddev)); }
  Var<T> table(const Context<T>& ctx) const { return ctx.param(weight); }  // [rows, dim]
  // -> [..., dim]; lookups of padding_idx (>= 0) send no gradient to its row, as PyTorch's nn.Embedding.
  Var<T> forward(const Context<T>& ctx, TensorView<const int32_t> ids /*[...]*/, int32_t padding_idx = -1) const {
    return embedding(table(ctx), ids, padding_idx);
  }
};

// y = x W^T + b, PyTorch layout: weight [out, in], bias [out].
template <class T>
struct Linear {
  int weight = -1, bias = -1;

  void declare(Parameters<T>& params, const std::string& name, int in, int out) {
    weight = params.declare(name + ".weight", {out, in});
    bias = params.declare(name + ".bias", {out});
  }
  void init(Parameters<T>& params, Rng& rng, double stddev) const {
    fill_normal(params.value(weight), rng, T(0), T(stddev));
    std::fill(params.value(bias).begin(), params.value(bias).end(), T(0));
  }
  Var<T> forward(const Context<T>& ctx, Var<T> x /*[..., in]*/) const {  // -> [..., out]
    return linear(x, ctx.param(weight), ctx.param(bias));
  }
};

// Layer normalisation over the last axis with a learned scale and shift (PyTorch nn.LayerNorm).
template <class T>
struct LayerNorm {
  int weight = -1, bias = -1;
  double eps = 1e-12;

  void declare(Parameters<T>& params, const std::string& name, int size, double epsilon) {
    weight = params.declare(name + ".weight", {size});
    bias = params.declare(name + ".bias", {size});
    eps = epsilon;
  }
  void init(Parameters<T>& params) const {
    std::fill(params.value(weight).begin(), params.value(weight).end(), T(1));
    std::fill(params.value(bias).begin(), params.value(bias).end(), T(0));
  }
  Var<T> forward(const Context<T>& ctx, Var<T> x /*[..., D]*/) const {
    return layer_norm(x, ctx.param(weight), ctx.param(bias), T(eps));
  }
};

}  // namespace euler
