/* store.h: the on-disk store in libvirt's layout: domain configs and snapshot metadata files. */
#pragma once

#include <glib.h>

#include "backend.h"
#include "domain.h"
#include "snaptree.h"
#include "live.h"

G_BEGIN_DECLS

typedef struct {
    char *config_dir;     /* STORE/qemu or -o config_dir= */
    char *snapshot_dir;   /* STORE/qemu/snapshot or -o snapshot_dir= */
    gboolean read_only;   /* -o ro, the one flag the mount asks: no change is made, and
                           * loading only skips FILE.new leftovers (no unlink, no lock
                           * file created); set it after store_open() */
    const LiveHost *live; /* what runs on the host (status files, daemon): borrowed, set
                           * after store_open() by who owns it; NULL: nothing is checked */
    GMutex busy_lock;     /* guards backups */
    GHashTable *backups;  /* domain -> backups reading its images (guint): see guard.h */
    GMutex light_lock;    /* guards light */
    GHashTable *light;    /* domain -> (file name -> StoreLight *): what light loads parsed */
} Store;

/* @root: STORE (uses root/qemu and root/qemu/snapshot) unless @config_dir /
 * @snapshot_dir override (with no @root and no @snapshot_dir: config_dir/snapshot).
 * Fails with G_FILE_ERROR_NOENT when the config dir is missing. The snapshot dir may
 * be missing: it is created on the first write. */
Store *store_open(const char *root, const char *config_dir, const char *snapshot_dir,
                  GError **error);
void store_free(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_free)

/* Domain names (from config_dir/NAME.xml), sorted. Owned. */
GPtrArray *store_list_domains(Store *store, GError **error);

/* Loads config_dir/NAME.xml and every entry of snapshot_dir/NAME/ as libvirt's
 * qemuDomainSnapshotLoad does (every entry but . and .., 1 MiB limit, REDEFINE|
 * DISKS|INTERNAL parse, bad files skipped with a warning, last <active>1 wins,
 * inconsistent relations clear current). Entries are read in strcmp order.
 * Skips .snapfs.lock; skips FILE.new leftovers and unlinks them (and a stale
 * config_dir/NAME.xml.new) when nobody holds the store lock. Warnings (libvirt's texts): the parser's message then "Failed to
 * parse snapshot XML from file '%s'"; "Failed to read snapshot file %s: REASON";
 * "domain moment %s already exists" (later duplicate skipped); "Too many snapshots
 * claiming to be current for domain %s"; "Snapshots have inconsistent relations for
 * domain %s". Errors: the config file cannot be read (G_FILE_ERROR) or parsed, or
 * the snapshot directory exists but cannot be listed. */
BackendDomain *store_load_domain(Store *store, const char *name, GError **error);

/* libvirt's header + secure XML + fsync/rename/dir fsync, mode 0600. */
gboolean store_write_domain(Store *store, const DomainDef *def, GError **error);
gboolean store_write_snapshot(Store *store, const char *domain, const SnapshotDef *def,
                              gboolean current, GError **error);
gboolean store_remove_snapshot(Store *store, const char *domain, const char *snap,
                               GError **error);
gboolean store_remove_domain(Store *store, const char *domain, GError **error);

/* The exact bytes libvirt writes for a snapshot metadata file / domain config. Owned. */
char *store_snapshot_file_contents(const SnapshotDef *def, gboolean current);
char *store_domain_file_contents(const DomainDef *def);

char *store_domain_path(Store *store, const char *domain);
char *store_snapshot_path(Store *store, const char *domain, const char *snap);

/* A cross-process lock (fcntl OFD lock on snapshot_dir/.snapfs.lock, created with
 * the directory when missing) held while a change is made, so two processes sharing
 * a store never interleave. Blocks until free. Not recursive: a second store_lock()
 * in the same process waits for the first. A fork()ed child shares the lock until it
 * execs or exits (the descriptor is O_CLOEXEC). */
typedef struct StoreLock StoreLock;
StoreLock *store_lock(Store *store, GError **error);
void store_unlock(StoreLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreLock, store_unlock)

/* As store_load_domain(), with every snapshot light: without its <domain> and
 * <inactiveDomain> (light_token set), so that loading costs a stat per unchanged file:
 * each file is parsed in full (same checks, same warnings) the first time and when
 * it changes (inode, size, mtime or ctime), and its light definition kept in @store.
 * For control operations, which read the domains of the few snapshots they touch:
 * store_snapshot_full() before using dom/inactive_dom or writing a definition. */
BackendDomain *store_load_domain_light(Store *store, const char *name, GError **error);

/* Makes @node of @sd (loaded light from @domain) full: reads its file again; keeps
 * the parent and current flag the tree gave it. No-op for a full one. Fails when
 * the file is gone or no longer this snapshot. */
gboolean store_snapshot_full(Store *store, const char *domain, BackendDomain *sd, SnapNode *node,
                             GError **error);

/* Makes @node light again (its file @path, as it was loaded from): drops its domains,
 * for a reader that keeps only the snapshots it used last in full. */
void store_snapshot_light(SnapNode *node, const char *path);

/* A cheap fingerprint of everything store_load_domain reads (stat of the config
 * file, the snapshot directory and each of its entries: inode, size, mode, mtime
 * and ctime in nanoseconds), so callers reload only on change. The list stamp
 * covers the config directory and its *.xml names. A same-size in-place rewrite
 * within one kernel timestamp tick (a few ms) can go unnoticed. */
guint64 store_domain_stamp(Store *store, const char *name);
guint64 store_list_stamp(Store *store);

G_END_DECLS
