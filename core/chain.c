/* chain.c: not written yet. */
#include "chain.h"
