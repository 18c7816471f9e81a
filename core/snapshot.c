/* snapshot.c: not written yet. */
#include "snapshot.h"
