/* manage.h: snapshot and domain management on the store, as libvirt's qemu driver does for an
 * inactive domain: create, redefine, current, delete, revert, genid, define, undefine, import. */
#pragma once

#include <glib.h>

#include "store.h"

G_BEGIN_DECLS

/* virDomainSnapshotCreateXML flags snapfs uses. */
typedef enum {
    MANAGE_CREATE_REDEFINE = 1 << 0,
    MANAGE_CREATE_CURRENT = 1 << 1,
    MANAGE_CREATE_NO_METADATA = 1 << 2,
    MANAGE_CREATE_DISK_ONLY = 1 << 4,
} ManageCreateFlags;

/* Every function: takes the store lock, loads the domain fresh, validates, applies
 * (images first, then metadata, each file atomically), releases the lock. On
 * failure nothing is changed (what was done is rolled back) and @error holds
 * libvirt's text; on success @result (owned) says what was done, as virsh would
 * ("Domain snapshot s1 created"). Errors: CORE_ERROR_* (INVALID, NOT_FOUND, EXISTS,
 * UNSUPPORTED, BUSY, TOO_BIG), G_FILE_ERROR from the file system. */

/* @payload: <domainsnapshot> XML, or a bare name (one line): an external disk-only
 * snapshot with defaults. */
gboolean manage_create(Store *store, const char *domain, const char *payload, gsize len,
                       guint flags, char **result, GError **error);

/* Several <domainsnapshot> documents in any order: redefined parents first, all or
 * nothing; <active>1</active> restores current. */
gboolean manage_import(Store *store, const char *domain, const char *payload, gsize len,
                       char **result, GError **error);

/* Makes @snap current (virsh snapshot-current DOM SNAP); @snap NULL clears current. */
gboolean manage_set_current(Store *store, const char *domain, const char *snap,
                            char **result, GError **error);

/* "SNAP [--children|--children-only] [--metadata]" on one line; or the options
 * alone on a first line ("--" for none) and SNAP alone on the second, escaped as
 * in snapshots.tsv (util_tsv_escape()): any name, blanks or a leading "--". */
/* The snapshot a ctl/delete payload names (owned) and its flags, as manage_delete() reads
 * them. CORE_ERROR_INVALID for what it would refuse. */
gboolean manage_parse_delete_args(const char *args, char **name, guint *flags, GError **error);

gboolean manage_delete(Store *store, const char *domain, const char *args, char **result,
                       GError **error);

gboolean manage_revert(Store *store, const char *domain, const char *snap, char **result,
                       GError **error);

/* "new" or a GUID. */
gboolean manage_genid(Store *store, const char *domain, const char *arg, char **result,
                      GError **error);

/* Defines a new domain or updates one with the same name and uuid. */
gboolean manage_define(Store *store, const char *xml, gsize len, char **result,
                       GError **error);

/* "NAME [--snapshots-metadata]". */
gboolean manage_undefine(Store *store, const char *args, char **result, GError **error);

/* Finishes or undoes every change of images that a crash interrupted (the journals
 * in SNAPSHOT_DIR/.snapfs-journal), under the store lock; nothing with a read-only
 * store. @resolved and @failed (char *) receive a line per journal: what was
 * resolved, or why not. An unresolved journal stays, and every change of that
 * domain tries again first (and fails while it cannot be resolved). */
void manage_recover(Store *store, GPtrArray *resolved, GPtrArray *failed);

G_END_DECLS
