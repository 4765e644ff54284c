// Signing: HMAC, SHA and base64 over OpenSSL. The only importer of COpenSSL.
internal import COpenSSL
