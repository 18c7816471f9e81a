/* ops.h: the FUSE low-level operations of snapfs and the state they share. */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include "inode.h"
#include "view.h"

G_BEGIN_DECLS

typedef struct {
    Backend *backend;
    View *view;
    InodeTable *inodes;
    gboolean push;         /* data read in order is pushed ahead into the page cache */
    unsigned readahead_kb; /* the mount's readahead, set by main before INIT */
    GMutex push_lock;      /* guards push and pushers */
    GCond push_cond;       /* a pusher ended */
    guint pushers;         /* pusher threads running */
    double timeout;        /* entry and attribute timeout, seconds */
    struct fuse_session *se;   /* for cache invalidation after a change */
    GThread *poller;           /* watches the store for changes made by others */
    gint stop_poller;          /* atomic */
    GMutex files_lock;         /* guards files and next_fh */
    GHashTable *files;         /* fi->fh -> FsFile * (one reference) */
    guint64 next_fh;
    GMutex texts_lock;         /* guards texts, text_bytes and recent */
    GHashTable *texts;         /* "INO:VERSION" -> FsText *: generated texts open files read */
    GHashTable *text_bytes;    /* uid -> bytes of the texts its opens made (gsize) */
    GQueue recent;             /* FsText * no open file holds, oldest first */
    gsize recent_bytes;
    uid_t owner;               /* the daemon's user: other users' texts are bounded */
    gboolean no_opendir;       /* the kernel sends no OPENDIR/RELEASEDIR (ENOSYS once) */
    GHashTable *listings;      /* ino -> GPtrArray * of a listing read in several calls */
} FsState;

extern const struct fuse_lowlevel_ops fs_ops;

/* Starts / stops the thread that notices changes other processes make in the
 * store and invalidates the kernel's caches of them (so timeouts can be long). */
void fs_poller_start(FsState *fs);
void fs_poller_stop(FsState *fs);

/* Stops every pusher and starts no more; waits until they are gone. Call while
 * the session loop still answers requests (a pusher may wait for a READ), or after
 * the connection is gone. */
void fs_push_stop_all(FsState *fs);

/* Frees the texts kept after their files closed, after fs_files_close(). */
void fs_texts_clear(FsState *fs);

/* Frees the files the kernel left open, after the session loop. */
void fs_files_close(FsState *fs);

G_END_DECLS
