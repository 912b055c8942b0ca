// diffusion/data/stb_guard.cpp: see stb_guard.h.
#include "diffusion/data/stb_guard.h"

#include "tensor/error.h"

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
        if (data[p] != 0xFF) { ++p; continue; }   // a stray byte
        while (p < size && data[p] == 0xFF) ++p;  // fill bytes
        if (p >= size) return;
        uint8_t m = data[p];
        if (m == 0xD9) return;  // EOI
        if (has_no_length(m)) { ++p; continue; }
        if (m == 0xC4) check_dht(data, size, p, name);
        size_t len = (size_t)byte_at(data, size, p + 1) << 8 | byte_at(data, size, p + 2);
        p += 1 + len;
        if (m == 0xDA) p = end_of_scan(data, size, p);  // SOS: its header, then the scan's data
    }
}

}  // namespace

void check_stb_hazards(const uint8_t* data, size_t size, const std::string& name) {
    check_jpeg(data, size, name);
}

}  // namespace td::diffusion
