// diffusion/data/stb_guard.cpp: see stb_guard.h.
#include "diffusion/data/stb_guard.h"

#include <cstring>

#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td::diffusion {

namespace {

// ---- JPEG: a Huffman table with more than 256 codes -------------------------------------
//
// A JPEG file is a run of segments "FF <marker> <2-byte big-endian length> <payload>"
// (ITU T.81 annex B), then, after each SOS (start of scan) segment, entropy-coded data
// in which a 0xFF byte is always followed by 0x00 (a stuffed byte) or by a restart
// marker D0..D7; the next other marker ends the scan. A DHT segment (marker C4) holds
// Huffman tables: a class/id byte, 16 counts (how many codes of each length 1..16),
// then that many symbols. A table has at most 256 symbols; stb 2.27's stbi__build_huffman
// (and the loop after it in stbi__process_marker) writes all sum(counts) of them into
// arrays of 257 and 256 entries without checking. Fuzzer input: a baseline JPEG whose
// DHT counts add up to 257 or more (16 x 255 at most).

// stb reads a byte past the end of its input as 0; so do we.
uint8_t byte_at(const uint8_t* data, size_t size, size_t i) { return i < size ? data[i] : 0; }

// Checks the DHT segment whose marker byte C4 is at data[at] (the FF before it), as
// stbi__process_marker would read it.
void check_dht(const uint8_t* data, size_t size, size_t at, const std::string& name) {
    int64_t left = ((int64_t)byte_at(data, size, at + 1) << 8 | byte_at(data, size, at + 2)) - 2;
    size_t p = at + 3;
    while (left > 0 && p < size) {
        uint8_t q = data[p];
        if ((q >> 4) > 1 || (q & 15) > 3) return;  // stb rejects this table itself ("bad DHT header")
        int64_t n = 0;
        for (int i = 0; i < 16; ++i) n += byte_at(data, size, p + 1 + i);
        check(n <= 256, name, ": damaged JPEG: a Huffman table (DHT segment at byte ", at - 1, ") claims ", n,
              " codes, more than the 256 a table can hold");
        left -= 17 + n;
        p += 17 + (size_t)n;
    }
}

// Markers that stand alone, without a length: TEM, SOI, the restart markers RST0..7.
bool has_no_length(uint8_t m) { return m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7); }

// The entropy-coded data of a scan, from p: returns where the FF of the marker that
// ends it is (or the end of the file). Inside, FF 00 is a stuffed FF byte and FF D0..D7
// a restart marker; both belong to the scan. (stb's decoder stops at that same marker,
// or earlier and then fails: it never reads a segment beyond it that we do not.)
size_t end_of_scan(const uint8_t* data, size_t size, size_t p) {
    while (p < size) {
        if (data[p] == 0xFF) {
            size_t q = p + 1;
            while (q < size && data[q] == 0xFF) ++q;  // fill bytes
            if (q >= size) return size;
            if (data[q] != 0x00 && !(data[q] >= 0xD0 && data[q] <= 0xD7)) return p;
            p = q;
        }
        ++p;
    }
    return size;
}

// Walks the file the way stb reads it: segments skipped by their length, stray bytes
// between them skipped up to the next FF (stb skips them too, before the first scan,
// and stops at them after), and the entropy-coded data after each SOS header skipped up
// to its end. Every DHT segment met on the way is checked. Linear in the file's size.
void check_jpeg(const uint8_t* data, size_t size, const std::string& name) {
    // stb takes a file for JPEG when it starts with SOI, FF D8, with any number of FF
    // fill bytes in between (FF FF FF D8 too: a fuzzer input that got past an FF D8 test).
    size_t p = 0;
    if (size < 2 || data[0] != 0xFF) return;
    while (p < size && data[p] == 0xFF) ++p;
    if (p >= size || data[p] != 0xD8) return;
    ++p;
    while (p < size) {
        if (data[p] != 0xFF) {
            ++p;
            continue;
        }                                         // a stray byte
        while (p < size && data[p] == 0xFF) ++p;  // fill bytes
        if (p >= size) return;
        uint8_t m = data[p];
        if (m == 0xD9) return;  // EOI
        if (has_no_length(m)) {
            ++p;
            continue;
        }
        if (m == 0xC4) check_dht(data, size, p, name);
        size_t len = (size_t)byte_at(data, size, p + 1) << 8 | byte_at(data, size, p + 2);
        p += 1 + len;
        if (m == 0xDA) p = end_of_scan(data, size, p);  // SOS: its header, then the scan's data
    }
}

// ---- PNG: a chunk claiming more bytes than the file has ------------------------------------
//
// A PNG file is the 8-byte signature, then chunks: a 4-byte big-endian length, a 4-byte
// type ("IHDR", "IDAT", ..., "IEND"), that many data bytes and a 4-byte CRC. stb 2.27's
// stbi__parse_png_file grows its buffer for the image data to what an IDAT chunk claims
// before it reads the chunk, so a 122-byte file made it ask for 1.6 GB. Fuzzer input: a
// valid 4 x 4 PNG whose IDAT length field became 0x60000015 (1,610,612,757 bytes).
void check_png(const uint8_t* data, size_t size, const std::string& name) {
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (size < 8 || std::memcmp(data, signature, 8) != 0) return;
    size_t p = 8;
    while (p + 8 <= size) {
        uint32_t len = (uint32_t)data[p] << 24 | (uint32_t)data[p + 1] << 16 | (uint32_t)data[p + 2] << 8 | data[p + 3];
        std::string type(reinterpret_cast<const char*>(data) + p + 4, 4);
        size_t left = size - (p + 8);
        if (len > left)  // (not check(): printable() would run for every chunk)
            fail(name, ": truncated PNG: chunk '", printable(type), "' at byte ", p, " claims ", len,
                 " bytes, the file has ", left, " more");
        if (type == "IEND") return;
        p += 12 + (size_t)len;  // length, type, data, CRC
    }
}

// ---- PNM (PGM, PPM): a number in the header too large for an int --------------------------
//
// The header is "P5" (grey) or "P6" (RGB), then width, height and the maximum value as
// decimal numbers separated by whitespace and "# comment" lines. stb 2.27's
// stbi__pnm_getinteger reads each digit by digit, value * 10 + digit, into an int without
// a check: a long number overflows it (undefined behaviour). Fuzzer input: "P5 4 399..9",
// a PGM header whose height had 30 digits. No valid header needs more than 2^24 (stb's
// own limits are 16384 pixels a side and a maximum value of 65535).
void check_pnm(const uint8_t* data, size_t size, const std::string& name) {
    if (size < 2 || data[0] != 'P' || (data[1] != '5' && data[1] != '6')) return;
    auto is_space = [](uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; };
    const char* fields[3] = {"width", "height", "maximum value"};
    size_t p = 2;
    for (const char* field : fields) {
        while (p < size && (is_space(data[p]) || data[p] == '#')) {  // as stbi__pnm_skip_whitespace
            if (data[p] == '#')
                while (p < size && data[p] != '\n' && data[p] != '\r') ++p;
            else ++p;
        }
        int64_t value = 0;
        for (; p < size && data[p] >= '0' && data[p] <= '9'; ++p) {
            value = value * 10 + (data[p] - '0');
            if (value > (1 << 24)) fail(name, ": damaged PNM header: its ", field, " has too many digits");
        }
    }
}

}  // namespace

void check_stb_hazards(const uint8_t* data, size_t size, const std::string& name) {
    check_jpeg(data, size, name);
    check_png(data, size, name);
    check_pnm(data, size, name);
}

}  // namespace td::diffusion
