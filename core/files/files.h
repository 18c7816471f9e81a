/* files.h: the files backend: libvirt's on-disk store, read and changed in place as
 * libvirt's qemu driver does for inactive domains (store, watch, live, guard, manage,
 * backup_job). */
#pragma once

#include <glib.h>

#include "backend.h"
#include "store.h"

G_BEGIN_DECLS

typedef struct {
    const char *root;          /* STORE: STORE/qemu and STORE/qemu/snapshot */
    const char *config_dir;    /* -o config_dir (overrides STORE/qemu) */
    const char *snapshot_dir;  /* -o snapshot_dir (overrides CONFIG_DIR/snapshot) */
    const char *run_dir;       /* -o run_dir: libvirt's status files (else found) */
    gboolean read_only;        /* -o ro: nothing on disk changes, not even by loading */
    gboolean live;             /* check what runs on the host (status files, locks, the
                                * daemon); FALSE: nothing is checked (tests of the store) */
} FilesOptions;

/* Opens the store (store_open()'s errors), finds what runs on the host, and finishes or
 * undoes the changes of images that a crash interrupted (each logged; an unresolved one
 * stays and is shown as such). Logs a libvirt daemon in charge of the store with the URI
 * that reaches it: every change through this backend is refused while it runs. */
Backend *files_backend_new(const FilesOptions *options, GError **error);

/* The store under @backend (a files backend). */
Store *files_backend_store(Backend *backend);

G_END_DECLS
