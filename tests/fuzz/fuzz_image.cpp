// tests/fuzz/fuzz_image.cpp: image files through stb_image exactly as our image-folder
// loader decodes them (diffusion/data/image_folder.h decode_image: header, decode,
// resize, center crop), for every format compiled in: PNG, JPEG, BMP, GIF, TGA, PNM.
// The output size and channel count vary with the input's length, so both the grey and
// the RGB paths and many resize ratios are exercised.
// Seeds: tests/fuzz/corpus/image/ (small PNG, JPEG, BMP, GIF, TGA, PGM and PPM files).
#include <stb/stb_image.h>

#include "diffusion/data/image_folder.h"
#include "diffusion/data/stb_guard.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Our loader accepts up to 64 megapixels; decoding that many takes seconds and
    // gigabytes under AddressSanitizer, too slow to fuzz. Larger claims take the same
    // code path, so the fuzzer skips images over 1 megapixel (the loader's own size
    // check is tested in tests/test_broken_inputs.cpp).
    // (stbi_info itself must only see what passed our guard against stb's own bugs.)
    bool stb_safe = true;
    try {
        td::diffusion::check_stb_hazards(data, size, "fuzz.png");
    } catch (const td::Error&) {
        stb_safe = false;  // decode_image below rejects it the same way
    }
    int w = 0, h = 0, comp = 0;
    if (stb_safe && size > 0 && size < (1u << 30) && stbi_info_from_memory(data, (int)size, &w, &h, &comp) &&
        (int64_t)w * h > (1 << 20))
        return 0;
    int64_t out_size = 1 + (int64_t)(size % 40), channels = size % 2 ? 1 : 3;
    fuzz::run_parser("fuzz.png", [&] {
        td::Tensor x = td::diffusion::decode_image(data, size, "fuzz.png", out_size, channels);
        fuzz::expect(x.shape() == td::Shape{channels, out_size, out_size}, "the image has the wrong shape");
        for (float v : x.to_vector()) fuzz::expect(v >= -1.0001f && v <= 1.0001f, "a pixel out of [-1, 1]");
    });
    return 0;
}
