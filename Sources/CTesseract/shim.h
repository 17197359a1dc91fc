// Tesseract 5 OCR through its C API (Debian libtesseract-dev, language data tesseract-ocr-eng).
//
// libtesseract is loaded on first use (dlopen), not linked: it drags in leptonica, libarchive,
// libgomp, libcurl, ICU and more, whose loading and relocation would cost every start of kvmlua
// many milliseconds (Benchmarks/startup), while only a script that reads the screen needs it.
// No pkg-config in Package.swift for the same reason (it would add -ltesseract); the header is
// found in /usr/include. Swift calls the kvm_ wrappers below; each resolves its symbol once.
// When the library cannot be loaded they return the failure value of the real function and
// kvm_tess_load_error() says why.
//
// OMP_THREAD_LIMIT=1 is set (unless the user set it) before the library and its libgomp load:
// we run one recognizer per worker thread, and Tesseract's own OpenMP threads on top of those
// oversubscribe the cores, a known cause of large slowdowns.
#ifndef KVMLUA_CTESSERACT_SHIM_H
#define KVMLUA_CTESSERACT_SHIM_H
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>
#include <tesseract/capi.h>

static inline void *kvm_tess_library(void) {
    static void *library;
    void *handle = __atomic_load_n(&library, __ATOMIC_ACQUIRE);
    if (handle == NULL) {
        setenv("OMP_THREAD_LIMIT", "1", 0);
        // libtesseract.so.5 is Debian's libtesseract5; the unversioned name is the -dev symlink.
        handle = dlopen("libtesseract.so.5", RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) handle = dlopen("libtesseract.so", RTLD_NOW | RTLD_LOCAL);
        if (handle != NULL) __atomic_store_n(&library, handle, __ATOMIC_RELEASE);
    }
    return handle;
}

/// NULL when libtesseract is loaded, else a sentence for an error message.
static inline const char *kvm_tess_load_error(void) {
    return kvm_tess_library() != NULL ? NULL
        : "cannot load libtesseract.so.5 (install the Debian packages libtesseract5 and tesseract-ocr-eng)";
}

static inline void *kvm_tess_resolve(void **slot, const char *name) {
    void *function = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (function == NULL) {
        void *library = kvm_tess_library();
        if (library == NULL) return NULL;
        function = dlsym(library, name);
        if (function != NULL) __atomic_store_n(slot, function, __ATOMIC_RELEASE);
    }
    return function;
}

#define KVM_TESS_FUNCTION(ret, name, params, args, failure)                      \
    static inline ret kvm_##name params {                                        \
        typedef ret (*function_type) params;                                     \
        static void *slot;                                                       \
        function_type f = (function_type)kvm_tess_resolve(&slot, #name);         \
        if (f == NULL) return failure;                                           \
        return f args;                                                           \
    }
#define KVM_TESS_VOID_FUNCTION(name, params, args)                               \
    static inline void kvm_##name params {                                       \
        typedef void (*function_type) params;                                    \
        static void *slot;                                                       \
        function_type f = (function_type)kvm_tess_resolve(&slot, #name);         \
        if (f != NULL) f args;                                                   \
    }

KVM_TESS_FUNCTION(const char *, TessVersion, (void), (), NULL)
KVM_TESS_FUNCTION(TessBaseAPI *, TessBaseAPICreate, (void), (), NULL)
KVM_TESS_VOID_FUNCTION(TessBaseAPIDelete, (TessBaseAPI *handle), (handle))
KVM_TESS_FUNCTION(int, TessBaseAPIInit3, (TessBaseAPI *handle, const char *datapath, const char *language),
    (handle, datapath, language), -1)
KVM_TESS_FUNCTION(BOOL, TessBaseAPISetVariable, (TessBaseAPI *handle, const char *name, const char *value),
    (handle, name, value), 0)
KVM_TESS_VOID_FUNCTION(TessBaseAPISetPageSegMode, (TessBaseAPI *handle, TessPageSegMode mode), (handle, mode))
KVM_TESS_VOID_FUNCTION(TessBaseAPISetImage,
    (TessBaseAPI *handle, const unsigned char *imagedata, int width, int height, int bytes_per_pixel, int bytes_per_line),
    (handle, imagedata, width, height, bytes_per_pixel, bytes_per_line))
KVM_TESS_VOID_FUNCTION(TessBaseAPISetSourceResolution, (TessBaseAPI *handle, int ppi), (handle, ppi))
KVM_TESS_FUNCTION(int, TessBaseAPIRecognize, (TessBaseAPI *handle, ETEXT_DESC *monitor), (handle, monitor), -1)
KVM_TESS_FUNCTION(TessResultIterator *, TessBaseAPIGetIterator, (TessBaseAPI *handle), (handle), NULL)
KVM_TESS_FUNCTION(int, TessBaseAPIMeanTextConf, (TessBaseAPI *handle), (handle), 0)
KVM_TESS_VOID_FUNCTION(TessBaseAPIClear, (TessBaseAPI *handle), (handle))
KVM_TESS_VOID_FUNCTION(TessBaseAPIEnd, (TessBaseAPI *handle), (handle))
KVM_TESS_VOID_FUNCTION(TessResultIteratorDelete, (TessResultIterator *handle), (handle))
KVM_TESS_FUNCTION(TessPageIterator *, TessResultIteratorGetPageIterator, (TessResultIterator *handle), (handle), NULL)
KVM_TESS_FUNCTION(BOOL, TessResultIteratorNext, (TessResultIterator *handle, TessPageIteratorLevel level),
    (handle, level), 0)
KVM_TESS_FUNCTION(char *, TessResultIteratorGetUTF8Text, (const TessResultIterator *handle, TessPageIteratorLevel level),
    (handle, level), NULL)
KVM_TESS_FUNCTION(float, TessResultIteratorConfidence, (const TessResultIterator *handle, TessPageIteratorLevel level),
    (handle, level), 0)
KVM_TESS_FUNCTION(BOOL, TessPageIteratorBoundingBox,
    (const TessPageIterator *handle, TessPageIteratorLevel level, int *left, int *top, int *right, int *bottom),
    (handle, level, left, top, right, bottom), 0)
KVM_TESS_FUNCTION(BOOL, TessPageIteratorIsAtBeginningOf, (const TessPageIterator *handle, TessPageIteratorLevel level),
    (handle, level), 0)
KVM_TESS_VOID_FUNCTION(TessDeleteText, (const char *text), (text))

#endif
