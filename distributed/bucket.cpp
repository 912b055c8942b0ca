// distributed/bucket.cpp: the bucket plan, pack and unpack (distributed/bucket.h).
#include "distributed/bucket.h"

#include <algorithm>

#include "tensor/backend.h"
#include "tensor/error.h"

namespace td::dist {

std::vector<Bucket> plan_buckets(const std::vector<Tensor>& tensors, size_t bucket_bytes) {
    check(bucket_bytes > 0, "plan_buckets: bucket_bytes must be positive");
    std::vector<Bucket> buckets;
    for (size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i];
        check(t.defined(), "plan_buckets: tensor ", i, " is undefined (a parameter without a gradient?)");
        check(t.device() == tensors[0].device(), "plan_buckets: tensor ", i, " is on ", device_name(t.device()),
              ", tensor 0 on ", device_name(tensors[0].device()),
              ": the tensors of one collective must share a device");
        size_t bytes = (size_t)t.numel() * dtype_size(t.dtype());
        // A new bucket when there is none yet, when the dtype changes, or when this tensor
        // would push a non-empty bucket past the limit.
        bool start_new =
            buckets.empty() || buckets.back().dtype != t.dtype() ||
            (buckets.back().numel > 0 && (size_t)buckets.back().numel * dtype_size(t.dtype()) + bytes > bucket_bytes);
        if (start_new) {
            buckets.emplace_back();
            buckets.back().dtype = t.dtype();
        }
        Bucket& b = buckets.back();
        b.slots.push_back({i, b.numel, t.numel()});
        b.numel += t.numel();
    }
    return buckets;
}

int64_t max_bucket_numel(const std::vector<Bucket>& buckets) {
    int64_t n = 0;
    for (const Bucket& b : buckets) n = std::max(n, b.numel);
    return n;
}

namespace {

// The part of `flat` that holds one slot, shaped like its tensor: a view, no copy.
Tensor slot_view(const Tensor& flat, const BucketSlot& s, const Shape& shape) {
    return flat.narrow(0, s.offset, s.numel).view(shape);
}

// (The messages are built only on failure: a pack runs once per tensor every training
// step, and formatting a shape for a message that is not shown cost more than the copy.)
void check_flat(const Bucket& bucket, const std::vector<Tensor>& tensors, const Tensor& flat, const char* op) {
    check(flat.defined() && flat.dim() == 1 && flat.is_contiguous() && flat.numel() >= bucket.numel, op,
          ": the flat buffer must be a contiguous 1-D tensor of at least ", bucket.numel, " elements");
    check(flat.dtype() == bucket.dtype, op, ": flat buffer is ", dtype_name(flat.dtype()), ", the bucket ",
          dtype_name(bucket.dtype));
    for (const BucketSlot& s : bucket.slots) {
        check(s.tensor < tensors.size() && tensors[s.tensor].defined(), op, ": tensor ", s.tensor,
              " of the plan is missing or undefined");
        const Tensor& t = tensors[s.tensor];
        if (t.numel() != s.numel || t.dtype() != bucket.dtype || t.device() != flat.device())
            fail(op, ": tensor ", s.tensor, " (", shape_str(t.shape()), ", ", dtype_name(t.dtype()), ", ",
                 device_name(t.device()), ") does not match the plan it was made with");
    }
}

}  // namespace

void pack(const Bucket& bucket, const std::vector<Tensor>& tensors, const Tensor& flat) {
    check_flat(bucket, tensors, flat, "pack");
    Backend& be = backend_for(flat.device());
    for (const BucketSlot& s : bucket.slots) {
        const Tensor& t = tensors[s.tensor];
        be.copy(t, slot_view(flat, s, t.shape()));  // any layout in, row-major out
    }
}

void unpack(const Bucket& bucket, const Tensor& flat, const std::vector<Tensor>& tensors) {
    check_flat(bucket, tensors, flat, "unpack");
    Backend& be = backend_for(flat.device());
    for (const BucketSlot& s : bucket.slots) {
        const Tensor& t = tensors[s.tensor];
        be.copy(slot_view(flat, s, t.shape()), t);  // into the tensor's own layout, in place
    }
}

}  // namespace td::dist
