// euler/check/finite.hpp: find where a NaN or an infinity first appeared on a tape.
//
// A training step that goes non-finite is only worth stopping for if the message says where. Two
// scans of a tape after a forward and backward:
//   - forward values, in creation order: the first node whose value holds a NaN or an inf produced
//     it, since every node before it (its inputs among them) is finite. A parameter leaf found here
//     was non-finite before the step began (an optimiser step made it so, or it was loaded so); any
//     other leaf is an input that was handed in non-finite.
//   - gradients (backward run with BackwardOptions::keep_intermediate_grads = true): the op whose
//     backward first wrote a non-finite gradient from a finite incoming one. The tape keeps no input
//     lists, so the scan replays the sweep: every node above the highest non-finite gradient has its
//     final, finite gradient, so the culprit is one of them. The scan saves those gradients, zeroes
//     the non-finite ones and calls the closures above them again from the top down, each with its
//     node's saved gradient, which repeats exactly what the sweep added to them; the first closure
//     after which one is non-finite is the culprit (also when finite contributions overflowed as
//     they were summed). This assumes, as holds for euler's ops, that a backward closure only reads
//     what it saved and adds into its inputs' gradients. It overwrites the tape's gradients (and the
//     parameters' gradient buffer): diagnose, then reset the tape and zero the gradients.
// find_nonfinite(tape) runs both (values first). Cost: one pass over every value and gradient, plus
// the replay (a copy of the gradients above the culprit and a backward of them), which only runs
// when a gradient is non-finite.
//
//     euler::Tape<float> tape;
//     ... losses = model.loss(ctx, batch); tape.backward(losses.total, {.keep_intermediate_grads = true});
//     if (euler::NonFinite bad = euler::find_nonfinite(tape)) std::cerr << bad.message() << "\n";
//     // "gradient: the backward of op 'sqrt' (node 1, shape [3]) made the gradient of node 0
//     //  ('input', shape [3]) non-finite, from a finite incoming gradient, first at element 1 (inf)"
//
// first_nonfinite_parameter(params) checks a parameter buffer (after an optimiser step, say).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "euler/core/tape.hpp"
#include "euler/nn/parameters.hpp"

namespace euler {

// The flat index of the first NaN or inf in data[0, n), or -1. Blocks of 256 are first tested as a
// whole (x * 0 is 0 for every finite x and NaN otherwise; the sum vectorises), then searched.
template <class T>
int64_t first_nonfinite_index(const T* data, int64_t n) {
  constexpr int64_t block = 256;
  for (int64_t start = 0; start < n; start += block) {
    int64_t end = std::min(n, start + block);
    T probe = T(0);
    for (int64_t i = start; i < end; ++i) probe += data[i] * T(0);
    if (probe == T(0)) continue;
    for (int64_t i = start; i < end; ++i)
      if (!std::isfinite(data[i])) return i;
  }
  return -1;
}

// Where a non-finite number was found; false (and where == none) when everything is finite.
struct NonFinite {
  enum class Where { none, value, gradient, parameter } where = Where::none;
  int32_t node = -1;     // the node that produced it (value: whose value; gradient: whose backward)
  std::string op;        // that node's op name (a parameter's name for a parameter leaf)
  Shape shape;           // that node's value shape
  int32_t receiver = -1; // gradient: the node whose gradient got the number (-1 when unknown)
  std::string receiver_op;
  Shape receiver_shape;
  int64_t element = -1;  // flat index of the first non-finite element (in the receiver for gradients)
  double number = 0;     // that element: nan, inf or -inf
  bool is_parameter = false;  // value: the node is a parameter leaf

  explicit operator bool() const { return where != Where::none; }

