// CWebSockets: libwebsockets 4.1 (Debian) for Swift.
// Only what Swift cannot call directly lives here, as static inline helpers prefixed CWebSockets_.
#ifndef CWEBSOCKETS_SHIM_H
#define CWEBSOCKETS_SHIM_H
#include <libwebsockets.h>
#include <openssl/ssl.h>

/// LWS_PRE is a computed macro: Swift cannot import it. Read it once.
static inline size_t CWebSockets_pre(void) { return LWS_PRE; }

/// LWS_SERVER_OPTION_* are `long long` macros built from shifts; Swift imports some, not all: name the ones we use.
static inline uint64_t CWebSockets_option_listen_share(void) { return LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE; }
static inline uint64_t CWebSockets_option_ssl_global_init(void) { return LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT; }
static inline uint64_t CWebSockets_option_fallback(void) { return LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG; }
static inline uint64_t CWebSockets_option_disable_ipv6(void) { return LWS_SERVER_OPTION_DISABLE_IPV6; }
static inline uint64_t CWebSockets_option_validate_utf8(void) { return LWS_SERVER_OPTION_VALIDATE_UTF8; }
static inline uint64_t CWebSockets_option_explicit_vhosts(void) { return LWS_SERVER_OPTION_EXPLICIT_VHOSTS; }

/// The callback type imports as a Swift closure type; take it as a plain function pointer instead.
typedef int (*CWebSockets_callback)(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len);
static inline void CWebSockets_set_callback(struct lws_protocols *p, CWebSockets_callback cb) { p->callback = cb; }

/// Log routing: lws's own log macros cannot be called from Swift; route its output to one emitter.
typedef void (*CWebSockets_log_emit)(int level, const char *line);
static inline void CWebSockets_set_log(int levels, CWebSockets_log_emit emit) { lws_set_log_level(levels, emit); }

/// SSL_CTX_set_default_verify_paths through lws's own OpenSSL include, for the client trust store.
static inline int CWebSockets_ssl_ctx_trust_defaults(void *ctx, const char *extra_ca_file) {
    SSL_CTX *c = (SSL_CTX *)ctx;
    int ok = SSL_CTX_set_default_verify_paths(c);
    if (extra_ca_file) ok = SSL_CTX_load_verify_locations(c, extra_ca_file, NULL) && ok;
    return ok;
}

#endif
