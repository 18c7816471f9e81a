/* image.c: not written yet. */
#include "image.h"
