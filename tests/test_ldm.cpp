// tests/test_ldm.cpp: latent diffusion end to end on a synthetic set: the latent cache
// (round trip, reuse, invalidation), a latent model's file (the autoencoder travels in
// it), `diffuse train vae` -> `train ldm --cond class` -> `sample --class / --sweep`, and
// conditioning flags refused with a clear message when they do not fit the run.
#include <filesystem>
#include <fstream>

#include "diffusion/latent.h"
#include "diffusion/model_file.h"
#include "diffusion/trainer.h"
#include "nn/safetensors.h"
#include "tensor/npy.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;
namespace fs = std::filesystem;

namespace {

VAEConfig tiny_vae() {  // 8x8 images -> 2 x 2 x 2 latents (f = 4)
    VAEConfig c;
    c.image_size = 8;
    c.ch = 8;
    c.mults = {1, 1, 2};
    c.z_channels = 2;
    c.groups = 4;
    return c;
}

}  // namespace

TEST_CASE("ldm: the latent cache round trip, reuse, and a new cache for other weights") {
    VAE vae(tiny_vae());
    Dataset data = tdtest::bars_dataset(12, 8);
    std::string dir = tdtest::scratch("latent_cache"), weights = tdtest::scratch("latent_cache_vae.safetensors");
    fs::remove_all(dir);
    nn::save_module(weights, vae, to_metadata(vae.config()));

    LatentCache a = cached_latents(vae, weights, data, dir);  // encodes and writes
    REQUIRE(fs::exists(dir + "/bars-train.safetensors"));
    CHECK(a.latents.shape() == Shape{12, 2, 2, 2});
    LatentCache b = load_latent_cache(dir + "/bars-train.safetensors");
    CHECK(b.latents.to_vector() == a.latents.to_vector());
    CHECK(b.labels.to_vector_i64() == data.labels.to_vector_i64());
    CHECK(b.dataset == "bars");
    CHECK(b.vae_digest == file_digest(weights));
    // the cache holds the posterior means: encoding again gives the same codes
    CHECK(encode_latents(vae, data.images, 5).to_vector() == a.latents.to_vector());

    // other weights, other digest: the cache is not reused
    {
        NoGradGuard g;
        vae.post_quant_conv->bias.fill_(0.5f);
        vae.quant_conv->bias.fill_(0.25f);
    }
    nn::save_module(weights, vae, to_metadata(vae.config()));
    LatentCache c = cached_latents(vae, weights, data, dir);
    CHECK(c.vae_digest != a.vae_digest);
    CHECK(c.latents.to_vector() != a.latents.to_vector());

    // 1/std gives unit variance
    double s = latent_scale_factor(c.latents);
    Dataset z = latent_dataset(data, c, s);
    std::vector<float> v = z.images.to_vector();
    double m = 0, ss = 0;
    for (float x : v) m += x;
    m /= v.size();
    for (float x : v) ss += (x - m) * (x - m);
    CHECK(ss / (v.size() - 1) == doctest::Approx(1.0).epsilon(1e-4));

    // not a cache: a clear error naming the file
    try {
        load_latent_cache(weights);
        FAIL("a VAE file is not a latent cache");
    } catch (const Error& e) {
        CHECK(tdtest::contains(e.what(), weights));
        CHECK(tdtest::contains(e.what(), "not a latent cache"));
    }
}

