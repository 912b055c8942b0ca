// version.h: which tinydiffusion this is. `diffuse --version` prints it, every model file
// records it (metadata "tinydiffusion.version"), and `make install` writes it into
// tinydiffusion.pc and the CMake package, so a program built on the library can ask for
// at least a given version. Raise it with each change a user of the library would notice.
#pragma once

#define TD_VERSION "0.1.0"

namespace td {
inline constexpr const char* kVersion = TD_VERSION;
}
