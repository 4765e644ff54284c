#include "CAllocCounter.h"
