// CAllocCounter: counts heap allocations made by the benchmark process.
// The executable that links this target defines malloc, calloc, realloc, posix_memalign, aligned_alloc and free;
// the dynamic linker binds every library's calls (libswiftCore included) to them, and they forward to glibc's
// __libc_* entry points after bumping a counter. Counting is process-wide: read it around single-threaded code.
#pragma once
#include <stdint.h>

/// Allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) since the process started.
uint64_t CAllocCounter_allocations(void);
/// free calls with a non-null pointer since the process started.
uint64_t CAllocCounter_frees(void);
