// CWebSockets: libwebsockets 4.1 (Debian) for Swift.
// Only what Swift cannot call directly lives here, as static inline helpers prefixed CWebSockets_.
#ifndef CWEBSOCKETS_SHIM_H
#define CWEBSOCKETS_SHIM_H
#include <stdlib.h>
#include <ev.h>
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
static inline uint64_t CWebSockets_option_libev(void) { return LWS_SERVER_OPTION_LIBEV; }

// libev, the loop lws runs on (lws's own poll() backend scans every descriptor on each wake-up: O(connections)).
// ev.h's loop API is macro-heavy (EV_P, EVRUN_ONCE); these helpers keep it out of Swift.
static inline void *CWebSockets_ev_loop_new(void) { return ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV); }
static inline int CWebSockets_ev_run_once(void *loop) { return ev_run((struct ev_loop *)loop, EVRUN_ONCE); }
static inline void CWebSockets_ev_loop_destroy(void *loop) { ev_loop_destroy((struct ev_loop *)loop); }

// libev timers for Patchbay's own deadline heap, and a 100 ms "kick" for lws's internal timers. Under a libev loop,
// lws re-arms its own timer only from its idle watcher, which it starts after servicing a socket: a deadline lws
// sets while handling anything else can wait for the next socket event (measured: pings and idle hang-ups never
// fired on a quiet connection). The kick wakes lws's cancel pipe, which runs that idle pass. Our deadlines do not
// go through lws at all. The watcher is the first member so the callback can find its owner.
typedef void (*CWebSockets_timer_callback)(void *owner);
struct CWebSockets_timer { ev_timer watcher; CWebSockets_timer_callback callback; void *owner; };
static void CWebSockets_timer_fired(struct ev_loop *loop, ev_timer *w, int revents) {
    (void)loop; (void)revents;
    struct CWebSockets_timer *t = (struct CWebSockets_timer *)w;
    t->callback(t->owner);
}
static inline void *CWebSockets_timer_new(CWebSockets_timer_callback callback, void *owner) {
    struct CWebSockets_timer *t = (struct CWebSockets_timer *)calloc(1, sizeof *t);
    if (!t) return NULL;
    ev_init(&t->watcher, CWebSockets_timer_fired);
    t->callback = callback;
    t->owner = owner;
    return t;
}
/// (Re)arms the timer to fire `seconds` from now (the loop's clock refreshed first, so a busy iteration does not
/// make it late).
static inline void CWebSockets_timer_start(void *loop, void *timer, double seconds) {
    struct CWebSockets_timer *t = (struct CWebSockets_timer *)timer;
    ev_timer_stop((struct ev_loop *)loop, &t->watcher);
    ev_now_update((struct ev_loop *)loop);
    ev_timer_set(&t->watcher, seconds, 0.);
    ev_timer_start((struct ev_loop *)loop, &t->watcher);
}
/// Fires every `seconds`, starting `seconds` from now.
static inline void CWebSockets_timer_start_repeating(void *loop, void *timer, double seconds) {
    struct CWebSockets_timer *t = (struct CWebSockets_timer *)timer;
    ev_timer_stop((struct ev_loop *)loop, &t->watcher);
    ev_timer_set(&t->watcher, seconds, seconds);
    ev_timer_start((struct ev_loop *)loop, &t->watcher);
}
static inline void CWebSockets_timer_stop(void *loop, void *timer) {
    ev_timer_stop((struct ev_loop *)loop, &((struct CWebSockets_timer *)timer)->watcher);
}
static inline void CWebSockets_timer_free(void *timer) { free(timer); }

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
