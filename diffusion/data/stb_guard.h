// diffusion/data/stb_guard.h: the malformed images that Debian's stb_image mishandles,
// caught before stb sees them.
//
// Our images are decoded by stb_image from Debian's libstb-dev (v2.27, a 2022 snapshot).
// Fuzzing our loader (tests/fuzz/fuzz_image.cpp, `make fuzz`) found inputs on which that
// version writes past the end of its own arrays (JPEG), allocates gigabytes a 122-byte
// file merely claims (PNG) or overflows an int (PNM): bugs fixed upstream only later.
// We cannot patch a system header, so each such input shape is recognised here, from
// the raw bytes, and rejected with a td::Error before stb is called. Each check names
// the stb function it protects and the fuzzer's input that showed the problem (kept in
// tests/fuzz/corpus/image/regress-*).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace td::diffusion {

// Throws td::Error naming `name` when the bytes are one of the known hazards; returns
// quietly otherwise (also for data that is no image at all: stb rejects that itself).
void check_stb_hazards(const uint8_t* data, size_t size, const std::string& name);

}  // namespace td::diffusion
