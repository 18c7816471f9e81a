/* guard.c: whether a change may go ahead: a running VM or a libvirt daemon owns it (live.c says
 * what runs), or a backup reads the images it would change. */
#include "guard.h"

#include <string.h>

#include "chain.h"
#include "error.h"
#include "snapshot.h"
#include "util.h"
#include "xmlutil.h"

/* "virsh [-c URI] COMMAND": what does @op through libvirt, on @domain and @snap (placeholders
 * where they are unknown). Owned. */
static char *
guard_virsh(BackendOpKind op, const char *uri, const char *domain, const char *snap)
{
    g_autoptr(GString) s = g_string_new("virsh ");
    const char *d = domain ? domain : "DOMAIN";
    const char *n = snap && *snap ? snap : "SNAPSHOT";

    if (uri)
        g_string_append_printf(s, "-c %s ", uri);
    switch (op) {
    case BACKEND_OP_CREATE:
        g_string_append_printf(s, "snapshot-create-as %s NAME --disk-only", d);
        break;
    case BACKEND_OP_CREATE_NO_METADATA:
        g_string_append_printf(s, "snapshot-create-as %s NAME --disk-only --no-metadata", d);
        break;
    case BACKEND_OP_REDEFINE:
        g_string_append_printf(s, "snapshot-create %s FILE --redefine", d);
        break;
    case BACKEND_OP_REDEFINE_CURRENT:
        g_string_append_printf(s, "snapshot-create %s FILE --redefine --current", d);
        break;
    case BACKEND_OP_IMPORT:
        g_string_append_printf(s, "snapshot-create %s FILE --redefine (once per snapshot)", d);
        break;
    case BACKEND_OP_CURRENT:
        g_string_append_printf(s, "snapshot-current %s %s", d, n);
        break;
    case BACKEND_OP_REVERT:
        g_string_append_printf(s, "snapshot-revert %s %s", d, n);
        break;
    case BACKEND_OP_DELETE:
        g_string_append_printf(s, "snapshot-delete %s %s", d, n);
        break;
    case BACKEND_OP_GENID:
        g_string_append_printf(s, "edit %s", d);
        break;
    case BACKEND_OP_DEFINE:
        g_string_append(s, "define FILE");
        break;
    case BACKEND_OP_UNDEFINE:
        g_string_append_printf(s, "undefine %s", d);
        break;
    case BACKEND_OP_BACKUP:
        g_string_append_printf(s, "backup-begin %s", d);
        break;
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

char *
guard_define_name(const char *payload, gsize len)
{
    g_autoptr(DomainDef) def = domain_parse(payload, len, DOMAIN_PARSE_NO_UUID_OK, NULL);

    return def && def->name ? g_strdup(def->name) : NULL;
}

static gboolean
guard_is_local(const StorageSource *src)
{
    return src->path && (src->type == STORAGE_TYPE_FILE || src->type == STORAGE_TYPE_BLOCK);
}

gboolean
guard_check_disks(const DomainDef *dom, LiveImageUse top_allowed, LiveImageUse below_allowed,
                  GError **error)
{
    for (guint i = 0; dom && i < dom->disks->len; i++) {
        const DiskDef *disk = dom->disks->pdata[i];
        g_autoptr(Chain) chain = NULL;

        if (!guard_is_local(disk->src))
            continue;
        chain = chain_resolve(disk->src, disk->dst);
        for (guint k = 0; k < chain->layers->len; k++) {
            const ChainLayer *layer = chain->layers->pdata[k];

            if (guard_is_local(layer->src) &&
                !live_image_check(layer->src->path, k == 0 ? top_allowed : below_allowed,
                                  error))
                return FALSE;
        }
    }
    return TRUE;
}

/* The definition in @path (a domain's config or a snapshot's metadata file), parsed with
 * @parse; NULL when it cannot be read or parsed (the operation says why). */
static gpointer
guard_read(const char *path, gpointer (*parse)(const char *, gsize))
{
    g_autofree char *buf = NULL;
    gsize len = 0;

    if (!util_file_read_limited(path, XMLUTIL_MAX_DOC, &buf, &len, NULL))
        return NULL;
    return parse(buf, len);
}

static gpointer
guard_parse_domain(const char *buf, gsize len)
{
    return domain_parse(buf, len, DOMAIN_PARSE_INACTIVE, NULL);
}

static gpointer
guard_parse_snapshot(const char *buf, gsize len)
{
    return snapshot_parse(buf, len, SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS |
                          SNAPSHOT_PARSE_INTERNAL, NULL);
}

static gboolean
guard_is_file_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0;
}

/* The images of @domain (and of snapshot @snap when given) for @op: a change needs the tops
 * unused (a process holding them runs the domain) and nothing in the chains written; the
 * images snapshot @snap made (its overlays, or the image holding it when internal) are what
 * revert and delete write or remove, so they must be unused too. A backup needs nothing
 * written. Only the two files are read: this runs before every change. */
static gboolean
guard_check_images(Store *store, const char *domain, const char *snap, BackendOpKind op,
                   GError **error)
{
    g_autofree char *dom_path = NULL;
    g_autoptr(DomainDef) dom = NULL;
    g_autofree char *snap_path = NULL;
    g_autoptr(SnapshotDef) def = NULL;
    LiveImageUse top = op == BACKEND_OP_BACKUP ? LIVE_IMAGE_USED : LIVE_IMAGE_FREE;

    if (!guard_is_file_name(domain))
        return TRUE;                       /* no such domain: the operation says so */
    dom_path = store_domain_path(store, domain);
    dom = guard_read(dom_path, guard_parse_domain);
    if (!guard_check_disks(dom, top, LIVE_IMAGE_USED, error))
        return FALSE;
    if (!guard_is_file_name(snap))
        return TRUE;
    snap_path = store_snapshot_path(store, domain, snap);
    if (!(def = guard_read(snap_path, guard_parse_snapshot)))
        return TRUE;
    for (guint i = 0; i < def->disks->len; i++) {
        const SnapDiskDef *disk = def->disks->pdata[i];

        if (guard_is_local(disk->src) && !live_image_check(disk->src->path, top, error))
            return FALSE;
    }
    return guard_check_disks(def->dom, LIVE_IMAGE_USED, LIVE_IMAGE_USED, error);
}

gboolean
guard_check(Store *store, const LiveHost *host, BackendOpKind op, const char *name, const char *snap,
            GError **error)
{
    g_autofree char *uri = NULL;
    g_autofree char *virsh = NULL;
    gboolean daemon;
    pid_t daemon_pid = 0;
    pid_t qemu = 0;
    LiveState state = LIVE_STATE_SHUTOFF;

    if (!host)
        return TRUE;
    daemon = live_host_daemon(host, &uri, &daemon_pid);
    virsh = guard_virsh(op, uri, name, snap);
    if (name && (state = live_domain_state(host, name, &qemu)) != LIVE_STATE_SHUTOFF) {
        if (daemon)
            g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                        "domain '%s' is %s (qemu pid %d): use %s", name, live_state_name(state),
                        (int)qemu, virsh);
        else
            g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                        "domain '%s' is %s (qemu pid %d) and no libvirt daemon answers for it: "
                        "shut it down first, or start its daemon and use %s", name,
                        live_state_name(state), (int)qemu, virsh);
        return FALSE;
    }
    if (daemon && op != BACKEND_OP_BACKUP) {
        g_autofree char *who = daemon_pid ? g_strdup_printf(" (pid %d)", (int)daemon_pid)
                                          : g_strdup("");

        g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                    "a libvirt daemon%s is in charge of this store: it would ignore this change "
                    "and overwrite it; use %s", who, virsh);
        return FALSE;
    }
    /* A qemu that libvirt does not know of (started by hand) holds the images' locks. */
    if (name && !guard_check_images(store, name, snap, op, error)) {
        if (error && g_error_matches(*error, CORE_ERROR, CORE_ERROR_BUSY)) {
            char *msg = g_strdup_printf("domain '%s' is busy: %s; stop that process first", name,
                                        (*error)->message);

            g_free((*error)->message);
            (*error)->message = msg;
        }
        return FALSE;
    }
    return TRUE;
}

/* ---- the backup rule ------------------------------------------------------ */

gboolean
guard_backup_begin(Store *store, const char *domain, GError **error)
{
    g_autoptr(StoreLock) lock = store_lock(store, error);
    g_autoptr(GMutexLocker) locker = NULL;
    guint n;

    if (!lock)
        return FALSE;
    locker = g_mutex_locker_new(&store->busy_lock);
    n = GPOINTER_TO_UINT(g_hash_table_lookup(store->backups, domain));
    g_hash_table_insert(store->backups, g_strdup(domain), GUINT_TO_POINTER(n + 1));
    return TRUE;
}

void
guard_backup_end(Store *store, const char *domain)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&store->busy_lock);
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(store->backups, domain));

    g_return_if_fail(n > 0);
    if (n == 1)
        g_hash_table_remove(store->backups, domain);
    else
        g_hash_table_insert(store->backups, g_strdup(domain), GUINT_TO_POINTER(n - 1));
}

gboolean
guard_check_idle(Store *store, const char *domain, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&store->busy_lock);

    if (!g_hash_table_contains(store->backups, domain))
        return TRUE;
    g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                "domain '%s' is busy: another backup job is already running", domain);
    return FALSE;
}
