// diffusion/trainer.cpp: see trainer.h.
#include "diffusion/trainer.h"

#include <cmath>
#include <sstream>

#include "autograd/trace.h"
#include "diffusion/captions.h"
#include "diffusion/nonfinite.h"
#include "diffusion/text_encoder.h"
#include "nn/safetensors.h"
#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

const Choice<LossWeight> kLossWeights[] = {{"none", LossWeight::None}, {"min-snr", LossWeight::MinSnr}};

LossWeight parse_loss_weight(const std::string& name) { return parse_choice(name, kLossWeights, "loss weight"); }
std::string loss_weight_name(LossWeight w) { return choice_name(w, kLossWeights); }

const Choice<TimestepDraw> kTimestepDraws[] = {{"uniform", TimestepDraw::Uniform},
                                               {"logit-normal", TimestepDraw::LogitNormal}};

TimestepDraw parse_timestep_draw(const std::string& name) {
    return parse_choice(name, kTimestepDraws, "timestep sampling");
}
std::string timestep_draw_name(TimestepDraw d) { return choice_name(d, kTimestepDraws); }

// Algorithm 1, line 3 (uniform), or eq. 19 of Esser et al. 2024 (logit-normal).
Tensor draw_timesteps(TimestepDraw how, double m, double s, int64_t T, int64_t n, Generator& gen) {
    if (how == TimestepDraw::Uniform) return randint(T, {n}, gen);
    std::vector<float> z = randn({n}, gen).to_vector();
    std::vector<int64_t> t(n);
    for (int64_t i = 0; i < n; ++i) {
        double u = 1.0 / (1.0 + std::exp(-(m + s * z[i])));  // sigmoid(m + s n), in (0, 1)
        t[i] = std::min<int64_t>(T - 1, (int64_t)(u * T));
    }
    return Tensor::from_vector_i64(t, {n});
}

DdpmTrainer::DdpmTrainer(const ModelInfo& info, const TrainOptions& options, const Dataset& train_set,
                         std::shared_ptr<VAE> first_stage)
    : info_(info),
      opt_(options),
      schedule_(Schedule::named(info.schedule, info.T)),
      model_(std::make_shared<UNet>(info.unet)),
      first_stage_(std::move(first_stage)),
      parallel_(options.comm),
      // every rank draws the whole global minibatch (and keeps its slice in draw())
      batches_(train_set,
               BatchOptions{
                   .batch_size = options.batch_size * parallel_.ranks(), .seed = options.seed, .hflip = options.hflip}),
      noise_gen_(options.seed + 1),
      dataset_(train_set.name) {
    check(train_set.images.size(1) == info.unet.in_channels && train_set.images.size(2) == info.unet.image_size &&
              train_set.images.size(3) == info.unet.image_size,
          "train ddpm: ", train_set.name, " images are ", train_set.images.shape(), " but the UNet expects ",
          info.unet.in_channels, " x ", info.unet.image_size, " x ", info.unet.image_size);
    check(options.lr > 0 && std::isfinite(options.lr), "train ddpm: lr must be > 0, got ", options.lr);
    check(options.grad_clip >= 0, "train ddpm: grad clip must be >= 0, got ", options.grad_clip);
    check(options.ema_decay >= 0 && options.ema_decay < 1, "train ddpm: EMA decay must be in [0, 1), got ",
          options.ema_decay);
    info_.unet = model_->config();  // with out_channels resolved
    check(info.latent() == (first_stage_ != nullptr), "train ddpm: a latent model needs its autoencoder, and only it");
    if (first_stage_) {
        first_stage_->eval();
        for (Tensor& p : first_stage_->parameters()) p.requires_grad_(false);  // frozen (LDM sec. 3)
        first_stage_->to(options.device);                                      // it decodes the preview grids
    }
    // The model moves before the optimizer and the EMA are built: their state is made
    // beside the parameters.
    model_->to(options.device);
    schedule_.to(options.device);
    parallel_.start_identical(*model_);
    give_rank_its_dropout_stream();
    nn::AdamWOptions aw;
    aw.lr = options.lr;
    aw.weight_decay = options.weight_decay;
    optim_ = std::make_unique<nn::AdamW>(model_->named_parameters(), aw);
    ema_ = std::make_unique<nn::EMA>(*model_, options.ema_decay);
    lr_.kind = options.lr_schedule;
    lr_.base_lr = options.lr;
    lr_.warmup = options.warmup;
    // no end given (a time budget): as if far away, until set_lr_total() says where
    lr_.total = options.total_steps > 0 ? std::max(options.total_steps, options.warmup + 1) : (int64_t)1 << 40;
    check(options.p_uncond >= 0 && options.p_uncond <= 1, "train ddpm: p-uncond must be in [0, 1], got ",
          options.p_uncond);
    if (info.unet.cond == Conditioning::Class)
        check(train_set.num_classes <= info.unet.num_classes, "train ddpm: ", train_set.name, " has ",
              train_set.num_classes, " classes but the UNet was built for ", info.unet.num_classes);
}

