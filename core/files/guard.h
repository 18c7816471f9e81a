/* guard.h: says whether a change may go ahead: refuses changes that a running VM or a libvirt
 * daemon owns, and changes of images that a backup reads. */
#pragma once

#include <glib.h>

#include "backend.h"
#include "live.h"
#include "store.h"

G_BEGIN_DECLS

/* TRUE when @op on @domain may go ahead on a host described by @host (NULL: nothing is
 * checked). @domain: the domain changed (for define the name its document gives, see
 * guard_define_name(); NULL when unknown); @snap: the snapshot that current, revert and
 * delete name (NULL otherwise). Refused with CORE_ERROR_BUSY, in this order:
 * - the domain is running, paused or otherwise active (its status file names its live
 *   qemu): every operation;
 * - a libvirt daemon is in charge of the store: every operation but a backup (the daemon
 *   would ignore the change and overwrite it at its next save);
 * - an image of the domain is in use by a process libvirt does not know of (a qemu started
 *   by hand holds its locks): for a change, a disk's top held at all, an element below it
 *   written, or (revert, delete) an image the named snapshot made held at all; for a
 *   backup, any element written. An image below the top that another VM only reads (a
 *   shared base) refuses nothing.
 * The message says what is running and what to use instead (virsh with the daemon's URI).
 * An image that cannot be probed, and a domain that does not exist, pass: the operation
 * reports them. */
gboolean guard_check(Store *store, const LiveHost *host, BackendOpKind op, const char *domain,
                     const char *snap, GError **error);

/* Checks the chains of @dom's disks (NULL: none) with qemu's locks (live_image_check()):
 * each top against @top_allowed, the elements below it against @below_allowed (a base image
 * that another VM reads is no reason to refuse). CORE_ERROR_BUSY saying what holds which. */
gboolean guard_check_disks(const DomainDef *dom, LiveImageUse top_allowed,
                           LiveImageUse below_allowed, GError **error);

/* The <name> of domain XML @xml, for guard_check() of a define; NULL when it does not parse
 * (define says why). Owned. */
char *guard_define_name(const char *xml, gsize len);

/* The backup rule: while a backup of a domain reads its images, nothing changes them. A
 * backup marks its domain from before it opens the images until its thread ends; a change of
 * images asks guard_check_idle() with the store lock held and keeps the lock until it is
 * done, so a backup begins only between changes. */

/* Marks a backup of @domain as reading its images; waits for the store lock (a change under
 * way ends first). Errors: the lock cannot be taken. */
gboolean guard_backup_begin(Store *store, const char *domain, GError **error);
void guard_backup_end(Store *store, const char *domain);

/* With the store lock held, before a change of @domain's images (or the resolution of an
 * interrupted one): CORE_ERROR_BUSY "domain 'D' is busy: another backup job is already
 * running" (libvirt's text after the domain) while a backup of @domain reads them. */
gboolean guard_check_idle(Store *store, const char *domain, GError **error);

G_END_DECLS
