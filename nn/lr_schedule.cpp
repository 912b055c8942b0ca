// nn/lr_schedule.cpp: the formulas of lr_schedule.h, computed in double.
#include "nn/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "tensor/choice.h"
#include "tensor/error.h"

namespace td::nn {

float constant_lr(int64_t t, float base_lr) {
    check(t >= 1, "constant_lr: step t = ", t, " (steps count from 1)");
    return base_lr;
}

float linear_warmup_lr(int64_t t, float base_lr, int64_t warmup) {
    check(t >= 1, "linear_warmup_lr: step t = ", t, " (steps count from 1)");
    check(warmup >= 0, "linear_warmup_lr: warmup = ", warmup, " must be >= 0");
    if (warmup == 0 || t >= warmup) return base_lr;
    // lr(t) = base_lr * t / warmup
    return (float)((double)base_lr * (double)t / (double)warmup);
}

float cosine_lr(int64_t t, float base_lr, int64_t warmup, int64_t total, float min_lr) {
    check(t >= 1, "cosine_lr: step t = ", t, " (steps count from 1)");
    check(warmup >= 0 && total > warmup, "cosine_lr: needs 0 <= warmup < total, got warmup ", warmup, ", total ",
          total);
    if (t <= warmup) return linear_warmup_lr(t, base_lr, warmup);
    // p = (t - warmup) / (total - warmup), clamped to [0, 1] so lr stays at min_lr after total
    double p = std::min(1.0, (double)(t - warmup) / (double)(total - warmup));
    const double pi = 3.14159265358979323846;
    // lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi p)) / 2
    return (float)(min_lr + ((double)base_lr - min_lr) * 0.5 * (1.0 + std::cos(pi * p)));
}

const Choice<LrKind> kLrKinds[] = {
    {"constant", LrKind::Constant}, {"warmup", LrKind::Warmup}, {"cosine", LrKind::Cosine}};

LrKind parse_lr_kind(const std::string& name) { return parse_choice(name, kLrKinds, "lr schedule"); }
std::string lr_kind_name(LrKind k) { return choice_name(k, kLrKinds); }

float LrSchedule::at(int64_t t) const {
    switch (kind) {
        case LrKind::Constant: return constant_lr(t, base_lr);
        case LrKind::Warmup: return linear_warmup_lr(t, base_lr, warmup);
        case LrKind::Cosine: return cosine_lr(t, base_lr, warmup, total, min_lr);
    }
    fail("LrSchedule: not a schedule kind");
}

}  // namespace td::nn