int DdpmTrainer::ranks() const { return parallel_.ranks(); }

// Dropout masks are drawn by each rank for its own slice from the UNet's generator, which
// starts in the same state on every rank: rank r > 0 moves to a stream of its own (another
// Philox key), so that the ranks' masks are independent. (They are still not the masks a
// 1-rank run would draw for the global batch: with dropout > 0, a P-rank run matches the
// 1-rank run in distribution, not bit for bit.) Rank 0 keeps the 1-rank stream, and it is
// rank 0's state that checkpoints store.
void DdpmTrainer::give_rank_its_dropout_stream() {
    int r = parallel_.rank();
    if (r == 0) return;
    Generator& dg = model_->dropout_generator();
    dg.set_state(dg.seed() + 0x9E3779B97F4A7C15ull * (uint64_t)r, dg.offset());
}

// Classifier-free guidance, its training half (Ho & Salimans 2022, Algorithm 1): with
// probability p_uncond the condition is replaced by the null one, so that one network
// learns both eps(x_t, c) and eps(x_t, empty) and sampling can mix them.
Tensor DdpmTrainer::draw_condition(const Tensor& labels) {
    const UNetConfig& u = info_.unet;
    if (u.cond == Conditioning::None) return Tensor();
    int64_t B = labels.size(0);
    std::vector<int64_t> y = labels.to(Device::CPU).to_vector_i64();
    std::vector<float> u01 = rand({B}, noise_gen_).to_vector();  // u < p_uncond: dropped
    if (u.cond == Conditioning::Class) {
        for (int64_t i = 0; i < B; ++i)
            if (u01[i] < opt_.p_uncond) y[i] = u.num_classes;  // the null label
        return Tensor::from_vector_i64(y, {B});
    }
    // text: one of the built-in phrasings of each label's caption, or the empty prompt
    std::vector<int64_t> phrasing = randint(num_phrasings(), {B}, noise_gen_).to_vector_i64();
    std::vector<std::string> prompts(B);
    for (int64_t i = 0; i < B; ++i)
        prompts[i] = u01[i] < opt_.p_uncond ? std::string() : caption(dataset_, y[i], phrasing[i]);
    return model_->text_encoder().tokenize(prompts);
}

// Algorithm 1, lines 2-4: x_0, t and eps for the global minibatch (P * B samples; P = 1:
// the whole of it), on every rank: the numbers a 1-rank run with batch P * B draws. Then
// this rank's slice of each (a view; distributed/shard.h), on the device.
DdpmTrainer::Draws DdpmTrainer::draw() {
    const Device dev = opt_.device;
    Batch b = batches_.next();  // on the CPU, where the data set is
    // (t is drawn on the CPU, G integers, and moved; eps on the device itself: the same
    // Philox numbers either way, tensor/random.h)
    const int64_t G = b.x.size(0);
    Tensor t = draw_timesteps(opt_.t_draw, opt_.t_loc, opt_.t_scale, schedule_.T, G, noise_gen_);  // line 3 (0-based)
    Tensor eps = randn(b.x.shape(), noise_gen_, 0.0f, 1.0f, dev);  // line 4: eps ~ N(0, I)
    Tensor y = draw_condition(b.y);                                // class / caption, or none
    t = t.to(dev);
    Draws d{parallel_.my_slice(b.x).to(dev), parallel_.my_slice(t), parallel_.my_slice(eps),
            parallel_.my_slice(y)};  // x_0: (B, C, H, W) in [-1, 1]
    if (d.y.defined()) d.y = d.y.to(dev);
    return d;
}

