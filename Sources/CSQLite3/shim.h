// CSQLite3: SQLite 3 for Swift.
#ifndef CSQLITE3_SHIM_H
#define CSQLITE3_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a pointer-cast macro Swift cannot import: bind text that SQLite must copy.
static inline int CSQLite3_bind_text_copy(sqlite3_stmt *s, int i, const char *text, int bytes) {
    return sqlite3_bind_text(s, i, text, bytes, SQLITE_TRANSIENT);
}

#endif
