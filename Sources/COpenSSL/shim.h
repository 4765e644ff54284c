// COpenSSL: OpenSSL 3 (libssl, libcrypto) for Swift.
#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

// `EVP_MAX_MD_SIZE` imports, but a helper keeps the digest buffer size next to the digests we use.
static inline int COpenSSL_max_md_size(void) { return EVP_MAX_MD_SIZE; }

#endif
