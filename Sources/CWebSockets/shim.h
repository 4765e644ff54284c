// CWebSockets: libwebsockets 4.1 (Debian) for Swift.
// Only what Swift cannot call directly lives here, as static inline helpers prefixed CWebSockets_.
#ifndef CWEBSOCKETS_SHIM_H
#define CWEBSOCKETS_SHIM_H
#include <libwebsockets.h>

/// LWS_PRE is a computed macro: Swift cannot import it. Read it once.
static inline size_t CWebSockets_pre(void) { return LWS_PRE; }

#endif
