// tools/diffuse.cpp: the `diffuse` command line. One subcommand per job; each parses
// its own options (tools/args.h) and has --help. Exit codes: 0 done, 1 an error in
// the work (td::Error: a bad file, a non-finite loss), 2 a usage error (bad flags).
#include <cstdio>
#include <cstring>
#include <string>

#include "tensor/error.h"
#include "tools/args.h"
#include "version.h"

namespace td::cli {
int train_toy(int argc, char** argv, int first);
int train_classifier(int argc, char** argv, int first);
int train_ddpm(int argc, char** argv, int first);
int train_vae(int argc, char** argv, int first);
int train_ldm(int argc, char** argv, int first);
int sample(int argc, char** argv, int first);
int eval(int argc, char** argv, int first);
int trace(int argc, char** argv, int first);
}  // namespace td::cli

namespace {

const char* kUsage =
    "usage: diffuse <command> [options]    (diffuse --version: the version)\n"
    "\n"
    "tinydiffusion: DDPM, DDIM and latent diffusion from scratch, in C++.\n"
    "\n"
    "commands:\n"
    "  train ddpm         train a DDPM (UNet, L_simple) on MNIST, Fashion-MNIST, CIFAR-10 or a folder\n"
    "  train classifier   train the CNN that judges samples (MNIST, Fashion-MNIST, CIFAR-10)\n"
    "  train toy          diffusion on 2-D points in seconds (a first look at the whole method)\n"
    "  train vae          train the KL autoencoder of latent diffusion (reconstructions, held-out PSNR)\n"
    "  train ldm          latent diffusion: a DDPM on a VAE's latents, optionally class- or text-conditional\n"
    "  sample             draw samples from a trained run with DDPM or DDIM\n"
    "  eval               judge images (.npy) with a trained classifier\n"
    "  trace              one training or sampling step, every tensor in it (see docs/debugging.md)\n"
    "\n"
    "`diffuse <command> --help` describes a command's options.\n";

int run(int argc, char** argv) {
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        std::printf("%s", kUsage);
        return argc < 2 ? 2 : 0;
    }
    std::string cmd = argv[1];
    if (cmd == "--version") {
        std::printf("diffuse (tinydiffusion) %s\n", td::kVersion);
        return 0;
    }
    if (cmd == "train") {
        if (argc < 3 || !std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h")) {
            std::printf(
                "usage: diffuse train toy|classifier|ddpm|vae|ldm [options]\n"
                "  ddpm: a diffusion model; classifier: the sample judge; toy: 2-D points;\n"
                "  vae: the latent-diffusion autoencoder; ldm: a DDPM on its latents.\n"
                "  `diffuse train MODEL --help` for options.\n");
            return argc < 3 ? 2 : 0;
        }
        std::string what = argv[2];
        if (what == "toy") return td::cli::train_toy(argc, argv, 3);
        if (what == "classifier") return td::cli::train_classifier(argc, argv, 3);
        if (what == "ddpm") return td::cli::train_ddpm(argc, argv, 3);
        if (what == "vae") return td::cli::train_vae(argc, argv, 3);
        if (what == "ldm") return td::cli::train_ldm(argc, argv, 3);
        throw td::cli::ArgError("unknown model '" + what + "' for train (expected toy, ddpm, vae, ldm or classifier)");
    }
    if (cmd == "eval") return td::cli::eval(argc, argv, 2);
    if (cmd == "sample") return td::cli::sample(argc, argv, 2);
    if (cmd == "trace") return td::cli::trace(argc, argv, 2);
    // (the benches are programs of their own, against PyTorch: not a diffuse command)
    if (cmd == "bench")
        throw td::cli::ArgError("unknown command 'bench': the benchmarks are `make bench` (bench/README.md)");
    throw td::cli::ArgError("unknown command '" + cmd + "'");
}

}  // namespace

int main(int argc, char** argv) {
    // Line-buffered even into a file or a pipe (nohup, tee): a long run's log shows its
    // progress as it goes, not when the process ends.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    try {
        return run(argc, argv);
    } catch (const td::cli::ArgError& e) {
        std::fprintf(stderr, "diffuse: %s\n(try `diffuse --help`)\n", e.what());
        return 2;
    } catch (const td::Error& e) {
        std::fprintf(stderr, "diffuse: error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "diffuse: unexpected error: %s\n", e.what());
        return 1;
    }
}