// Algorithm 1, line 5, given the draws: the loss and its autograd graph.
Tensor DdpmTrainer::loss_of(const Draws& d) {
    const Tensor &x0 = d.x0, &t = d.t, &eps = d.eps, &y = d.y;
    Tensor x_t = q_sample(schedule_, x0, t, eps);  // eq. 4
    if (tracing()) {  // diffuse trace: the inputs of the step, before the UNet's own entries
        trace("x_0", x0, "Algorithm 1, line 2: x_0 ~ q(x_0), a minibatch of training images");
        trace("t", t.to(DType::Float32),
              opt_.t_draw == TimestepDraw::Uniform
                  ? "Algorithm 1, line 3: t ~ Uniform({1, ..., T}) (0-based in code)"
                  : "Algorithm 1, line 3, drawn logit-normally: t = T sigmoid(m + s n), n ~ N(0, 1) (--t-sampling)");
        trace("eps", eps, "Algorithm 1, line 4: eps ~ N(0, I)");
        trace("x_t", x_t, "DDPM eq. 4: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps");
    }
    Tensor out = model_->forward(x_t, t, y.defined() ? model_->condition(y) : UNet::Cond{});  // eps_theta(x_t, t, y)
    Tensor target = training_target(info_.prediction, schedule_, x0, t, eps);
    Tensor loss = opt_.loss_weight == LossWeight::MinSnr
                      ? l_weighted(out, target, min_snr_weights(schedule_, t, info_.prediction, opt_.snr_gamma))
                      : l_simple(out, target);  // eq. 14
    if (tracing()) {  // diffuse trace: the step's tensors, in the order Algorithm 1 makes them
        trace("model_output", out, "eps_theta(x_t, t) (or x_0 / v, as the run predicts)");
        trace("target", target, "the regression target: eps (or x_0 / v)");
        trace(
            "loss", loss,
            opt_.loss_weight == LossWeight::MinSnr
                ? "min-SNR-weighted L_simple (Hang et al. 2023): mean_b min(SNR, gamma)/SNR ||target - model_output||^2"
                : "DDPM eq. 14: L_simple = || target - model_output ||^2, mean over elements");
    }
    return loss;
}

// Where a non-finite loss came from: a weight already broken, or else the first tensor
// of the forward pass (in the order diffuse trace lists them) that is not finite.
std::string DdpmTrainer::first_nonfinite_forward(const Draws& d) {
    std::string weight = first_nonfinite_weight(*model_);
    if (!weight.empty()) return weight;
    return first_nonfinite_traced([&] { loss_of(d); }, model_->dropout_generator());
}

// A step whose `what` is not finite: stop naming where it went bad, or, with
// --skip-nonfinite, drop the minibatch (nothing changes but the counters).
StepStats DdpmTrainer::nonfinite(const std::string& what, float value, const std::function<std::string()>& where,
                                 float loss, float lr) {
    if (!opt_.skip_nonfinite)
        fail("train ddpm: the ", what, " is ", value, " at step ", step_, "; first non-finite: ", where(),
             ". Try a lower --lr or --clip 1, or --skip-nonfinite to drop such steps");
    ++skipped_;
    optim_->zero_grad();
    return {step_, loss, NAN, lr, true};
}

// Algorithm 1, one pass of its loop. With several ranks each runs it on its own slice of
// the minibatch, and averaging the gradients makes their steps one.
// clang-format off
StepStats DdpmTrainer::step(const std::function<void(const Tensor&)>& before_backward) {
    model_->train();
    Draws d = draw();                                   // lines 2-4: x_0, t, eps
    Tensor loss = loss_of(d);                           // line 5: || eps - eps_theta(x_t, t) ||^2
    if (before_backward) before_backward(loss);
    const float lr = lr_.at(++step_);
    optim_->zero_grad();
    loss.backward();                                    // line 5: its gradient
    std::vector<Tensor> params = model_->parameters();
    float loss_value = parallel_.average_gradients(params, loss.item());  // the mean over the ranks
    if (!std::isfinite(loss_value))
        return nonfinite("loss", loss_value, [&] { return first_nonfinite_forward(d); }, loss_value, lr);
    float grad_norm = nn::clip_grad_norm(params, opt_.grad_clip > 0 ? opt_.grad_clip : INFINITY);
    if (!std::isfinite(grad_norm))
        return nonfinite("gradient norm", grad_norm, [&] { return first_nonfinite_gradient(*model_); }, loss_value, lr);
    optim_->set_lr(lr);
    optim_->step();                                     // line 5: the gradient descent step
    ema_->update(*model_);                              // the EMA of the weights (appendix B): what samples use
    return {step_, loss_value, grad_norm, lr};
}
// clang-format on

std::shared_ptr<UNet> DdpmTrainer::ema_model() const {
    auto m = std::make_shared<UNet>(info_.unet);
    m->to(opt_.device);  // beside the EMA's shadow weights
    ema_->copy_to(*m);
    m->eval();
    return m;
}

LoadedModel DdpmTrainer::sampling_model() const {
    return LoadedModel{info_, ema_model(), schedule_, first_stage_, nullptr};
}

