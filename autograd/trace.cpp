// autograd/trace.cpp: see trace.h.
#include "autograd/trace.h"

#include "autograd/node.h"

namespace td {

static thread_local Trace* g_trace = nullptr;

Trace::Trace() : previous_(g_trace) { g_trace = this; }
Trace::~Trace() { g_trace = previous_; }

bool tracing() { return g_trace != nullptr; }

void trace(const std::string& name, const Tensor& value, const std::string& equation) {
    if (!g_trace || !value.defined()) return;
    NoGradGuard no_grad;  // the copy is a snapshot, not part of any graph
    g_trace->entries.push_back({name, equation, value.detach().clone()});
}

}  // namespace td
