/* backup.c: not written yet. */
#include "backup.h"
