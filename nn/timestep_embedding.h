// nn/timestep_embedding.h: the sinusoidal embedding of the diffusion step t.
//
// DDPM (Ho et al. 2020, appendix B) embeds t as the Transformer's position encoding
// (Vaswani et al. 2017, sec. 3.5), in the form of the DDPM reference code
// (get_timestep_embedding in diffusion_utils):
//     half = dim / 2,  freq_i = exp(-ln(10000) * i / (half - 1)),  i = 0 .. half-1
//     emb(t) = [sin(t freq_0), ..., sin(t freq_{half-1}), cos(t freq_0), ..., cos(t freq_{half-1})]
// (Latent diffusion's code divides by half rather than half - 1 and puts cos first;
// either works, as long as training and sampling agree.) An odd dim gets a zero pad.
#pragma once
#include "tensor/tensor.h"

namespace td::nn {

// t: (B) float32 timesteps -> (B, dim). Not differentiable (t is data, not a parameter).
Tensor timestep_embedding(const Tensor& t, int64_t dim, float max_period = 10000.0f);

}  // namespace td::nn
