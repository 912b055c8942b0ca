// distributed/bucket.h: packing many tensors into a few large flat buffers ("buckets"),
// so that a collective moves one bucket per call instead of one tensor per call.
//
// Why buckets: a collective call costs a fixed latency (a few microseconds through shared
// memory, tens over a network, plus the launch of a GPU kernel for NCCL) whatever its size,
// and only large messages reach the link's bandwidth. A UNet has hundreds of parameter
// tensors, most of them small (biases, norm scales: a few hundred bytes), so one call per
// tensor would be dominated by latency. Packing them into buckets of ~25 MB (PyTorch
// DDP's default, Options::bucket_bytes) makes a handful of calls that each run at full
// bandwidth; the copies in and out of the bucket cost one pass over memory, small next to
// the transfer. (PyTorch also starts each bucket's all-reduce while backward is still
// producing the next gradients; here the all-reduce runs after backward, so the order of
// the tensors in the buckets does not matter.)
//
// The plan is pure bookkeeping (which tensor lands where), the same on every rank for the
// same list of shapes; pack and unpack copy through the tensors' backend
// (backend_for(device).copy), so the same code packs CPU and GPU tensors and a tensor may
// be any strided view.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/tensor.h"

namespace td::dist {

// Where one tensor's elements sit inside its bucket.
struct BucketSlot {
    size_t tensor;   // index into the list the plan was made from
    int64_t offset;  // first element inside the bucket
    int64_t numel;
};

struct Bucket {
    DType dtype = DType::Float32;
    int64_t numel = 0;              // elements in the bucket (the flat buffer's length)
    std::vector<BucketSlot> slots;  // in the order of the tensors
};

// Splits `tensors` (all defined, all on one device) into buckets, in order: a bucket takes
// tensors while it stays within bucket_bytes; a tensor larger than bucket_bytes gets a
// bucket of its own (tensors are never split); a change of dtype starts a new bucket.
// Throws td::Error on an undefined tensor, mixed devices or bucket_bytes == 0.
std::vector<Bucket> plan_buckets(const std::vector<Tensor>& tensors, size_t bucket_bytes);

// The largest bucket's element count: the length of a flat buffer that fits any of them.
int64_t max_bucket_numel(const std::vector<Bucket>& buckets);

// flat[slot.offset : slot.offset + slot.numel] = tensors[slot.tensor] (row-major order),
// for every slot of `bucket`. flat: contiguous, 1-D, the bucket's dtype and the tensors'
// device, at least bucket.numel elements.
void pack(const Bucket& bucket, const std::vector<Tensor>& tensors, const Tensor& flat);
// The reverse: tensors[slot.tensor] = flat[slot.offset : ...], written in place.
void unpack(const Bucket& bucket, const Tensor& flat, const std::vector<Tensor>& tensors);

}  // namespace td::dist
