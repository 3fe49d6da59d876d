// euler/euler.hpp: the whole core in one include: tensors, the tape, every op, the gradient checker.
//
//     #include <euler/euler.hpp>
//     euler::Tape<> tape;                       // float by default; Tape<double> for checks
//     auto w = tape.input(W);                   // W: euler::Tensor<> [D, K]
//     auto loss = euler::mean(euler::square(euler::matmul(tape.constant(X), w)));
//     tape.backward(loss);                      // tape.grad(w) now holds d(loss)/dW
#pragma once

#include "euler/version.hpp"
#include "euler/core/parallel.hpp"
#include "euler/core/random.hpp"
#include "euler/core/shape.hpp"
#include "euler/core/tape.hpp"
#include "euler/core/tensor.hpp"
#include "euler/ops/complex.hpp"
#include "euler/ops/elementwise.hpp"
#include "euler/ops/layout.hpp"
#include "euler/ops/linear_cross_entropy.hpp"
#include "euler/ops/matmul.hpp"
#include "euler/ops/nn.hpp"
#include "euler/ops/reduce.hpp"
#include "euler/check/gradcheck.hpp"
