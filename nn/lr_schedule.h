// nn/lr_schedule.h: learning-rate schedules as pure functions of the step.
//
// Convention: t is the 1-based number of the optimizer step about to be taken (t = 1
// for the first update), the same t as Adam's bias correction 1 - beta^t. Call
//   opt.set_lr(nn::cosine_lr(t, base_lr, warmup, total)); opt.step();
// before each step. (PyTorch's LambdaLR counts from 0 and so takes its first warm-up
// step with lr 0; here the first step already moves, with base_lr / warmup.)
//
//   constant          lr(t) = base_lr
//   linear warm-up    lr(t) = base_lr * min(1, t / warmup)                       (DDPM: warm-up 5000)
//   cosine + warm-up  lr(t) = the linear warm-up while t <= warmup; then, with
//                     p = (t - warmup) / (total - warmup) clamped to [0, 1],
//                     lr(t) = min_lr + (base_lr - min_lr) * (1 + cos(pi p)) / 2
//                     (Loshchilov & Hutter 2017, SGDR, one half period, no restarts)
//
// warmup = 0 means no warm-up. Bad arguments (negative steps, total <= warmup) throw
// td::Error naming the schedule.
#pragma once
#include <cstdint>
#include <string>

namespace td::nn {

float constant_lr(int64_t t, float base_lr);
float linear_warmup_lr(int64_t t, float base_lr, int64_t warmup);
float cosine_lr(int64_t t, float base_lr, int64_t warmup, int64_t total, float min_lr = 0.0f);

// The three schedules above, chosen at run time (the CLI's --lr-schedule).
enum class LrKind { Constant, Warmup, Cosine };
// "constant", "warmup", "cosine"; td::Error listing them for any other word.
LrKind parse_lr_kind(const std::string& name);
std::string lr_kind_name(LrKind k);

struct LrSchedule {
    LrKind kind = LrKind::Constant;
    float base_lr = 1e-3f;
    int64_t warmup = 0;
    int64_t total = 0;    // cosine only: the step at which lr reaches min_lr
    float min_lr = 0.0f;  // cosine only
    float at(int64_t t) const;
};

}  // namespace td::nn
