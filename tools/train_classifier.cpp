// tools/train_classifier.cpp: `diffuse train classifier`, the CNN of
// diffusion/classifier.h trained on MNIST, Fashion-MNIST, CIFAR-10 or a folder, with
// AdamW, a warmup + cosine learning rate and held-out accuracy after every epoch.
// By default the classifier has one more output, "not an image of this data set", learnt
// from synthetic negatives that make up a quarter of every batch (--reject-class, and
// diffusion/classifier.h for why and which negatives).
// The run folder gets the weights (classifier.safetensors, with the configuration in
// its metadata), the held-out set's features (reference_features.npy, for the
// classifier FID of `diffuse eval`), config.txt, metrics.csv, loss.png and index.html.
#include <cmath>
#include <cstdio>

#include "autograd/node.h"
#include "diffusion/classifier.h"
#include "diffusion/data/batches.h"
#include "diffusion/data/dataset.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tensor/device.h"
#include "td.h"
#include "tools/args.h"
#include "tools/ddpm_settings.h"
#include "tools/html_page.h"
#include "tools/progress.h"
#include "tools/settings.h"
#include "tools/training_run.h"
#include "version.h"

namespace td::cli {

namespace {

// The run folder: what --overwrite deletes, and metrics.csv's columns (a row per step,
// then one per epoch with the held-out figures).
const RunLayout kLayout = {
    "train classifier",
    {"config.txt", "metrics.csv", "classifier.safetensors", "reference_features.npy", "loss.png", "index.html"},
    {},
    {"step", "epoch", "loss", "lr", "held_out_accuracy", "held_out_rejected", "negatives_rejected", "seconds"},
    /*resumable=*/false};

struct ClassifierSettings {
    diffusion::ClassifierConfig model;    // width and reject_class; the rest comes from the data
    std::string data;                     // --data: mnist, fashion, cifar10 or a folder
    diffusion::DataOptions data_options;  // data_dir
    int64_t epochs = 0;                   // as given (0: chosen for the data set)
    int64_t batch = 0, shift = 0;
    float lr = 0;
    uint64_t seed = 0;
    int64_t steps = 0;   // the step budget (0: --epochs decides)
    double minutes = 0;  // the time budget (0: none)
    Device device = Device::CPU;
};

using S = ClassifierSettings;

// The settings of `train classifier` (tools/settings.h); the order is config.txt's and --help's.
const std::vector<Setting<ClassifierSettings>> kClassifierSettings = {
    field<S>("data", "mnist", "data set: mnist, fashion, cifar10, or a folder (see --data-dir)", "data",
             [](auto& s) { return &s.data; }),
    field<S>("data-dir", "", "where the data set's files are (default data/<name>/)", "",
             [](auto& s) { return &s.data_options.data_dir; }),  // "": the default, left out
    field<S>("epochs", "0", "epochs to train (0: 20 for mnist, 8 for fashion, 20 otherwise)", "",
             [](auto& s) { return &s.epochs; }),
    field<S>("batch", "128", "batch size", "", [](auto& s) { return &s.batch; }),
    field<S>("lr", "0.002", "peak learning rate (AdamW, warmup then cosine)", "", [](auto& s) { return &s.lr; }),
    field<S>("width", "32", "channels of the first conv (then 2x and 4x)", "width",
             [](auto& s) { return &s.model.width; }),
    field<S>("shift", "2", "augmentation: random shifts of up to this many pixels (0: none)", "",
             [](auto& s) { return &s.shift; }),
    {"reject-class", "1", "1: add the output 'not an image of this data set' (see above); 0: plain classifier",
     "reject_class", [](S& s, const Args& a, const std::string& n) { s.model.reject_class = zero_or_one(a, n); },
     [](const S& s) { return as_text((int64_t)s.model.reject_class); }},
    field<S>("seed", "0", "random seed (weights, data order, noise)", "", [](auto& s) { return &s.seed; }),
    field<S>("steps", "0", "stop after this many steps, whatever --epochs says (0: --epochs decides)", "",
             [](auto& s) { return &s.steps; }),
    minutes_setting<S>(),
    device_setting<S>([](auto& s) { return &s.device; }),
};

// Reads the settings; ArgError for a value out of range.
ClassifierSettings classifier_settings(const Args& args) {
    ClassifierSettings s = read_settings(args, kClassifierSettings);
    s.device = device_option(args);  // (td::Error for cuda without a GPU)
    if (s.epochs < 0 || s.batch < 1 || s.model.width < 8 || s.model.width % 4 != 0 || !(s.lr > 0) || s.minutes < 0 ||
        s.steps < 0)
        throw ArgError(
            "need --epochs >= 0, --batch >= 1, --width >= 8 and a multiple of 4, --lr > 0, --minutes >= 0, "
            "--steps >= 0");
    if (s.shift < 0) throw ArgError("--shift must be >= 0");
    return s;
}

// How the model does on held-out data, after each epoch.
struct HeldOut {
    double accuracy = 0;            // share of real images whose most likely output is their label (a reject is wrong)
    double rejected = 0;            // share of real images judged "not an image of this data set"
    double negatives_rejected = 0;  // share of the held-out negatives judged so (0 without a reject class)
};

// Share of rows of `logits` (N, outputs) whose argmax is want[row].
double share_predicted(const Tensor& logits, const std::vector<int64_t>& want) {
    std::vector<int64_t> p = argmax(logits, 1).to(Device::CPU).to_vector_i64();
    int64_t hits = 0;
    for (size_t i = 0; i < p.size(); ++i) hits += p[i] == want[i];
    return p.empty() ? 0.0 : (double)hits / (double)p.size();
}

// negatives: a fixed set of synthetic negatives (undefined without a reject class).
// images and negatives: on the model's device.
HeldOut evaluate(diffusion::Classifier& model, const Tensor& images, const Tensor& labels, const Tensor& negatives) {
    HeldOut h;
    Tensor logits, feats;
    diffusion::classify(model, images, logits, feats);
    h.accuracy = share_predicted(logits, labels.to_vector_i64());
    if (!model.cfg.reject_class) return h;
    int64_t reject = model.cfg.num_classes;
    h.rejected = share_predicted(logits, std::vector<int64_t>(images.size(0), reject));
    diffusion::classify(model, negatives, logits, feats);
    h.negatives_rejected = share_predicted(logits, std::vector<int64_t>(negatives.size(0), reject));
    return h;
}

// The batch the model trains on with a reject class: the real images (B) and B / 3
// negatives, so negatives are a quarter of it -- enough for the reject class to be
// learnt well, little enough that the real classes keep most of the gradient.
// x: (B, C, H, W), y: (B) -> (B + B / 3, ...) in place.
void add_negatives(Tensor& x, Tensor& y, int64_t reject_label, Generator& gen) {
    int64_t m = std::max<int64_t>(1, x.size(0) / 3);
    Tensor neg = diffusion::make_negatives(m, x, gen);
    x = cat({x, neg}, 0);
    y = cat({y, Tensor::from_vector_i64(std::vector<int64_t>(m, reject_label), {m})}, 0);
}

// Augmentation: moves each image by a random (dy, dx) in [-m, m]^2 pixels, filling
// with the background value -1 (black). A digit or garment moved by two pixels is still
// the same class, and the model stops memorising exact pixel positions: on the 8,000
// MNIST digits this is worth about half a point of held-out accuracy.
Tensor random_shift(const Tensor& x, int64_t m, Generator& gen) {
    int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    std::vector<int64_t> shifts = randint(2 * m + 1, {N, 2}, gen).to_vector_i64();
    Tensor xc = x.contiguous();
    Tensor y = full(x.shape(), -1.0f);
    const float* src = xc.data_f32();
    float* dst = y.data_f32();
    for (int64_t n = 0; n < N; ++n) {
        int64_t dy = shifts[2 * n] - m, dx = shifts[2 * n + 1] - m;
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = std::max<int64_t>(0, dy); i < std::min(H, H + dy); ++i)
                for (int64_t j = std::max<int64_t>(0, dx); j < std::min(W, W + dx); ++j)
                    dst[((n * C + c) * H + i) * W + j] = src[((n * C + c) * H + i - dy) * W + j - dx];
    }
    return y;
}

}  // namespace

