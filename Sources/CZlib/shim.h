// zlib (Debian zlib1g-dev): deflate and CRC-32 for the PNG writer of Sources/NanoKVM.
#ifndef KVMLUA_CZLIB_SHIM_H
#define KVMLUA_CZLIB_SHIM_H
#include <zlib.h>
#endif
