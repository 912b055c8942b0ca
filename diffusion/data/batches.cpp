// diffusion/data/batches.cpp: seeded shuffling, flips, and resumable iteration.
#include "diffusion/data/batches.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

BatchIterator::BatchIterator(const Dataset& data, const BatchOptions& options) : opt_(options), gen_(options.seed) {
    check(data.images.defined() && data.images.dim() == 4 && data.images.dtype() == DType::Float32,
          "BatchIterator: ", data.name, ": images must be (N, C, H, W) float32");
    check(data.labels.defined() && data.labels.dim() == 1 && data.labels.dtype() == DType::Int64 &&
              data.labels.size(0) == data.images.size(0),
          "BatchIterator: ", data.name, ": labels must be (N) int64 with N = ", data.images.size(0));
    int64_t n = data.images.size(0);
    check(opt_.batch_size >= 1, "BatchIterator: batch size must be positive, got ", opt_.batch_size);
    check(n >= 1, "BatchIterator: ", data.name, " (", data.split, ") holds no samples");
    check(!opt_.drop_last || opt_.batch_size <= n, "BatchIterator: batch size ", opt_.batch_size, " is larger than ",
          data.name, " (", data.split, ": ", n, " samples) and drop_last is on");
    images_ = data.images.detach().contiguous();
    labels_ = data.labels.detach().contiguous();
    start_epoch();
}

int64_t BatchIterator::batches_per_epoch() const {
    int64_t n = images_.size(0), b = opt_.batch_size;
    return opt_.drop_last ? n / b : (n + b - 1) / b;
}

// The draws of one epoch, always both, so the order does not depend on the flags:
//   keys: N uniform 64-bit integers -> Fisher-Yates: for i = N-1 .. 1 swap(order[i], order[keys[i] mod (i+1)])
//   coins: N uniforms in [0, 1) -> flip position k when coins[k] < 0.5
void BatchIterator::start_epoch() {
    int64_t n = images_.size(0);
    epoch_start_ = gen_;
    std::vector<int64_t> keys = randint(std::numeric_limits<int64_t>::max(), {n}, gen_).to_vector_i64();
    std::vector<float> coins = rand({n}, gen_).to_vector();
    order_.resize(n);
    for (int64_t i = 0; i < n; ++i) order_[i] = i;
    if (opt_.shuffle)
        for (int64_t i = n - 1; i >= 1; --i) std::swap(order_[i], order_[keys[i] % (i + 1)]);
    flip_.assign(n, false);
    if (opt_.hflip)
        for (int64_t k = 0; k < n; ++k) flip_[k] = coins[k] < 0.5f;
}

Batch BatchIterator::next() {
    int64_t n = images_.size(0);
    int64_t needed = opt_.drop_last ? opt_.batch_size : 1;
    if (n - index_ < needed) {  // this epoch is used up
        ++epoch_;
        start_epoch();
        index_ = 0;
    }
    int64_t b = std::min(opt_.batch_size, n - index_);
    int64_t C = images_.size(1), H = images_.size(2), W = images_.size(3), chw = C * H * W;
    Batch batch{Tensor::empty({b, C, H, W}), Tensor::empty({b}, DType::Int64)};
    const float* src = images_.data_f32();
    float* dst = batch.x.data_f32();
    for (int64_t k = 0; k < b; ++k) {
        int64_t i = order_[index_ + k];
        const float* s = src + i * chw;
        float* d = dst + k * chw;
        if (!flip_[index_ + k]) {
            std::memcpy(d, s, chw * sizeof(float));
        } else {  // left-right flip: d[c][h][w] = s[c][h][W-1-w]
            for (int64_t row = 0; row < C * H; ++row)
                for (int64_t w = 0; w < W; ++w) d[row * W + w] = s[row * W + (W - 1 - w)];
        }
        batch.y.data_i64()[k] = labels_.data_i64()[i];
    }
    index_ += b;
    return batch;
}

BatchState BatchIterator::state() const {
    return {epoch_, index_, epoch_start_.seed(), epoch_start_.offset(), images_.size(0)};
}

void BatchIterator::restore(const BatchState& s) {
    int64_t n = images_.size(0);
    check(s.num_samples == n, "BatchIterator::restore: the saved state is for a data set of ", s.num_samples,
          " samples, this one holds ", n);
    check(s.epoch >= 0 && s.index >= 0 && s.index <= n, "BatchIterator::restore: bad position epoch ", s.epoch,
          ", index ", s.index, " for ", n, " samples");
    gen_.set_state(s.gen_seed, s.gen_offset);
    epoch_ = s.epoch;
    start_epoch();  // the same draws as when this epoch first began
    index_ = s.index;
}

}  // namespace td::diffusion