int train_classifier(int argc, char** argv, int first) {
    Args args("diffuse train classifier --data mnist|fashion|cifar10|DIR --out runs/NAME [options]",
              "Trains the small CNN that `diffuse eval` uses to judge samples, and reports its\n"
              "held-out accuracy after every epoch.\n\n"
              "With --reject-class 1 (the default) the classifier has one more output, 'not an\n"
              "image of this data set', trained on synthetic negatives that make up a quarter of\n"
              "every batch: uniform and Gaussian noise, salt and pepper, smooth blobs, blank pages,\n"
              "and images drowned in noise. Then `diffuse eval` can say 'not a digit' instead of\n"
              "being confident on noise. Blurred, faint or slightly noisy images are never\n"
              "negatives: they are judged on their own merit (see diffusion/classifier.h).\n"
              "--reject-class 0 gives the plain classifier.");
    declare_run_options(args);  // --out, --config, --resume, --overwrite, --threads (tools/training_run.h)
    declare_settings(args, kClassifierSettings);
    if (!args.parse_or_help(argc, argv, first)) return 0;
    TrainingRun run(args, kLayout);  // the folder claimed and locked, --config applied
    const std::string& out = run.out();
    ClassifierSettings set = classifier_settings(args);
    int64_t epochs = set.epochs > 0 ? set.epochs : set.data.starts_with("fashion") ? 8 : 20;
    std::printf("device: %s\n", device_description(set.device).c_str());

    diffusion::Dataset train = diffusion::load_dataset(set.data, "train", set.data_options);
    diffusion::Dataset test = diffusion::load_dataset(set.data, "test", set.data_options);
    std::printf("data: %s, %lld train / %lld held-out images of shape %s, %lld classes\n", train.name.c_str(),
                (long long)train.size(), (long long)test.size(), train.image_shape().c_str(),
                (long long)train.num_classes);

    run.begin();  // the settings and the data are good: now an earlier run may be deleted (--overwrite)
    run.write_config(settings_text("train classifier", set, kClassifierSettings));

    diffusion::ClassifierConfig& cfg = set.model;
    cfg.in_channels = train.images.size(1);
    cfg.image_size = train.images.size(2);
    cfg.num_classes = train.num_classes;
    Generator gen(set.seed);
    diffusion::Classifier model(cfg, gen);
    model.to(set.device);
    std::printf("model: %lld parameters\n", (long long)model.num_parameters());

    diffusion::BatchOptions bopt;
    bopt.batch_size = set.batch;
    bopt.seed = set.seed;
    bopt.hflip = cfg.in_channels == 3;  // flipping digits or clothes changes what they are; CIFAR's objects not
    diffusion::BatchIterator batches(train, bopt);
    int64_t steps_per_epoch = batches.batches_per_epoch(), total = epochs * steps_per_epoch;
    if (set.steps > 0) {  // the step budget wins; the learning rate's cosine ends there
        total = set.steps;
        epochs = (total + steps_per_epoch - 1) / steps_per_epoch;
    }
    nn::AdamWOptions aopt;
    aopt.lr = set.lr;
    aopt.weight_decay = 1e-4f;
    nn::AdamW opt(model.named_parameters(), aopt);  // (after model.to: the moments live beside the weights)
    int64_t warmup = std::min<int64_t>(100, total / 10);
    Generator aug_gen(set.seed + 1), neg_gen(set.seed + 2);
    // held-out negatives: made once from the held-out images, the same every epoch
    Tensor test_negatives;
    if (cfg.reject_class) {
        Generator test_neg_gen(set.seed + 3);
        test_negatives = diffusion::make_negatives(std::min<int64_t>(test.size(), 1000), test.images, test_neg_gen);
        test_negatives = test_negatives.to(set.device);
    }
    Tensor test_images = test.images.to(set.device);

    run.open_metrics();
    std::vector<float> accs;
    StepLoop loop(total, set.minutes, 0, 0, 0.0, /*report_every=*/20);
    HeldOut held;
    int64_t step = 0;
    for (int64_t epoch = 0; epoch < epochs && loop.more(); ++epoch) {
        double epoch_loss = 0.0;
        int64_t epoch_steps = 0;
        for (int64_t i = 0; i < steps_per_epoch && loop.more(); ++i) {
            diffusion::Batch b = batches.next();
            opt.set_lr(nn::cosine_lr(step + 1, set.lr, warmup, total));  // t counts from 1
            Tensor x = set.shift > 0 ? random_shift(b.x, set.shift, aug_gen) : b.x, y = b.y;
            if (cfg.reject_class) add_negatives(x, y, cfg.num_classes, neg_gen);
            Tensor loss = cross_entropy(model.forward(x.to(set.device)), y.to(set.device));
            opt.zero_grad();
            loss.backward();
            opt.step();
            ++step;
            float l = loss.item();
            check(std::isfinite(l), "train classifier: loss became ", l, " at step ", step, "; lower --lr");
            epoch_loss += l;
            ++epoch_steps;
            run.metrics.row({std::to_string(step), std::to_string(epoch + 1), cell(l), cell(opt.lr()), "", "", "",
                             run.metrics.seconds(loop.elapsed())});
            loop.step_done(step, fmt("epoch %lld  loss %.4f", (long long)epoch + 1, l));
        }
        held = evaluate(model, test_images, test.labels, test_negatives);
        accs.push_back((float)held.accuracy);
        run.metrics.row({std::to_string(step), std::to_string(epoch + 1), "", "", cell(held.accuracy),
                         cell(held.rejected), cell(held.negatives_rejected), run.metrics.seconds(loop.elapsed())});
        loop.end_line();
        std::printf("epoch %lld: mean loss %.4f, held-out accuracy %.2f%%", (long long)epoch + 1,
                    epoch_loss / std::max<int64_t>(epoch_steps, 1), 100.0 * held.accuracy);
        if (cfg.reject_class)
            std::printf(" (real ones rejected %.2f%%, held-out negatives rejected %.2f%%)", 100.0 * held.rejected,
                        100.0 * held.negatives_rejected);
        std::printf(" (%s)\n", fmt_seconds(loop.elapsed()).c_str());
    }
    loop.end();
    run.metrics.close();
    if (loop.stopped_by_ctrl_c())
        std::printf("interrupted after %lld steps: the weights so far are saved\n", (long long)step);
    else if (loop.stopped_by_time())
        std::printf("stopped by --minutes %.1f after %lld steps\n", set.minutes, (long long)step);

    // weights, with what `diffuse eval` needs to rebuild the model
    std::map<std::string, std::string> meta = {{"model", "classifier"},
                                               {"data", set.data},
                                               {"in_channels", std::to_string(cfg.in_channels)},
                                               {"image_size", std::to_string(cfg.image_size)},
                                               {"num_classes", std::to_string(cfg.num_classes)},
                                               {"width", std::to_string(cfg.width)},
                                               {"reject_class", cfg.reject_class ? "1" : "0"},
                                               {"held_out_accuracy", std::to_string(held.accuracy)},
                                               {"held_out_rejected", std::to_string(held.rejected)},
                                               {"negatives_rejected", std::to_string(held.negatives_rejected)},
                                               {"steps", std::to_string(step)},
                                               {"tinydiffusion.version", kVersion}};
    nn::save_module(out + "/classifier.safetensors", model, meta);
    Tensor logits, feats;
    diffusion::classify(model, test_images, logits, feats);
    save_npy(out + "/reference_features.npy", feats.to(Device::CPU));

    plot_loss(out + "/loss.png", read_metrics(out + "/metrics.csv"), "loss");
    std::ostringstream about, reject, list;
    about << model.num_parameters() << " parameters, " << step << " steps of AdamW (peak lr " << set.lr << ", batch "
          << set.batch << "), " << fmt_seconds(loop.elapsed()) << ". Held-out accuracy: ";
    reject << "Reject class (\"not a " << set.data
           << " image\", trained on synthetic negatives): " << 100.0 * held.rejected
           << "% of the held-out images rejected, " << 100.0 * held.negatives_rejected << "% of "
           << (cfg.reject_class ? test_negatives.size(0) : 0) << " held-out negatives rejected.";
    for (size_t i = 0; i < accs.size(); ++i) list << "<li>epoch " << i + 1 << ": " << 100.0 * accs[i] << "%</li>\n";
    HtmlPage page("Classifier on " + set.data);
    page.html("<p>" + escape_html(about.str()) + "<b>" + cell(100.0 * held.accuracy) + "%</b> on " +
              std::to_string(test.size()) + " images.</p>\n");
    if (cfg.reject_class) page.p(reject.str());
    page.h2("Training loss (log scale)")
        .image("loss.png", "loss")
        .h2("Held-out accuracy per epoch")
        .html("<ul>\n" + list.str() + "</ul>\n")
        .html(
            "<p>Files: classifier.safetensors, reference_features.npy (penultimate features of the held-out set, "
            "for <code>diffuse eval</code>), <a href=config.txt>config.txt</a>, <a "
            "href=metrics.csv>metrics.csv</a>.</p>\n")
        .write(out + "/index.html");
    std::printf(
        "held-out accuracy %.2f%%; wrote %s/{classifier.safetensors,reference_features.npy,metrics.csv,"
        "loss.png,index.html}\n",
        100.0 * held.accuracy, out.c_str());
    return loop.stopped_by_ctrl_c() ? 130 : 0;  // (a Ctrl-C: the weights and the page are still written)
}

}  // namespace td::cli
