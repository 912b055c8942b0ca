// bench/unet_options.h: the UNet's shape on a bench's command line, shared by bench/unet.cpp
// (CPU, beside PyTorch) and bench/cuda_unet.cpp (the GPU), so both read the same flags:
//   --ch 32 --mults 1,2,2 --res-blocks 2 --attn-res 7 --heads 1 --dropout 0.1 --groups 8
//   --image-size 28 --in-channels 1
#pragma once
#include <string>
#include <vector>

#include "bench/timing.h"
#include "diffusion/unet.h"

namespace bench {

// "1,2,2" -> {1, 2, 2}
inline std::vector<int64_t> int_list(const std::string& s) {
    std::vector<std::string> parts;
    split_list(s, parts);
    std::vector<int64_t> v;
    for (const auto& p : parts) v.push_back(std::stoll(p));
    return v;
}

// argv[i] is one of the flags above: true, with its value in c (i moves past it).
inline bool unet_config_option(const char* prog, int argc, char** argv, int& i, td::diffusion::UNetConfig& c) {
    std::string value;
    if (option_value(prog, "--ch", argc, argv, i, value)) c.ch = std::stoll(value);
    else if (option_value(prog, "--mults", argc, argv, i, value)) c.mults = int_list(value);
    else if (option_value(prog, "--res-blocks", argc, argv, i, value)) c.num_res_blocks = std::stoll(value);
    else if (option_value(prog, "--attn-res", argc, argv, i, value)) c.attn_res = int_list(value);
    else if (option_value(prog, "--heads", argc, argv, i, value)) c.heads = std::stoll(value);
    else if (option_value(prog, "--dropout", argc, argv, i, value)) c.dropout = std::stof(value);
    else if (option_value(prog, "--groups", argc, argv, i, value)) c.groups = std::stoll(value);
    else if (option_value(prog, "--image-size", argc, argv, i, value)) c.image_size = std::stoll(value);
    else if (option_value(prog, "--in-channels", argc, argv, i, value)) c.in_channels = std::stoll(value);
    else return false;
    return true;
}

}  // namespace bench
