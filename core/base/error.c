/* error.c: the CORE_ERROR quark. */
#include "error.h"

G_DEFINE_QUARK(snapfs-core-error-quark, core_error)
