/* hier.c: not written yet. */
#include "hier.h"
