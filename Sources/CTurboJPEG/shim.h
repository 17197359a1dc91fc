// libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev): encoding the simulator's
// virtual screen and decoding frames when pixels are needed.
#ifndef KVMLUA_CTURBOJPEG_SHIM_H
#define KVMLUA_CTURBOJPEG_SHIM_H
#include <stddef.h>
#include <turbojpeg.h>
#endif
