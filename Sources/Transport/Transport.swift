// Transport: libwebsockets contexts, one service thread each; HTTP and WebSocket server and client connections,
// router, timers, loop mailbox. The only importer of CWebSockets.
internal import CWebSockets
