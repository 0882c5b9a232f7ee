/*
 * mbedtls_config.h — the mbedtls 2.28 configuration of the browser build (MBEDTLS_CONFIG_FILE):
 * only what lib/crypto_mbedtls.c uses (NOTES.md "The Signal library as WebAssembly"). No
 * entropy, no file system, no platform time: the wasm module gets randomness from
 * crypto.getRandomValues through keywave_web.c.
 */
#ifndef KW_MBEDTLS_CONFIG_H
#define KW_MBEDTLS_CONFIG_H

#define MBEDTLS_AES_C
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_MODE_CTR
#define MBEDTLS_CIPHER_PADDING_PKCS7
#define MBEDTLS_CIPHER_C
#define MBEDTLS_GCM_C
#define MBEDTLS_MD_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_HKDF_C

#include "mbedtls/check_config.h"

#endif
