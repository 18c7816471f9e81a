/* ops.h: the FUSE low-level operations of snapfs and the state they share. */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "inode.h"
#include "view.h"

G_BEGIN_DECLS

typedef struct {
    Store *store;
    View *view;
    InodeTable *inodes;
    gboolean read_only;
    double timeout;        /* entry and attribute timeout, seconds */
    struct fuse_session *se;   /* for cache invalidation after a change */
    GThread *poller;           /* watches the store for changes made by others */
    gint stop_poller;          /* atomic */
    GMutex files_lock;         /* guards files and next_fh */
    GHashTable *files;         /* fi->fh -> FsFile * (one reference) */
    guint64 next_fh;
    gboolean no_opendir;       /* the kernel sends no OPENDIR/RELEASEDIR (ENOSYS once) */
    GHashTable *listings;      /* ino -> GPtrArray * of a listing read in several calls */
} FsState;

extern const struct fuse_lowlevel_ops fs_ops;

/* Starts / stops the thread that notices changes other processes make in the
 * store and invalidates the kernel's caches of them (so timeouts can be long). */
void fs_poller_start(FsState *fs);
void fs_poller_stop(FsState *fs);

G_END_DECLS