TEST_CASE("ldm: diffuse train vae, train ldm --cond class, sample --class / --sweep / .npy with labels" *
          doctest::test_suite("long")) {
    std::string data = tdtest::scratch("bars16_ldm"), vae = tdtest::scratch("run_ldm_vae"),
                ldm = tdtest::scratch("run_ldm"), pix = tdtest::scratch("run_ldm_pixel");
    fs::create_directories(data);
    for (auto d : {vae, ldm, pix}) fs::remove_all(d);
    tdtest::write_bars(data, "train", 64, 16);
    tdtest::write_bars(data, "test", 16, 16);
    using tdtest::run_diffuse;
    auto v = run_diffuse(
        "train vae --data " + data + " --out " + vae +
        " --ch 8 --mults 1,2,2 --z-channels 2 --groups 4 --steps 4 --batch 16 --threads 1 --eval-images 16");
    INFO(v.output);
    REQUIRE(v.code == 0);
    REQUIRE(fs::exists(vae + "/model.safetensors"));

    std::string unet =
        " --ch 8 --mults 1 --res-blocks 1 --attn-res 4 --groups 4 --T 50 --batch 16 --threads 1"
        " --final-samples 4 --final-steps 2 --steps 3";
    auto l = run_diffuse("train ldm --vae " + vae + " --data " + data + " --out " + ldm + unet + " --cond class");
    INFO(l.output);
    REQUIRE(l.code == 0);
    CHECK(tdtest::contains(l.output, "latents: encoding 64"));
    CHECK(tdtest::contains(l.output, "scale factor"));
    for (const char* f :
         {"model.safetensors", "samples.png", "guidance.png", "denoise.png", "forward.png", "index.html"})
        CHECK(fs::exists(ldm + "/" + f));
    CHECK(fs::exists(vae + "/latents/bars16_ldm-train.safetensors"));

    // the model file carries its autoencoder: sampling needs nothing else
    LoadedModel m = load_model(ldm + "/model.safetensors");
    Generator gen(1);
    CHECK(m.info.latent());
    REQUIRE(m.vae);
    CHECK(m.noise_shape(3) == Shape{3, 2, 4, 4});
    CHECK(m.decode(randn(m.noise_shape(3), gen)).shape() == Shape{3, 1, 16, 16});

    std::string npy = tdtest::scratch("ldm_samples.npy");
    fs::remove(tdtest::scratch("ldm_samples.labels.npy"));
    auto s = run_diffuse("sample --run " + ldm + " --class all --n 4 --steps 2 --guidance 3 --out " + npy);
    INFO(s.output);
    REQUIRE(s.code == 0);
    Tensor x = load_npy(npy), y = load_npy(tdtest::scratch("ldm_samples.labels.npy"));
    CHECK(x.shape() == Shape{4, 1, 16, 16});                       // decoded pixels, not latents
    CHECK(y.to_vector_i64() == std::vector<int64_t>{0, 2, 5, 7});  // 'all': spread over the 10 classes of an IDX folder
    CHECK(run_diffuse("sample --run " + ldm + " --class 1 --n 2 --steps 2 --out " + tdtest::scratch("one.png")).code ==
          0);
    CHECK(run_diffuse("sample --run " + ldm + " --sweep --steps 2 --out " + tdtest::scratch("sweep.png")).code == 0);

    // flags that do not fit the run: usage errors (exit 2) that say why
    auto p = run_diffuse("sample --run " + ldm + " --prompt \"a bar\" --out " + tdtest::scratch("p.png"));
    CHECK(p.code == 2);
    CHECK(tdtest::contains(p.output, "--prompt needs a text-conditional model"));
    auto c = run_diffuse("sample --run " + ldm + " --class 10 --out " + tdtest::scratch("c.png"));
    CHECK(c.code == 2);
    CHECK(tdtest::contains(c.output, "0..9"));
    auto nv = run_diffuse("train ldm --data " + data + " --out " + tdtest::scratch("run_ldm_novae") + unet);
    CHECK(nv.code == 2);
    CHECK(tdtest::contains(nv.output, "needs --vae"));
    auto vd = run_diffuse("train ddpm --vae " + vae + " --data " + data + " --out " + pix + unet);
    CHECK(vd.code == 2);
    CHECK(tdtest::contains(vd.output, "train ldm"));

    // an unconditional pixel model refuses --class
    auto u = run_diffuse("train ddpm --data " + data + " --out " + pix + unet + " --attn-res 16");
    REQUIRE(u.code == 0);
    auto uc = run_diffuse("sample --run " + pix + " --class 1 --out " + tdtest::scratch("u.png"));
    CHECK(uc.code == 2);
    CHECK(tdtest::contains(uc.output, "unconditional model"));
}

TEST_CASE("ldm: train ldm with no UNet flags fits the UNet to the latents (7 x 7: one level, attention at 7)" *
          doctest::test_suite("long")) {
    // 28 x 28 images through an f = 4 autoencoder: MNIST's 7 x 7 latents, which the pixel
    // defaults (mults 1,2,2) cannot halve
    std::string data = tdtest::scratch("bars28_ldm"), vae = tdtest::scratch("run_ldm_vae28"),
                ldm = tdtest::scratch("run_ldm_auto"), other = tdtest::scratch("run_ldm_auto_bad");
    fs::create_directories(data);
    for (auto d : {vae, ldm, other}) fs::remove_all(d);
    tdtest::write_bars(data, "train", 32, 28);
    tdtest::write_bars(data, "test", 8, 28);
    using tdtest::run_diffuse;
    auto v =
        run_diffuse("train vae --data " + data + " --out " + vae +
                    " --ch 8 --mults 1,2,2 --z-channels 2 --groups 4 --steps 2 --batch 8 --threads 1 --eval-images 8");
    INFO(v.output);
    REQUIRE(v.code == 0);
    std::string budget = " --steps 2 --batch 8 --threads 1 --final-samples 2 --final-steps 2";
    auto l = run_diffuse("train ldm --vae " + vae + " --data " + data + " --out " + ldm + " --cond class" + budget);
    INFO(l.output);
    REQUIRE(l.code == 0);
    CHECK(tdtest::contains(l.output,
                           "UNet for 2 x 7 x 7 latents: --mults 1 (one level: 7 is odd, it cannot be halved), "
                           "--attn-res 7 (the lowest resolution"));
    LoadedModel m = load_model(ldm + "/model.safetensors");
    CHECK(m.info.unet.mults == std::vector<int64_t>{1});
    CHECK(m.info.unet.attn_res == std::vector<int64_t>{7});
    // config.txt holds the chosen values, so --resume rebuilds the same UNet without choosing again
    std::ifstream cfg(ldm + "/config.txt");
    std::string config((std::istreambuf_iterator<char>(cfg)), {});
    CHECK(tdtest::contains(config, "\nmults = 1\n"));
    CHECK(tdtest::contains(config, "\nattn-res = 7\n"));
    auto r =
        run_diffuse("train ldm --out " + ldm + " --resume --steps 3 --threads 1 --final-samples 2 --final-steps 2");
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK_FALSE(tdtest::contains(r.output, "UNet for"));

    // a choice the user made is kept: mults 1,2 halves 7, which is refused with the reason (exit 2);
    // attention alone left to auto follows the user's levels
    auto bad = run_diffuse("train ldm --vae " + vae + " --data " + data + " --out " + other + " --mults 1,2" + budget);
    CHECK(bad.code == 2);
    CHECK(tdtest::contains(bad.output, "image size 7 cannot be halved 1 times"));
    auto pix = run_diffuse("train ddpm --data " + data + " --out " + other +
                           " --ch 8 --groups 4 --res-blocks 1 --mults 1,2 "
                           "--T 50" +
                           budget);
    INFO(pix.output);
    CHECK(pix.code == 0);
    CHECK(tdtest::contains(pix.output, "UNet for 1 x 28 x 28 images: --attn-res 14 (the lowest resolution"));
}

