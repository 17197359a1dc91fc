// OpenSSL libcrypto (Debian libssl-dev): EVP ciphers and digests for the NanoKVM
// password obfuscation (salted AES-256-CBC, EVP_BytesToKey with MD5) and SHA-256 pins.
#ifndef KVMLUA_COPENSSL_SHIM_H
#define KVMLUA_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/md5.h>
#endif
