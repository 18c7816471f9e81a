/* fserror.h: GError -> errno at the FUSE boundary, and the one error reply. */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <glib.h>

G_BEGIN_DECLS

int fs_errno_from_error(const GError *error);

/* Replies with the errno of @error; EIO-class errors are logged. */
void fs_reply_error(fuse_req_t req, const GError *error);

G_END_DECLS
