// tensor/backend.cpp: the defaults of the Backend entries that not every backend had from
// the start (tensor/backend.h). Each throws a td::Error naming the backend and the entry, so
// a missing kernel is a clear message, never a silent fallback to another device.
#include "tensor/backend.h"

#include "tensor/error.h"

namespace td {

void Backend::copy_from_host(void*, const void*, size_t) { fail(name(), " backend: copy_from_host is not implemented"); }
void Backend::copy_to_host(void*, const void*, size_t) { fail(name(), " backend: copy_to_host is not implemented"); }

void Backend::attention_forward(const Tensor&, const Tensor&, const Tensor&, float, const Tensor&, const Tensor&) {
    fail(name(), " backend: attention_forward is not implemented");
}
void Backend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, float, const Tensor&, const Tensor&, const Tensor&) {
    fail(name(), " backend: attention_backward is not implemented");
}

void Backend::adam_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamStep&) {
    fail(name(), " backend: adam_update is not implemented");
}
void Backend::ema_update(const Tensor&, const Tensor&, float) { fail(name(), " backend: ema_update is not implemented"); }

void Backend::fill_random(const Tensor&, Distribution, uint64_t, uint64_t, float, float) {
    fail(name(), " backend: fill_random is not implemented");
}

}  // namespace td
