// cuda/op_runner.hpp: run one op of the GPU path on host inputs, forward and backward (for the tests).
//
// run_op(device, case) puts the case's float inputs on a fresh device tape (each wanting a gradient,
// except softmax's mask), runs the named op, seeds d(output) with case.seed, runs the backward and hands
// back the output and every input's gradient. tests/cuda_op_cases.hpp builds the cases and compares the
// results with the CPU ops; with HostDevice on any machine, and through euler::cuda::run_op (this
// function with CudaDevice) on a GPU.
//
//   op                      float inputs                      ints            settings
//   add                     a [...], b [suffix of a]
//   layer_norm              x [..., D], gamma [D], beta [D]                   eps
//   gelu, relu              x
//   dropout                 x                                                 p            (draws from rng)
//   linear                  x [..., in], W [out, in], b [out]
//   matmul                  a, b                                              trans_a, trans_b, alpha
//   softmax                 x [B, H, Nq, S], mask [B, 1, Nq, S]
//   cross_entropy           logits [M, K]                     targets [M]
//   embedding               table [K, D]                      ids [...]
//   gather_rows             x [B, N, D]                       rows [B]
//   split_heads             x [B, N, D]                                       heads
//   merge_heads             x [B, H, N, dh]
//   first_rows              table [R, C]                                      n
//   rotate_by_phase         x [..., D], phase [suffix]
//   euler_phase             x, angle (, delta) (, bias)                       has_delta, has_bias
//   with_phase              x [..., D], phase [..., D/2]
//   position_angles         freq [h]                                          N
//   phase_contrastive_loss  phases [B, N, h], w [h]           ids [B, N]      tep, lamb, masked, two_views (draws)
//
//     euler::cuda::OpCase c{"gelu", {Shape{4}}, {{-1, 0, 1, 2}}, {}, {}, {}, {}, {1, 1, 1, 1}};
//     euler::cuda::OpResult r = euler::gpu::run_op(device, c);   // r.output, r.grads[0]
#pragma once

#include <string>
#include <vector>

#include "device_phase_ops.hpp"
#include "euler/cuda/cuda.hpp"

namespace euler::gpu {

template <class Device>
cuda::OpResult run_op(Device& device, const cuda::OpCase& c) {
  const std::string& op = c.op;
  auto fail = [&](const std::string& what) { throw std::invalid_argument("run_op " + op + ": " + what); };
  if (c.inputs.size() != c.shapes.size()) fail("one shape per input needed");
  DeviceTape<Device> tape(device);
  std::vector<DVar<Device>> in;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    if (int64_t(c.inputs[i].size()) != c.shapes[i].numel()) fail("input " + std::to_string(i) + " does not have its shape's size");
    bool is_mask = op == "softmax" && i == 1;
    in.push_back(tape.input(tape.upload(c.shapes[i], c.inputs[i].data()), !is_mask));
  }
  if (!c.ints.empty() && int64_t(c.ints.size()) != c.ints_shape.numel()) fail("ints do not have ints_shape's size");
  DeviceView<const int32_t> ints;
  if (!c.ints.empty()) ints = tape.upload(c.ints_shape, c.ints.data());
  auto inputs = [&](size_t n) {
    if (in.size() != n) fail("expects " + std::to_string(n) + " float inputs, got " + std::to_string(in.size()));
  };
  auto setting = [&](size_t i) {
    if (i >= c.settings.size()) fail("missing setting " + std::to_string(i));
    return c.settings[i];
  };
  auto nonzero = [&] {
    int64_t count = 0;
    for (int32_t v : c.ints) count += v != 0;
    return count;
  };
  RngState rng = c.rng;

  DVar<Device> out;
  if (op == "add") inputs(2), out = add(in[0], in[1]);
  else if (op == "layer_norm") inputs(3), out = layer_norm(in[0], in[1], in[2], float(setting(0)));
  else if (op == "gelu" || op == "relu") inputs(1), out = activation(in[0], op == "gelu");
  else if (op == "dropout") inputs(1), out = dropout(in[0], float(setting(0)), rng);
  else if (op == "linear") inputs(3), out = linear(in[0], in[1], in[2]);
  else if (op == "matmul") inputs(2), out = matmul(in[0], in[1], setting(0) != 0, setting(1) != 0, float(setting(2)));
  else if (op == "softmax") inputs(2), out = softmax(in[0], DeviceView<const float>{c.shapes[1], in[1].value().data});
  else if (op == "cross_entropy") inputs(1), out = cross_entropy(in[0], ints, nonzero());
  else if (op == "embedding") inputs(1), out = embedding(in[0], ints);
  else if (op == "gather_rows") inputs(1), out = gather_rows(in[0], ints);
  else if (op == "split_heads") inputs(1), out = split_heads(in[0], int(setting(0)));
  else if (op == "merge_heads") inputs(1), out = merge_heads(in[0]);
  else if (op == "first_rows") inputs(1), out = first_rows(in[0], int64_t(setting(0)));
  else if (op == "rotate_by_phase") inputs(2), out = rotate_by_phase(in[0], in[1]);
  else if (op == "with_phase") inputs(2), out = with_phase(in[0], in[1]);
  else if (op == "position_angles") inputs(1), out = position_angles(in[0], int64_t(setting(0)));
  else if (op == "euler_phase") {
    bool has_delta = setting(0) != 0, has_bias = setting(1) != 0;
    inputs(2 + size_t(has_delta) + size_t(has_bias));
    DVar<Device> delta = has_delta ? in[2] : DVar<Device>{}, bias = has_bias ? in[2 + size_t(has_delta)] : DVar<Device>{};
    out = euler_phase(in[0], delta, bias, in[1]);
  } else if (op == "phase_contrastive_loss") {
    inputs(2);
    bool masked = setting(2) != 0;
    int64_t count = masked ? nonzero() : int64_t(c.ints.size());
    out = phase_contrastive_loss(in[0], in[1], ints, count, setting(0), setting(1), masked, setting(3) != 0, rng);
  } else {
    fail("unknown op");
  }

  if (int64_t(c.seed.size()) != out.numel()) fail("seed has " + std::to_string(c.seed.size()) + " values, output " + out.shape().str());
  DeviceView<float> seed = tape.upload(out.shape(), c.seed.data());
  tape.backward(out, seed);
  cuda::OpResult result;
  result.shape = out.shape();
  result.output = tape.download(out.value());
  for (DVar<Device> v : in) result.grads.push_back(v.requires_grad() ? tape.download(tape.grad(v)) : std::vector<float>{});
  result.rng = rng;
  return result;
}

}  // namespace euler::gpu
