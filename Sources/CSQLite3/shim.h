// CSQLite3: SQLite 3 for Swift.
#ifndef CSQLITE3_SHIM_H
#define CSQLITE3_SHIM_H
#include <sqlite3.h>

#endif
