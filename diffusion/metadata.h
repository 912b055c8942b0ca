// diffusion/metadata.h: the "__metadata__" of our .safetensors files (string -> string)
// and its readers, shared by the model files (model_file.h) and the autoencoder's (vae.h).
// Every reader's error names the file and the key.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace td::diffusion {

using Metadata = std::map<std::string, std::string>;

std::string join_ints(const std::vector<int64_t>& v);  // {1, 2, 2} -> "1,2,2"

// The value of a required key; a missing one is a td::Error naming `path` and the key.
const std::string& meta_need(const Metadata& m, const std::string& key, const std::string& path);
int64_t meta_int(const Metadata& m, const std::string& key, const std::string& path);
double meta_double(const Metadata& m, const std::string& key, const std::string& path);
std::vector<int64_t> meta_list(const Metadata& m, const std::string& key, const std::string& path);  // "1,2,2"

// An optional key: files written before it existed load with the fallback.
std::string meta_or(const Metadata& m, const std::string& key, const std::string& fallback);
int64_t meta_int_or(const Metadata& m, const std::string& key, int64_t fallback, const std::string& path);

}  // namespace td::diffusion
