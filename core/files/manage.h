/* manage.h: snapshot and domain management on the store, as libvirt's qemu driver does for an
 * inactive domain: create, redefine, current, delete, revert, genid, define, undefine, import.
 * One typed call per operation; what users write is parsed by the caller (tree/ctl.c). */
#pragma once

#include <glib.h>

#include "backend.h"
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
 * UNSUPPORTED, BUSY, TOO_BIG), G_FILE_ERROR from the file system.
 * Whether a change may go ahead is guard.h's: a change of a domain's images (create,
 * revert, delete, and the resolution of an interrupted change before any other) is
 * refused with CORE_ERROR_BUSY while a backup of that domain reads them. */

/* @xml: a <domainsnapshot> document; @flags: ManageCreateFlags. */
gboolean manage_create(Store *store, const char *domain, const char *xml, gsize len,
                       guint flags, char **result, GError **error);

/* An external disk-only snapshot @name (one line) with defaults (mkdir, or a bare name
 * written to ctl/create); @flags: MANAGE_CREATE_NO_METADATA or 0. */
gboolean manage_create_named(Store *store, const char *domain, const char *name, guint flags,
                             char **result, GError **error);

/* Several <domainsnapshot> documents in any order: redefined parents first, all or
 * nothing; <active>1</active> restores current. */
gboolean manage_import(Store *store, const char *domain, const char *payload, gsize len,
                       char **result, GError **error);

/* Makes @snap current (virsh snapshot-current DOM SNAP); @snap NULL clears current. */
gboolean manage_set_current(Store *store, const char *domain, const char *snap,
                            char **result, GError **error);

/* Deletes snapshot @snap; @flags: BackendDeleteFlags (CHILDREN and CHILDREN_ONLY exclude
 * each other). */
gboolean manage_delete(Store *store, const char *domain, const char *snap, guint flags,
                       char **result, GError **error);

gboolean manage_revert(Store *store, const char *domain, const char *snap, char **result,
                       GError **error);

/* For a backend that records definitions itself (the daemon's, where libvirt 9.0 refuses
 * it): the images of a revert of the inactive domain @dom (its current definition) to the
 * external snapshot @def (full), as manage_revert() makes them. Returns the domain the revert
 * gives (@def's captured definition under @dom's name, a new genid when it has one), each
 * external disk on a new qcow2 overlay IMAGE.SNAP-N over the image @def captured, with that
 * image's mode and owner; only in directories @dom's images are in. @overlays receives the
 * overlays made (for manage_rollback_images() when the definition cannot be recorded); on
 * failure none is left. Owned; NULL with CORE_ERROR_* or G_FILE_ERROR. */
DomainDef *manage_revert_external(const DomainDef *dom, const SnapshotDef *def,
                                  GPtrArray *overlays, GError **error);

/* Removes the overlays (@overlays, char *) and the internal snapshots @name in
 * @internal_images (may be NULL) that a failed operation made; what cannot be removed is
 * added to @error's message. */
void manage_rollback_images(GPtrArray *overlays, GPtrArray *internal_images, const char *name,
                            GError **error);

/* "new" or a GUID. */
gboolean manage_genid(Store *store, const char *domain, const char *arg, char **result,
                      GError **error);

/* Defines a new domain or updates one with the same name and uuid. */
gboolean manage_define(Store *store, const char *xml, gsize len, char **result,
                       GError **error);

/* Undefines domain @name; @flags: BackendUndefineFlags (without SNAPSHOTS_METADATA a domain
 * with snapshots is refused). */
gboolean manage_undefine(Store *store, const char *name, guint flags, char **result,
                         GError **error);

/* Finishes or undoes every change of images that a crash interrupted (the journals
 * in SNAPSHOT_DIR/.snapfs-journal), under the store lock; nothing with a read-only
 * store. @resolved and @failed (char *) receive a line per journal: what was
 * resolved, or why not. An unresolved journal stays, and every change of that
 * domain tries again first (and fails while it cannot be resolved). */
void manage_recover(Store *store, GPtrArray *resolved, GPtrArray *failed);

#ifdef MANAGE_TEST_HOOKS
/* Unit tests only (manage.c built with MANAGE_TEST_HOOKS): called just before a snapshot's
 * metadata file is written, with the flag it gets, to see what is on disk at that point. */
extern void (*manage_test_write_hook)(Store *store, const char *domain, const char *snap,
                                      gboolean current);
#endif

G_END_DECLS
