// OpenSSL libcrypto (Debian libssl-dev): EVP ciphers and digests for the NanoKVM password
// obfuscation (salted AES-256-CBC, EVP_BytesToKey with MD5), SHA-256 pins and the simulator.
//
// libcrypto is loaded on first use (dlopen), not linked: loading and relocating it costs about
// 0.9 ms at every start (Benchmarks/startup), while only a login or a pinned TLS check needs it.
// Swift calls the kvm_ wrappers below; each resolves its symbol once. When the library cannot be
// loaded they return the failure value of the real function (0 or NULL) and
// kvm_crypto_load_error() says why.
#ifndef KVMLUA_COPENSSL_SHIM_H
#define KVMLUA_COPENSSL_SHIM_H
#include <dlfcn.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static inline void *kvm_crypto_library(void) {
    static void *library;
    void *handle = __atomic_load_n(&library, __ATOMIC_ACQUIRE);
    if (handle == NULL) {
        // libcrypto.so.3 is Debian's libssl3 (installed with libssl-dev); the unversioned name
        // is the -dev symlink, for other layouts.
        handle = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
        if (handle == NULL) handle = dlopen("libcrypto.so", RTLD_NOW | RTLD_LOCAL);
        if (handle != NULL) __atomic_store_n(&library, handle, __ATOMIC_RELEASE);
    }
    return handle;
}

/// NULL when libcrypto is loaded, else a sentence for an error message.
static inline const char *kvm_crypto_load_error(void) {
    return kvm_crypto_library() != NULL ? NULL : "cannot load libcrypto.so.3 (install libssl3 / libssl-dev)";
}

/// The function `name` of libcrypto, resolved once into `slot`; NULL when it cannot be loaded.
static inline void *kvm_crypto_resolve(void **slot, const char *name) {
    void *function = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (function == NULL) {
        void *library = kvm_crypto_library();
        if (library == NULL) return NULL;
        function = dlsym(library, name);
        if (function != NULL) __atomic_store_n(slot, function, __ATOMIC_RELEASE);
    }
    return function;
}

#define KVM_CRYPTO_FUNCTION(ret, name, params, args, failure)                   \
    static inline ret kvm_##name params {                                        \
        typedef ret (*function_type) params;                                     \
        static void *slot;                                                       \
        function_type f = (function_type)kvm_crypto_resolve(&slot, #name);       \
        if (f == NULL) return failure;                                           \
        return f args;                                                           \
    }

KVM_CRYPTO_FUNCTION(int, RAND_bytes, (unsigned char *buf, int num), (buf, num), 0)
KVM_CRYPTO_FUNCTION(const EVP_CIPHER *, EVP_aes_256_cbc, (void), (), NULL)
KVM_CRYPTO_FUNCTION(const EVP_MD *, EVP_md5, (void), (), NULL)
KVM_CRYPTO_FUNCTION(const EVP_MD *, EVP_sha1, (void), (), NULL)
KVM_CRYPTO_FUNCTION(const EVP_MD *, EVP_sha256, (void), (), NULL)
KVM_CRYPTO_FUNCTION(int, EVP_BytesToKey,
    (const EVP_CIPHER *type, const EVP_MD *md, const unsigned char *salt, const unsigned char *data,
     int datal, int count, unsigned char *key, unsigned char *iv),
    (type, md, salt, data, datal, count, key, iv), 0)
KVM_CRYPTO_FUNCTION(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_new, (void), (), NULL)
KVM_CRYPTO_FUNCTION(int, EVP_CipherInit_ex,
    (EVP_CIPHER_CTX *ctx, const EVP_CIPHER *cipher, ENGINE *impl, const unsigned char *key,
     const unsigned char *iv, int enc),
    (ctx, cipher, impl, key, iv, enc), 0)
KVM_CRYPTO_FUNCTION(int, EVP_CIPHER_CTX_set_padding, (EVP_CIPHER_CTX *c, int pad), (c, pad), 0)
KVM_CRYPTO_FUNCTION(int, EVP_CipherUpdate,
    (EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in, int inl),
    (ctx, out, outl, in, inl), 0)
KVM_CRYPTO_FUNCTION(int, EVP_CipherFinal_ex, (EVP_CIPHER_CTX *ctx, unsigned char *outm, int *outl),
    (ctx, outm, outl), 0)
KVM_CRYPTO_FUNCTION(int, EVP_Digest,
    (const void *data, size_t count, unsigned char *md, unsigned int *size, const EVP_MD *type, ENGINE *impl),
    (data, count, md, size, type, impl), 0)
KVM_CRYPTO_FUNCTION(unsigned char *, SHA256, (const unsigned char *d, size_t n, unsigned char *md), (d, n, md), NULL)

// EVP_CIPHER_CTX_free returns nothing, which the macro cannot express.
static inline void kvm_EVP_CIPHER_CTX_free(EVP_CIPHER_CTX *ctx) {
    static void *slot;
    void (*f)(EVP_CIPHER_CTX *) = (void (*)(EVP_CIPHER_CTX *))kvm_crypto_resolve(&slot, "EVP_CIPHER_CTX_free");
    if (f != NULL) f(ctx);
}

#endif
