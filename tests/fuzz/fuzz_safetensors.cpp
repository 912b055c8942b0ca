// tests/fuzz/fuzz_safetensors.cpp: the .safetensors reader (nn/safetensors.h): the JSON
// header, dtypes, shapes, data_offsets, fed from memory.
// Seeds: tests/fuzz/corpus/safetensors/ (F32 / I64 / F16 / BF16 / F64 tensors, metadata,
// an empty tensor, a scalar); tokens of the format in tests/fuzz/safetensors.dict.
#include "nn/safetensors.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::run_parser("fuzz.safetensors", [&] {
        std::map<std::string, std::string> meta;
        auto tensors = td::nn::load_safetensors_bytes(data, size, "fuzz.safetensors", &meta);
        // The tensors tile the data section, so together they are no larger than the file
        // (F16 / BF16 double in size as float32).
        int64_t total = 0;
        for (const auto& [name, t] : tensors) total += t.numel();
        fuzz::expect(total <= (int64_t)size, "more elements than the file has bytes");
    });
    return 0;
}
