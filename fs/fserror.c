/* fserror.c: the single mapping from GError to errno. */
#include "fserror.h"

#include <errno.h>

#include "error.h"

int
fs_errno_from_error(const GError *error)
{
    if (!error)
        return EIO;
    if (error->domain == G_FILE_ERROR) {
        switch (error->code) {
        case G_FILE_ERROR_NOENT: return ENOENT;
        case G_FILE_ERROR_EXIST: return EEXIST;
        case G_FILE_ERROR_ACCES: return EACCES;
        case G_FILE_ERROR_PERM: return EPERM;
        case G_FILE_ERROR_NOTDIR: return ENOTDIR;
        case G_FILE_ERROR_ISDIR: return EISDIR;
        case G_FILE_ERROR_INVAL: return EINVAL;
        case G_FILE_ERROR_NOSPC: return ENOSPC;
        case G_FILE_ERROR_ROFS: return EROFS;
        case G_FILE_ERROR_LOOP: return ELOOP;
        case G_FILE_ERROR_NAMETOOLONG: return ENAMETOOLONG;
        case G_FILE_ERROR_MFILE: return EMFILE;
        case G_FILE_ERROR_NOMEM: return ENOMEM;
        default: return EIO;
        }
    }
    if (error->domain == CORE_ERROR) {
        switch ((CoreError)error->code) {
        case CORE_ERROR_PARSE:
        case CORE_ERROR_INVALID:
        case CORE_ERROR_UNSUPPORTED: return EINVAL;
        case CORE_ERROR_CORRUPT: return EIO;
        case CORE_ERROR_LOOP: return ELOOP;
        case CORE_ERROR_EXISTS: return EEXIST;
        case CORE_ERROR_NOT_FOUND: return ENOENT;
        case CORE_ERROR_BUSY: return EBUSY;
        case CORE_ERROR_TOO_BIG: return EFBIG;
        case CORE_ERROR_UNREACHABLE: return EIO;
        }
    }
    return EIO;
}

void
fs_reply_error(fuse_req_t req, const GError *error)
{
    int err = fs_errno_from_error(error);

    if (err == EIO)
        g_message("I/O error: %s", error ? error->message : "unknown");
    fuse_reply_err(req, err);
}