void DdpmTrainer::save_checkpoint(const std::string& path, const Metadata& extra) const {
    std::map<std::string, Tensor> all;
    if (first_stage_)
        for (auto& [k, v] : first_stage_->state_dict()) all["first_stage_model." + k] = v;
    for (auto& [k, v] : model_->state_dict()) all["model." + k] = v;
    for (auto& [k, v] : ema_->state_dict()) all["ema." + k] = v;
    for (auto& [k, v] : optim_->state_dict()) all["optim." + k] = v;
    Metadata meta = to_metadata(info_);
    for (auto& [k, v] : extra) meta[k] = v;
    BatchState bs = batches_.state();
    Generator& dg = model_->dropout_generator();
    meta["checkpoint"] = "ddpm-trainer";
    meta["step"] = std::to_string(step_);
    meta["steps_skipped"] = std::to_string(skipped_);
    meta["ema_num_updates"] = std::to_string(ema_->num_updates());
    meta["noise_gen"] = std::to_string(noise_gen_.seed()) + "," + std::to_string(noise_gen_.offset());
    meta["dropout_gen"] = std::to_string(dg.seed()) + "," + std::to_string(dg.offset());
    meta["batches"] = std::to_string(bs.epoch) + "," + std::to_string(bs.index) + "," + std::to_string(bs.gen_seed) +
                      "," + std::to_string(bs.gen_offset) + "," + std::to_string(bs.num_samples);
    nn::save_safetensors(path, all, meta);
}

namespace {

std::vector<uint64_t> numbers(const Metadata& m, const std::string& key, size_t n, const std::string& path) {
    auto it = m.find(key);
    check(it != m.end(), path, ": not a trainer checkpoint (its metadata has no '", key, "')");
    std::vector<uint64_t> out;
    std::stringstream ss(it->second);
    for (std::string item; std::getline(ss, item, ',');) {
        try {
            size_t used = 0;
            out.push_back(std::stoull(item, &used));
            check(used == item.size(), "");
        } catch (const std::exception&) {
            fail(path, ": metadata '", key, "' = '", it->second, "' is not a list of integers");
        }
    }
    check(out.size() == n, path, ": metadata '", key, "' should hold ", n, " integers, holds ", out.size());
    return out;
}

}  // namespace

Metadata DdpmTrainer::load_checkpoint(const std::string& path) {
    Metadata meta;
    std::map<std::string, Tensor> all = nn::load_safetensors(path, &meta);
    check(meta.count("checkpoint"), path, ": not a trainer checkpoint (model.safetensors holds weights only)");
    ModelInfo saved = model_info_from_metadata(meta, path);
    Metadata a = to_metadata(saved), b = to_metadata(info_);
    a.erase("data");  // files written before the data set's name was recorded
    b.erase("data");
    check(a == b, path, ": the checkpoint is of another model (", saved.unet.describe(), ", ",
          beta_schedule_name(saved.schedule), " T=", saved.T, ") than this run's (", info_.unet.describe(), ", ",
          beta_schedule_name(info_.schedule), " T=", info_.T, ")");
    // The file's tensors are on the CPU: the model's load_state_dict and the optimizer's
    // copy them beside the parameters; the EMA's shadow is given them there.
    std::map<std::string, Tensor> model_sd, ema_sd, optim_sd;
    for (auto& [k, v] : all) {
        if (k.rfind("model.", 0) == 0) model_sd[k.substr(6)] = v;
        else if (k.rfind("ema.", 0) == 0) ema_sd[k.substr(4)] = v.to(opt_.device);
        else if (k.rfind("optim.", 0) == 0) optim_sd[k.substr(6)] = v;
        else if (k.rfind("first_stage_model.", 0) == 0 && first_stage_) continue;  // frozen: the run's own is used
        else fail(path, ": unexpected tensor '", k, "' in a trainer checkpoint");
    }
    auto step = numbers(meta, "step", 1, path);
    auto ema_n = numbers(meta, "ema_num_updates", 1, path);
    auto ng = numbers(meta, "noise_gen", 2, path);
    auto dg = numbers(meta, "dropout_gen", 2, path);
    auto bs = numbers(meta, "batches", 5, path);
    try {  // all checks above passed: now change state
        model_->load_state_dict(model_sd);
        ema_->load_state_dict(ema_sd, (int64_t)ema_n[0]);
        optim_->load_state_dict(optim_sd);
        batches_.restore(BatchState{(int64_t)bs[0], (int64_t)bs[1], bs[2], bs[3], (int64_t)bs[4]});
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
    noise_gen_.set_state(ng[0], ng[1]);
    model_->dropout_generator().set_state(dg[0], dg[1]);
    if (ranks() > 1) give_rank_its_dropout_stream();
    step_ = (int64_t)step[0];
    skipped_ = meta.count("steps_skipped") ? (int64_t)numbers(meta, "steps_skipped", 1, path)[0] : 0;
    return meta;
}

void DdpmTrainer::save_ema_model(const std::string& path) const {
    auto m = ema_model();
    if (!first_stage_) {
        nn::save_module(path, *m, to_metadata(info_));
        return;
    }
    // a latent model: the UNet under its own names, the decoder's autoencoder beside it
    std::map<std::string, Tensor> all = m->state_dict();
    for (auto& [k, v] : first_stage_->state_dict()) all["first_stage_model." + k] = v;
    Metadata meta = to_metadata(info_);
    meta["format"] = "pt";
    nn::save_safetensors(path, all, meta);
}

}  // namespace td::diffusion
