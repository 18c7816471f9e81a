/* store.h: the on-disk store in libvirt's layout: domain configs and snapshot metadata files. */
#pragma once

#include <glib.h>

#include "domain.h"
#include "hier.h"

G_BEGIN_DECLS

typedef struct {
    char *config_dir;     /* STORE/qemu or -o config_dir= */
    char *snapshot_dir;   /* STORE/qemu/snapshot or -o snapshot_dir= */
} Store;

/* One domain as loaded: its definition and snapshot hierarchy. */
typedef struct {
    DomainDef *def;
    SnapTree *snaps;
    GPtrArray *warnings;  /* char *: what loading skipped and why (libvirt's log texts) */
} StoreDomain;

/* @root: STORE (uses root/qemu and root/qemu/snapshot) unless @config_dir /
 * @snapshot_dir override. Fails with G_FILE_ERROR_NOENT when the config dir is missing. */
Store *store_open(const char *root, const char *config_dir, const char *snapshot_dir,
                  GError **error);
void store_free(Store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Store, store_free)

void store_domain_free(StoreDomain *sd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreDomain, store_domain_free)

/* Domain names (from config_dir/NAME.xml), sorted. Owned. */
GPtrArray *store_list_domains(Store *store, GError **error);

/* Loads config_dir/NAME.xml and every entry of snapshot_dir/NAME/ as libvirt's
 * qemuDomainSnapshotLoad does (every entry but . and .., 1 MiB limit, REDEFINE|INTERNAL
 * parse, bad files skipped with a warning, last <active>1 wins, inconsistent
 * relations clear current). Removes stale FILE.new leftovers. */
StoreDomain *store_load_domain(Store *store, const char *name, GError **error);

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

/* A cross-process lock (fcntl OFD lock on snapshot_dir/.snapfs.lock) held while a
 * change is made, so two processes sharing a store never interleave. */
typedef struct StoreLock StoreLock;
StoreLock *store_lock(Store *store, GError **error);
void store_unlock(StoreLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreLock, store_unlock)

/* A cheap fingerprint of everything store_load_domain reads (mtimes, sizes, inode
 * numbers of the files and directories), so callers reload only on change. */
guint64 store_domain_stamp(Store *store, const char *name);
guint64 store_list_stamp(Store *store);

G_END_DECLS
