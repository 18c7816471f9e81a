/* domain.c: not written yet. */
#include "domain.h"
