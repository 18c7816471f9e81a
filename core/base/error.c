/* error.c: the CORE_ERROR quark and its one setter shorthand. */
#include "error.h"

G_DEFINE_QUARK(snapfs-core-error-quark, core_error)

gboolean
core_error_invalid(GError **error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_propagate_error(error, g_error_new_valist(CORE_ERROR, CORE_ERROR_INVALID, fmt, ap));
    va_end(ap);
    return FALSE;
}
