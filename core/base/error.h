/* error.h: the CORE_ERROR domain shared by everything in core/. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define CORE_ERROR core_error_quark()

/* Keep this small: fs/fserror.c maps each code to one errno. */
typedef enum {
    CORE_ERROR_PARSE,        /* not the XML we expect (EINVAL) */
    CORE_ERROR_INVALID,      /* breaks a rule (EINVAL) */
    CORE_ERROR_UNSUPPORTED,  /* valid, but we cannot do it (EINVAL... ENOTSUP where it fits) */
    CORE_ERROR_CORRUPT,      /* damaged on-disk data (EIO) */
    CORE_ERROR_LOOP,         /* a chain loops or is too deep (ELOOP) */
    CORE_ERROR_EXISTS,       /* the object already exists (EEXIST) */
    CORE_ERROR_NOT_FOUND,    /* no such snapshot, parent, disk (ENOENT) */
    CORE_ERROR_BUSY,         /* a job or lock holds it (EBUSY) */
    CORE_ERROR_TOO_BIG,      /* over a size limit (EFBIG) */
    CORE_ERROR_UNREACHABLE,  /* the daemon that owns it does not answer (EIO) */
} CoreError;

GQuark core_error_quark(void);

/* Sets CORE_ERROR_INVALID with a printf-style message; returns FALSE, so a parser
 * can `return core_error_invalid(error, ...)`. */
gboolean core_error_invalid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

G_END_DECLS
