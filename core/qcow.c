/* qcow.c: not written yet. */
#include "qcow.h"
