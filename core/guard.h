/* guard.h: refuses changes that a running VM or a libvirt daemon owns. */
#pragma once

#include <glib.h>

#include "live.h"
#include "store.h"

G_BEGIN_DECLS

/* What a control operation does, named for the virsh command that does it through libvirt. */
typedef enum {
    GUARD_OP_CREATE,             /* snapshot-create-as DOM NAME --disk-only */
    GUARD_OP_CREATE_NO_METADATA, /* snapshot-create-as DOM NAME --disk-only --no-metadata */
    GUARD_OP_REDEFINE,           /* snapshot-create DOM FILE --redefine */
    GUARD_OP_REDEFINE_CURRENT,   /* snapshot-create DOM FILE --redefine --current */
    GUARD_OP_IMPORT,             /* snapshot-create DOM FILE --redefine, one per snapshot */
    GUARD_OP_CURRENT,            /* snapshot-current DOM SNAP */
    GUARD_OP_REVERT,             /* snapshot-revert DOM SNAP */
    GUARD_OP_DELETE,             /* snapshot-delete DOM SNAP */
    GUARD_OP_GENID,              /* edit DOM */
    GUARD_OP_DEFINE,             /* define FILE */
    GUARD_OP_UNDEFINE,           /* undefine DOM */
    GUARD_OP_BACKUP,             /* backup-begin DOM: reads the images, changes no metadata */
} GuardOp;

/* TRUE when @op on @domain may go ahead on a host described by @host (NULL: nothing is
 * checked). @domain: NULL for define (the name is taken from @payload) and undefine (the
 * first word of @payload); @payload: what was written to the control file (for revert and
 * delete the snapshot's name comes first). Refused with CORE_ERROR_BUSY, in this order:
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
gboolean guard_check(Store *store, const LiveHost *host, GuardOp op, const char *domain,
                     const char *payload, gsize len, GError **error);

G_END_DECLS
