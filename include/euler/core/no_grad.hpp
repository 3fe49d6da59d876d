// euler/core/no_grad.hpp: a scope that turns a tape's recording off (evaluation, inference) and
// restores the previous state when it ends. For any tape with grad_enabled() and set_grad_enabled():
// the CPU's (NoGrad, core/tape.hpp) and the GPU's (DeviceNoGrad, cuda/device_tape.hpp). Free of Eigen.
//
//     euler::NoGrad<float> no_grad(tape);  // from here to the end of the scope, no backward closures
#pragma once

namespace euler {

template <class TapeType>
class NoGradScope {
 public:
  explicit NoGradScope(TapeType& tape) : tape_(tape), previous_(tape.grad_enabled()) { tape.set_grad_enabled(false); }
  ~NoGradScope() { tape_.set_grad_enabled(previous_); }
  NoGradScope(const NoGradScope&) = delete;
  NoGradScope& operator=(const NoGradScope&) = delete;

 private:
  TapeType& tape_;
  bool previous_;
};

}  // namespace euler
