// euler/eulerformer.hpp: everything a user of EulerFormer needs, in one include.
//
// The core (tensors, tape, ops, gradient checker), the layers, the model with its configuration and
// the phase contrastive loss, and safetensors weights.
//
//     #include <euler/eulerformer.hpp>
//     euler::EulerFormerConfig cfg;            // the paper's defaults
//     cfg.n_items = 3417;
//     euler::EulerFormer<> model(cfg, 42);     // float; EulerFormer<double> for gradient checks
#pragma once

#include "euler/euler.hpp"
#include "euler/model/config.hpp"
#include "euler/model/contrastive.hpp"
#include "euler/model/model.hpp"
#include "euler/model/weights.hpp"
#include "euler/io/safetensors.hpp"
#include "euler/nn/layers.hpp"
#include "euler/nn/parameters.hpp"