  std::string message() const {
    char text[64];
    std::snprintf(text, sizeof text, "%g", number);
    std::string at = ", first at element " + std::to_string(element) + " (" + text + ")";
    switch (where) {
      case Where::none: return "all values and gradients are finite";
      case Where::value:
        if (is_parameter)
          return "value: parameter '" + op + "' (node " + std::to_string(node) + ", shape " + shape.str() +
                 ") was non-finite before the forward pass" + at;
        return "value: op '" + op + "' (node " + std::to_string(node) + ", shape " + shape.str() +
               ") produced the first non-finite value (every node before it is finite)" + at;
      case Where::gradient:
        if (node < 0)
          return "gradient: the gradient of node " + std::to_string(receiver) + " ('" + receiver_op + "', shape " +
                 receiver_shape.str() + ") is non-finite, and replaying the backward did not reproduce it" + at;
        return "gradient: the backward of op '" + op + "' (node " + std::to_string(node) + ", shape " + shape.str() +
               ") made the gradient of node " + std::to_string(receiver) + " ('" + receiver_op + "', shape " +
               receiver_shape.str() + ") non-finite, from a finite incoming gradient" + at;
      case Where::parameter:
        return "parameter '" + op + "' (shape " + shape.str() + ") is non-finite" + at;
    }
    return "";
  }
};

// The first node (in creation order) whose forward value holds a NaN or an inf.
template <class T>
NonFinite first_nonfinite_value(const Tape<T>& tape) {
  NonFinite found;
  for (int32_t i = 0; i < int32_t(tape.size()); ++i) {
    const Node<T>& n = tape.node(i);
    if (n.value.data == nullptr) continue;
    int64_t k = first_nonfinite_index(n.value.data, n.value.numel());
    if (k < 0) continue;
    found.where = NonFinite::Where::value;
    found.node = i;
    found.op = n.op;
    found.shape = n.value.shape;
    found.element = k;
    found.number = double(n.value.data[k]);
    found.is_parameter = n.external_grad;
    return found;
  }
  return found;
}

// The op whose backward first produced a non-finite gradient (see the top of this file). Needs the
// intermediate gradients of the last backward; overwrites the gradients on the tape.
template <class T>
NonFinite first_nonfinite_gradient(Tape<T>& tape) {
  NonFinite found;
  std::vector<int32_t> bad;  // nodes with a non-finite gradient, ascending
  for (int32_t i = 0; i < int32_t(tape.size()); ++i) {
    const Node<T>& n = tape.node(i);
    if (n.grad != nullptr && first_nonfinite_index(n.grad, n.value.numel()) >= 0) bad.push_back(i);
  }
  if (bad.empty()) return found;
  auto describe_receiver = [&](int32_t i, int64_t k) {
    const Node<T>& r = tape.node(i);
    found.receiver = i;
    found.receiver_op = r.op;
    found.receiver_shape = r.value.shape;
    found.element = k;
    found.number = double(r.grad[k]);
  };
  found.where = NonFinite::Where::gradient;
  describe_receiver(bad.back(), first_nonfinite_index(tape.node(bad.back()).grad, tape.node(bad.back()).value.numel()));

  // Replay: zero the non-finite gradients, then run the closures above them from the top down, each
  // with its node's final gradient (saved first: replayed closures add to the nodes below them).
  int32_t top = int32_t(tape.size()) - 1;
  std::vector<std::vector<T>> final_grad(size_t(top - bad.back()));
  for (int32_t j = top; j > bad.back(); --j) {
    const Node<T>& n = tape.node(j);
    if (n.backward && n.grad != nullptr) final_grad[size_t(j - bad.back() - 1)].assign(n.grad, n.grad + n.value.numel());
  }
  for (int32_t i : bad) {
    const Node<T>& n = tape.node(i);
    std::fill(n.grad, n.grad + n.value.numel(), T(0));
  }
  for (int32_t j = top; j > bad.back(); --j) {
    const Node<T>& n = tape.node(j);
    if (!n.backward || n.grad == nullptr) continue;
    const std::vector<T>& dy = final_grad[size_t(j - bad.back() - 1)];
    std::copy(dy.begin(), dy.end(), n.grad);
    n.backward(TensorView<const T>{n.value.shape, n.value.data}, TensorView<const T>{n.value.shape, n.grad});
    for (int32_t i : bad) {
      const Node<T>& r = tape.node(i);
      int64_t k = first_nonfinite_index(r.grad, r.value.numel());
      if (k < 0) continue;
      found.node = j;
      found.op = n.op;
      found.shape = n.value.shape;
      describe_receiver(i, k);
      return found;
    }
  }
  return found;  // not reproduced (node = -1): the closures are not deterministic, or the tape changed
}

// Forward values first, then gradients (when the tape still has them).
template <class T>
NonFinite find_nonfinite(Tape<T>& tape) {
  NonFinite value = first_nonfinite_value(tape);
  if (value) return value;
  return first_nonfinite_gradient(tape);
}

// The first parameter holding a NaN or an inf.
template <class T>
NonFinite first_nonfinite_parameter(const Parameters<T>& params) {
  NonFinite found;
  for (int i = 0; i < params.count(); ++i) {
    TensorView<T> v = params.value(i);
    int64_t k = first_nonfinite_index(v.data, v.numel());
    if (k < 0) continue;
    found.where = NonFinite::Where::parameter;
    found.op = params.entry(i).name;
    found.shape = v.shape;
    found.element = k;
    found.number = double(v.data[k]);
    return found;
  }
  return found;
}

}  // namespace euler