TEST_CASE("ldm: a text-conditional latent model samples from a prompt" * doctest::test_suite("long")) {
    std::string data = tdtest::scratch("bars16_ldm"), vae = tdtest::scratch("run_ldm_vae"),
                ldm = tdtest::scratch("run_ldm_text");
    REQUIRE(fs::exists(vae + "/model.safetensors"));  // from the test case above (a "long" one: so is this)
    fs::remove_all(ldm);
    auto l = tdtest::run_diffuse("train ldm --vae " + vae + " --data " + data + " --out " + ldm +
                                 " --ch 8 --mults 1 --res-blocks 1 --attn-res 4 --groups 4 --T 50 --batch 16"
                                 " --threads 1 --final-samples 2 --final-steps 2 --steps 2 --cond text --text-dim 16");
    INFO(l.output);
    REQUIRE(l.code == 0);
    CHECK(tdtest::contains(l.output, "latents: 64 cached codes"));  // the cache of the test above
    auto s = tdtest::run_diffuse("sample --run " + ldm + " --prompt \"a picture of class 1\" --n 2 --steps 2 --out " +
                                 tdtest::scratch("text.png"));
    INFO(s.output);
    CHECK(s.code == 0);
}

TEST_CASE("ldm: a conditional trainer drops the condition at p_uncond and resumes bit for bit") {
    Dataset d = tdtest::bars_dataset(40, 8);
    d.name = "mnist";  // captions of a data set the text encoder knows
    d.num_classes = 10;
    for (Conditioning cond : {Conditioning::Class, Conditioning::Text}) {
        INFO(conditioning_name(cond));
        ModelInfo info = tdtest::tiny_ddpm(50);
        info.unet.cond = cond;
        info.unet.num_classes = 10;
        info.unet.text_dim = 16;
        info.unet.text_heads = 2;
        TrainOptions to;
        to.batch_size = 16;
        to.total_steps = 6;
        to.p_uncond = 0.5f;

        // about half the conditions are the null one
        DdpmTrainer probe(info, to, d);
        Tensor y = probe.draw_condition(Tensor::from_vector_i64(std::vector<int64_t>(400, 1), {400}));
        Tensor null = probe.model().null_condition(1);
        int64_t dropped = 0;
        for (int64_t i = 0; i < 400; ++i) dropped += y.slice(0, i, i + 1).to_vector_i64() == null.to_vector_i64();
        CHECK(dropped > 150);
        CHECK(dropped < 250);

        std::vector<float> straight, resumed;
        {
            DdpmTrainer a(info, to, d);
            for (int i = 0; i < 6; ++i) straight.push_back(a.step().loss);
        }
        std::string ckpt = tdtest::scratch("ldm_resume_" + conditioning_name(cond) + ".safetensors");
        {
            DdpmTrainer b(info, to, d);
            for (int i = 0; i < 2; ++i) resumed.push_back(b.step().loss);
            b.save_checkpoint(ckpt);
        }
        DdpmTrainer c(info, to, d);
        c.load_checkpoint(ckpt);
        for (int i = 2; i < 6; ++i) resumed.push_back(c.step().loss);
        CHECK(resumed == straight);  // exactly: the dropped conditions and captions come from saved state
    }
}
