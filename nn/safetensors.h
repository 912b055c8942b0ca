// nn/safetensors.h: Hugging Face's .safetensors format, the way weights leave and enter
// the engine (our checkpoints, PyTorch's state dicts, diffusers' UNets and VAEs).
//
// Layout of a file:
//   bytes [0, 8)        N, the header length, a little-endian unsigned 64-bit integer
//   bytes [8, 8 + N)    a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes:
//                         {"__metadata__": {"format": "pt"},          <- optional, string -> string
//                          "down.0.conv1.weight": {"dtype": "F32", "shape": [64, 3, 3, 3],
//                                                  "data_offsets": [0, 6912]}, ...}
//   bytes [8 + N, end)  the data section: each tensor's raw little-endian, row-major bytes
//                       at [begin, end) relative to the start of the data section.
// The tensors tile the data section exactly: sorted by begin, each starts where the
// previous one ended, and the last one ends at the end of the file.
//
// Unlike a pickled PyTorch checkpoint, loading never runs code: a file is a header we
// check field by field and bytes we copy.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "nn/module.h"
#include "tensor/tensor.h"

namespace td::nn {

// Reads every tensor of a .safetensors file. F32 and I64 load as they are; F64, F16 and
// BF16 are converted to float32 (the engine's one float type). Any problem with the file
// (missing, truncated, a header that is not valid JSON, an unknown or unsupported dtype,
// data_offsets out of range, overlapping or not matching shape x dtype size) throws
// td::Error naming the file and what is wrong; sizes are checked against the file size
// before anything is allocated. If `metadata` is given, the "__metadata__" strings are
// stored there.
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);

// The same from a file's bytes already in memory; `name` stands for the file in error
// messages. The checks are the very same as load_safetensors'; the fuzz target
// tests/fuzz/fuzz_safetensors.cpp calls this.
std::map<std::string, Tensor> load_safetensors_bytes(const uint8_t* data, size_t size, const std::string& name,
                                                     std::map<std::string, std::string>* metadata = nullptr);

// Writes float32 tensors as F32 and int64 tensors as I64, in the order and byte layout
// the reference writer (safetensors.torch.save_file) produces: largest dtype first, then
// by name; compact JSON; header padded with spaces to a multiple of 8. Written to
// PATH.tmp and renamed, so an existing file is replaced whole or not at all. Tensors on
// the GPU are copied to the CPU first (a file holds no device; loading gives CPU tensors,
// and load_module / Module::load_state_dict copy them onto each parameter's device).
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// A module's state_dict() (parameters and buffers, PyTorch's dotted names) to a file,
// with "format": "pt" in the metadata (the tag Hugging Face's loaders look for; our
// names and layouts are PyTorch's) plus any `metadata` given.
void save_module(const std::string& path, const Module& module,
                 const std::map<std::string, std::string>& metadata = {});

// Loads a file into a module through load_state_dict(): strict requires the names to
// match both ways. Errors name the file and list every missing / unexpected / mis-shaped
// tensor, and every tensor whose kind differs (an integer tensor where the module has a
// float parameter, or the other way round; F16 / BF16 / F64 load as float32 and fit a
// float parameter); on error the module is left unchanged.
void load_module(const std::string& path, Module& module, bool strict = true);

// A JSON string literal, quotes included, escaped as serde_json does (safetensors headers,
// and anything else that writes JSON, such as diffuse eval --json).
std::string json_quote(const std::string& s);

}  // namespace td::nn
