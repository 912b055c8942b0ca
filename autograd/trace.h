// autograd/trace.h: a recorder of named intermediate tensors, for `diffuse trace`.
//
// Code that computes something worth looking at (x_t, eps_theta, each UNet block's
// output) calls trace("x_t", x_t, "DDPM eq. 4"). Normally that is one check of a
// thread-local pointer and nothing else. While a Trace object is alive on the thread,
// each call appends (name, equation, a detached copy of the tensor) to it, in order:
//
//   Trace tr;
//   trainer.step();                  // every trace() inside lands in tr.entries
//   for (auto& e : tr.entries) ...   // name, equation, value
//
// Names that take work to build (a block's dotted path) should be built only when
// tracing() is true.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td {

struct TraceEntry {
    std::string name;      // "x_t", "unet.down.0.block.1", ...
    std::string equation;  // "DDPM eq. 4: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps", or ""
    Tensor value;          // a detached copy, taken when trace() was called
};

class Trace {
public:
    Trace();   // starts recording on this thread (a Trace already recording is paused)
    ~Trace();  // stops; the previous Trace, if any, records again
    Trace(const Trace&) = delete;
    Trace& operator=(const Trace&) = delete;
    std::vector<TraceEntry> entries;

private:
    Trace* previous_;
};

bool tracing();  // is a Trace recording on this thread?
void trace(const std::string& name, const Tensor& value, const std::string& equation = "");

}  // namespace td
