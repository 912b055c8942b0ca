// diffusion/nonfinite.h: where a NaN or an infinity in a training step came from, for the
// message that stops the run ("first non-finite: the weight down.0.conv1.weight").
//
// A step whose loss is not finite was broken either before it started (a weight an earlier
// update overflowed) or by its own forward pass (the first activation that overflowed);
// one whose loss is finite but whose gradient norm is not, in backward.
#pragma once
#include <functional>
#include <string>

#include "nn/module.h"
#include "tensor/random.h"

namespace td::diffusion {

// "the weight NAME" for the first parameter holding a non-finite value, else "".
std::string first_nonfinite_weight(const nn::Module& model);

// Runs `forward` once more, without autograd and with a Trace recording, and names the
// first traced tensor that is not finite. The dropout generator is put back where it was,
// so the diagnosis does not move the run's randomness.
std::string first_nonfinite_traced(const std::function<void()>& forward, Generator& dropout);

// "the gradient of NAME (and N more)", nearest the loss first (backward's order).
std::string first_nonfinite_gradient(const nn::Module& model);

}  // namespace td::diffusion
