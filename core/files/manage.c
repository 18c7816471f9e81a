/* manage.c: snapshot and domain management on the store, with the qemu driver's semantics. */
#include "manage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "guard.h"
#include "journal.h"
#include "qcow.h"
#include "qcow2w.h"
#include "users.h"
#include "util.h"
#include "xmlutil.h"

#define MANAGE_MAX_PAYLOAD (1024 * 1024)

/* ---- helpers ------------------------------------------------------------- */

static gboolean manage_resume(Store *store, const char *domain, char **done, GError **error);

/* What a change does to its domain's images, for the backup rule (guard_check_idle()). */
typedef enum {
    MANAGE_METADATA,   /* only metadata files (an interrupted change resolved first may still
                        * write images: manage_resume() asks for itself) */
    MANAGE_IMAGES,     /* images too */
} ManageWrites;

/* Takes the store lock into *@lock and loads @domain for a change, after finishing or
 * undoing a change of it that a crash interrupted: nothing changes a domain whose
 * journal is not resolved. A change that writes images is refused while a backup reads
 * them; the lock, held until the change is done, keeps a backup from beginning meanwhile. */
static BackendDomain *
manage_begin(Store *store, const char *domain, ManageWrites writes, StoreLock **lock,
             GError **error)
{
    g_autoptr(GError) local = NULL;
    /* Light: a stat per unchanged snapshot file, not a parse (the shell loop of
     * redefines grows linearly); the snapshots used below are made full on demand. */
    BackendDomain *sd = NULL;

    if (!(*lock = store_lock(store, error)))
        return NULL;
    if (writes == MANAGE_IMAGES && !guard_check_idle(store, domain, error))
        return NULL;
    if (!manage_resume(store, domain, NULL, error))
        return NULL;
    if (!(sd = store_load_domain_light(store, domain, &local))) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                        "Domain not found: no domain with matching name '%s'", domain);
        else
            g_propagate_error(error, g_steal_pointer(&local));
    }
    return sd;
}

/* The value of backing_file= in qemu-img's -o @opts (",," is a comma), or NULL. */
static char *
manage_opts_backing(const char *opts)
{
    const char *p = strstr(opts, "backing_file=");
    GString *val;

    if (!p || (p != opts && p[-1] != ','))
        return NULL;
    val = g_string_new(NULL);
    for (p += strlen("backing_file="); *p; p++) {
        if (*p == ',' && p[1] != ',')
            break;
        g_string_append_c(val, *p);
        if (*p == ',')
            p++;
    }
    return g_string_free(val, FALSE);
}

/* qemu-img opens every image it is given and the backing chains below them while snapfs waits
 * for it: each must be outside the snapfs mount and no FIFO (see chain_check_outside). The
 * image qemu-img acts on is the last argument; a relative backing_file= is relative to it. */
static gboolean
manage_run_check(const char *const *argv, GError **error)
{
    guint n = g_strv_length((char **)argv);

    for (guint i = 1; i < n; i++) {
        g_autofree char *backing = NULL;

        if (argv[i][0] == '/' && !chain_check_outside(argv[i], error))
            return FALSE;
        if (strcmp(argv[i - 1], "-o") != 0 || !(backing = manage_opts_backing(argv[i])))
            continue;
        if (!g_path_is_absolute(backing)) {
            g_autofree char *dir = g_path_get_dirname(argv[n - 1]);
            g_autofree char *rel = g_steal_pointer(&backing);

            backing = g_build_filename(dir, rel, NULL);
        }
        if (!chain_check_outside(backing, error))
            return FALSE;
    }
    return TRUE;
}

/* The child's side of manage_run(), between fork and exec: the child dies with
 * the daemon, so a killed snapfs leaves no qemu-img changing images behind it.
 * PR_SET_PDEATHSIG fires when the thread that forked exits, not the process:
 * that thread waits in g_spawn_sync() until the child ends, so only the daemon's
 * death can end it first. @data: the daemon's pid, to catch a death before the
 * prctl(). */
static void
manage_child_setup(gpointer data)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != GPOINTER_TO_INT(data))
        _exit(127);
}

/* The errno a command's stderr names, in the C locale the child runs in (0:
 * none). qemu-img ends its messages with strerror(), e.g. "Could not create
 * 'x': No space left on device". */
static int
manage_errno_of(const char *err)
{
    static const struct {
        int errnum;
        const char *text;
    } known[] = {
        { ENOSPC, "No space left on device" },
        { EDQUOT, "Disk quota exceeded" },
        { EROFS, "Read-only file system" },
        { EACCES, "Permission denied" },
        { EPERM, "Operation not permitted" },
        { ENOENT, "No such file or directory" },
        { EEXIST, "File exists" },
        { ENOMEM, "Cannot allocate memory" },
        { EIO, "Input/output error" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(known); i++)
        if (strstr(err, known[i].text))
            return known[i].errnum;
    return 0;
}

/* Runs a command (qemu-img) in the C locale; the child dies with the daemon.
 * A failure sets @error to "ARGV0 ARGV1 failed: STDERR" with the errno its stderr
 * names (ENOSPC, EACCES...; a quota counts as ENOSPC), CORE_ERROR_BUSY for an
 * image another process holds locked (qemu's "Failed to get ... lock"), else
 * G_FILE_ERROR_FAILED (EIO). */
static gboolean
manage_run(const char *const *argv, GError **error)
{
    g_autofree char *err = NULL;
    g_autoptr(GError) local = NULL;
    g_auto(GStrv) env = g_environ_setenv(g_get_environ(), "LC_ALL", "C", TRUE);
    g_autofree char *what = argv[1] ? g_strdup_printf("%s %s", argv[0], argv[1])
                                     : g_strdup(argv[0]);
    int status = 0;
    int errnum;

    if (!manage_run_check(argv, error))
        return FALSE;
    if (!g_spawn_sync(NULL, (char **)argv, env, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      manage_child_setup, GINT_TO_POINTER(getpid()), NULL, &err, &status,
                      &local)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot run %s: %s", argv[0],
                    local->message);
        return FALSE;
    }
    if (g_spawn_check_wait_status(status, NULL))
        return TRUE;
    g_strstrip(err);
    if (!*err)
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s failed (%s %d) with no message",
                    what, WIFSIGNALED(status) ? "signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    else if (strstr(err, "Failed to get") && strstr(err, "lock"))
        g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY, "%s failed: %s", what, err);
    else if ((errnum = manage_errno_of(err)) != 0)
        g_set_error(error, G_FILE_ERROR,
                    g_file_error_from_errno(errnum == EDQUOT ? ENOSPC : errnum),
                    "%s failed: %s", what, err);
    else
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s failed: %s", what, err);
    return FALSE;
}

static SnapNode *
manage_snap_lookup(BackendDomain *sd, const char *name, GError **error)
{
    SnapNode *node = snaptree_lookup(sd->snaps, name);

    if (!node)
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "Domain snapshot not found: no domain snapshot with matching name '%s'", name);
    return node;
}

/* A bare value: the payload without one trailing newline; no other newline. */
static char *
manage_bare_value(const char *payload, gsize len, const char *what, GError **error)
{
    g_autofree char *s = g_strndup(payload, len);
    gsize n = strlen(s);

    if (n != len) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "%s contains a NUL byte", what);
        return NULL;
    }
    if (n > 0 && s[n - 1] == '\n')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '\r')
        s[--n] = '\0';
    if (n == 0 || strchr(s, '\n')) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "%s must be one line", what);
        return NULL;
    }
    return g_steal_pointer(&s);
}

#ifdef MANAGE_TEST_HOOKS
void (*manage_test_write_hook)(Store *store, const char *domain, const char *snap,
                               gboolean current);
#endif

/* Writes @node's metadata with its current flag as the tree says. */
static gboolean
manage_write_node(Store *store, const char *domain, BackendDomain *sd, SnapNode *node,
                  GError **error)
{
    if (!store_snapshot_full(store, domain, sd, node, error))
        return FALSE;
#ifdef MANAGE_TEST_HOOKS
    if (manage_test_write_hook)
        manage_test_write_hook(store, domain, node->def->name, sd->snaps->current == node);
#endif
    return store_write_snapshot(store, domain, node->def, sd->snaps->current == node, error);
}

/* Adds a rollback step that failed to @error, the failure that started the
 * rollback: the user sees both, and the errno stays the first failure's. */
static void manage_error_add(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
manage_error_add(GError **error, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (error && *error) {
        char *old = (*error)->message;

        (*error)->message = g_strdup_printf("%s; rollback failed: %s", old, msg);
        g_free(old);
    } else {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "rollback failed: %s", msg);
    }
}

/* Restores a metadata file to @contents (NULL: removes it), on rollback; a
 * failure is added to @error. */
static void
manage_restore_file(const char *path, const char *contents, GError **error)
{
    g_autoptr(GError) local = NULL;

    if (!contents) {
        if (unlink(path) < 0 && errno != ENOENT) {
            int errsv = errno;

            manage_error_add(error, "cannot remove '%s': %s", path, g_strerror(errsv));
        } else {
            util_fsync_dir_of(path, NULL);
        }
        return;
    }
    if (!util_file_write_atomic(path, contents, strlen(contents), 0600, &local))
        manage_error_add(error, "%s", local->message);
}

/* Saved contents of metadata files, to put back when a later step fails. */
typedef struct {
    GPtrArray *paths;
    GPtrArray *contents;   /* char * or NULL (file did not exist) */
} ManageUndo;

static void
manage_undo_init(ManageUndo *u)
{
    u->paths = g_ptr_array_new_with_free_func(g_free);
    u->contents = g_ptr_array_new_with_free_func(g_free);
}

static void
manage_undo_save(ManageUndo *u, const char *path)
{
    char *contents = NULL;

    for (guint i = 0; i < u->paths->len; i++)
        if (strcmp(u->paths->pdata[i], path) == 0)
            return;
    if (!g_file_get_contents(path, &contents, NULL, NULL))
        contents = NULL;
    g_ptr_array_add(u->paths, g_strdup(path));
    g_ptr_array_add(u->contents, contents);
}

/* Puts the saved files back; what fails is added to @error. */
static void
manage_undo_run(ManageUndo *u, GError **error)
{
    for (guint i = u->paths->len; i-- > 0;)
        manage_restore_file(u->paths->pdata[i], u->contents->pdata[i], error);
}

static void
manage_undo_clear(ManageUndo *u)
{
    g_clear_pointer(&u->paths, g_ptr_array_unref);
    g_clear_pointer(&u->contents, g_ptr_array_unref);
}

/* Saves the old file of @name, then writes @node. */
static gboolean
manage_write_node_undo(Store *store, const char *domain, BackendDomain *sd, SnapNode *node,
                       ManageUndo *undo, GError **error)
{
    g_autofree char *path = store_snapshot_path(store, domain, node->def->name);

    manage_undo_save(undo, path);
    return manage_write_node(store, domain, sd, node, error);
}

static gboolean
manage_write_domain_undo(Store *store, const DomainDef *def, ManageUndo *undo, GError **error)
{
    g_autofree char *path = store_domain_path(store, def->name);

    manage_undo_save(undo, path);
    return store_write_domain(store, def, error);
}

static gboolean
manage_remove_snapshot_undo(Store *store, const char *domain, const char *name, ManageUndo *undo,
                            GError **error)
{
    g_autofree char *path = store_snapshot_path(store, domain, name);

    manage_undo_save(undo, path);
    return store_remove_snapshot(store, domain, name, error);
}

/* The crash-order rule: the snapshot that was current (@old) is written with
 * <active>0</active> before any file gets <active>1</active>, when the change took the
 * flag from it; a crash between the two writes then leaves no current snapshot, never
 * two files claiming it. Call it before writing the new current's file. */
static gboolean
manage_write_old_current(Store *store, const char *domain, BackendDomain *sd, SnapNode *old,
                         ManageUndo *undo, GError **error)
{
    if (!old || old == sd->snaps->current)
        return TRUE;
    return manage_write_node_undo(store, domain, sd, old, undo, error);
}

/* Writes @node (NULL: none), the snapshot a change made current, after the one that was
 * (@old), in the crash-order rule's order. */
static gboolean
manage_write_current(Store *store, const char *domain, BackendDomain *sd, SnapNode *old,
                     SnapNode *node, ManageUndo *undo, GError **error)
{
    return manage_write_old_current(store, domain, sd, old, undo, error) &&
           (!node || manage_write_node_undo(store, domain, sd, node, undo, error));
}

/* A metadata-only change in one go: @newdom (NULL: none), then the current snapshot's
 * files as manage_write_current() orders them; on a failure what was written is undone. */
static gboolean
manage_write_metadata(Store *store, const char *domain, BackendDomain *sd, const DomainDef *newdom,
                      SnapNode *old, SnapNode *node, GError **error)
{
    ManageUndo undo;
    gboolean ok;

    manage_undo_init(&undo);
    ok = (!newdom || manage_write_domain_undo(store, newdom, &undo, error)) &&
         manage_write_current(store, domain, sd, old, node, &undo, error);
    if (!ok)
        manage_undo_run(&undo, error);
    manage_undo_clear(&undo);
    return ok;
}

/* ---- image users ------------------------------------------------------------ */

/* Which users of an image an operation may leave alone, beyond its own disk and snapshot. */
typedef enum {
    MANAGE_USERS_SAME_DOMAIN = 1 << 0,   /* anything of the operation's domain */
    MANAGE_USERS_OWN_TOPS = 1 << 1,      /* the domain's chains whose top is the image itself */
    MANAGE_USERS_OWN_OVERLAYS = 1 << 2,  /* its snapshots' overlays that are the image itself */
    MANAGE_USERS_FILES = 1 << 3,         /* look for unnamed images in the directory too */
} ManageUsersRule;

/* Refuses with CORE_ERROR_BUSY, naming them, when @image has users the operation
 * does not own: any domain's disks, any snapshot's disks and overlays, in any
 * directory, but disk @disk of @domain's current definition (NULL: none), snapshot
 * @snap of @domain (NULL: none) and what @rules allow. @what prefixes the message.
 * @scan is made on first use (under the store lock the caller holds). */
static gboolean
manage_check_users(Store *store, UsersScan **scan, const char *image, const char *domain,
                   const char *disk, const char *snap, guint rules, const char *what,
                   GError **error)
{
    g_autoptr(GPtrArray) users = NULL;
    g_autoptr(GPtrArray) others = g_ptr_array_new();
    g_autofree char *list = NULL;

    if (!*scan && !(*scan = users_scan(store, error)))
        return FALSE;
    users = users_find(*scan, image, (rules & MANAGE_USERS_FILES) != 0);
    for (guint i = 0; i < users->len; i++) {
        const ImageUser *u = users->pdata[i];
        gboolean own = g_strcmp0(u->domain, domain) == 0;

        if (own && ((rules & MANAGE_USERS_SAME_DOMAIN) ||
                    (u->kind == USERS_KIND_DOMAIN && g_strcmp0(u->disk, disk) == 0) ||
                    (u->kind != USERS_KIND_DOMAIN && g_strcmp0(u->snapshot, snap) == 0) ||
                    ((rules & MANAGE_USERS_OWN_TOPS) && u->is_top) ||
                    ((rules & MANAGE_USERS_OWN_OVERLAYS) && u->is_top &&
                     u->kind == USERS_KIND_OVERLAY)))
            continue;
        g_ptr_array_add(others, (gpointer)u);
    }
    if (!others->len)
        return TRUE;
    list = users_describe(others);
    g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY, "%s: image '%s' is in use by %s", what,
                image, list);
    return FALSE;
}

/* ---- create ---------------------------------------------------------------- */

/* <os><loader type='pflash'>: qemu cannot keep internal snapshots of such a VM. */
static gboolean
manage_domain_has_pflash(const DomainDef *dom)
{
    xmlNode *os = xmlutil_child(xmlDocGetRootElement(dom->doc), "os");
    xmlNode *loader = xmlutil_child(os, "loader");
    g_autofree char *type = loader ? xmlutil_prop(loader, "type") : NULL;

    return g_strcmp0(type, "pflash") == 0;
}

/* snapfs creates and changes image files only in the directories of the images the
 * domain's current definition names (top images and their XML chains): a path from
 * a redefined snapshot or a snapshot request cannot reach anywhere else. */
static gboolean
manage_path_allowed(const DomainDef *dom, const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);

    for (guint i = 0; i < dom->disks->len; i++) {
        DiskDef *disk = dom->disks->pdata[i];

        for (StorageSource *src = disk->src; src; src = src->backing) {
            g_autofree char *d = NULL;

            if (src->type == STORAGE_TYPE_NETWORK || !src->path)
                continue;
            d = g_path_get_dirname(src->path);
            if (strcmp(d, dir) == 0)
                return TRUE;
        }
    }
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ACCES,
                "'%s' is outside the directories of the images domain '%s' uses; snapfs "
                "creates and changes files only there", path, dom->name);
    return FALSE;
}

/* qemuSnapshotPrepare for an inactive domain: what the selected disks allow. */
static gboolean
manage_create_check_disks(const SnapshotDef *def, const DomainDef *dom, gboolean disk_only,
                          GError **error)
{
    guint internal = 0, external = 0, none = 0;

    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sd = def->disks->pdata[i];
        DiskDef *disk = domain_disk_by_name(dom, sd->name);
        const char *fmt = disk && disk->src->format ? disk->src->format : "raw";

        switch (sd->snapshot) {
        case SNAP_LOC_INTERNAL:
            if (disk->src->type == STORAGE_TYPE_NETWORK || strcmp(fmt, "qcow2") != 0) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "internal snapshot for disk %s unsupported for storage type %s",
                            sd->name, disk->src->type == STORAGE_TYPE_NETWORK
                                      ? disk->src->protocol : fmt);
                return FALSE;
            }
            internal++;
            break;
        case SNAP_LOC_EXTERNAL:
            if (disk->src->type == STORAGE_TYPE_NETWORK) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "external inactive snapshots are not supported on 'network' disks "
                            "using '%s' protocol", disk->src->protocol);
                return FALSE;
            }
            if (!sd->src->format)
                sd->src->format = g_strdup("qcow2");
            if (strcmp(sd->src->format, "qcow2") != 0 && strcmp(sd->src->format, "qed") != 0) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "external snapshot format for disk %s is unsupported: %s", sd->name,
                            sd->src->format);
                return FALSE;
            }
            if (sd->metadata_cache_max_size && strcmp(sd->src->format, "qcow2") != 0) {
                g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                                    "metadata cache max size control is supported only with "
                                    "qcow2 images");
                return FALSE;
            }
            if (sd->src->type == STORAGE_TYPE_NONE)
                sd->src->type = STORAGE_TYPE_FILE;
            external++;
            break;
        case SNAP_LOC_MANUAL:
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "'manual' snapshot mode of disk %s needs a running domain", sd->name);
            return FALSE;
        default:
            none++;
            break;
        }
    }
    /* The disk-only variant of this text needs a running domain (disk-snapshot
     * state); an inactive one always gets this. */
    if (!internal && !external) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "nothing selected for snapshot");
        return FALSE;
    }
    if (internal && manage_domain_has_pflash(dom)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "internal snapshots of a VM with pflash based firmware are not "
                            "supported");
        return FALSE;
    }
    if (internal && external) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "mixing internal and external targets for a snapshot is not yet "
                            "supported");
        return FALSE;
    }
    if (internal && none) {
        for (guint i = 0; i < def->disks->len; i++) {
            SnapDiskDef *sd = def->disks->pdata[i];
            DiskDef *disk = domain_disk_by_name(dom, sd->name);

            /* Empty media and read-only disks have nothing to keep. */
            if (sd->snapshot == SNAP_LOC_NO && disk->src->type != STORAGE_TYPE_NONE &&
                !disk->readonly) {
                g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                                    "internal and full system snapshots require all disks to be "
                                    "selected for snapshot");
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* qemu-img's option syntax doubles commas inside values. */
static char *
manage_escape_commas(const char *s)
{
    GString *out = g_string_new(NULL);

    for (; *s; s++) {
        g_string_append_c(out, *s);
        if (*s == ',')
            g_string_append_c(out, ',');
    }
    return g_string_free(out, FALSE);
}

void
manage_rollback_images(GPtrArray *overlays, GPtrArray *internal_images, const char *name,
                       GError **error)
{
    for (guint i = 0; overlays && i < overlays->len; i++) {
        if (unlink(overlays->pdata[i]) < 0 && errno != ENOENT) {
            int errsv = errno;

            manage_error_add(error, "cannot remove '%s': %s", (char *)overlays->pdata[i],
                             g_strerror(errsv));
        }
    }
    for (guint i = 0; internal_images && i < internal_images->len; i++) {
        const char *argv[] = { "qemu-img", "snapshot", "-d", name, internal_images->pdata[i],
                               NULL };
        g_autoptr(GError) local = NULL;

        if (!manage_run(argv, &local))
            manage_error_add(error, "%s", local->message);
    }
}

/* Whether our own qcow2 writer can make the overlay over @base: byte for byte what
 * qemu-img create writes (test-job /job/overlay-bytes), without starting a process.
 * FALSE leaves it to qemu-img create: another format, a backing image our reader
 * cannot size (qemu-img gives its own error), sizes or names outside the common
 * layout. *@size receives the backing image's virtual size. */
static gboolean
manage_own_overlay_possible(const char *format, const char *base, const char *base_format,
                            guint64 *size)
{
    g_autoptr(QcowInfo) info = NULL;

    if (g_strcmp0(format, "qcow2") != 0 ||
        (g_strcmp0(base_format, "qcow2") != 0 && g_strcmp0(base_format, "raw") != 0))
        return FALSE;
    if (!(info = qcow_info_read(base, base_format, NULL)) || info->encrypted ||
        !qcow2w_overlay_supported(info->virtual_size, base, base_format))
        return FALSE;
    *size = info->virtual_size;
    return TRUE;
}

/* qemu-img create of @path (@format) over @base (@base_format NULL: probed). */
static gboolean
manage_qemu_img_create(const char *path, const char *format, const char *base,
                       const char *base_format, GError **error)
{
    g_autofree char *backing = manage_escape_commas(base);
    g_autofree char *opts = base_format
        ? g_strdup_printf("backing_fmt=%s,backing_file=%s", base_format, backing)
        : g_strdup_printf("backing_file=%s", backing);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", format, "-o", opts, path, NULL };

    return manage_run(argv, error);
}

/* Creates the overlay @path (@format) over @base (@base_format, NULL: qemu-img
 * probes it). The file is made here first, never through a symbolic link and with
 * @base's mode and owner (util_open_new_image()); then our own writer fills it or,
 * when it cannot, qemu-img create does. A refusal to create the file is final:
 * handing the name to qemu-img, which follows links, would write wherever a link
 * points. On failure nothing is left behind (a reused empty file is emptied again). */
static gboolean
manage_create_overlay(const char *path, const char *format, const char *base,
                      const char *base_format, GError **error)
{
    g_auto(CoreFd) fd = -1;
    gboolean created = FALSE;
    guint64 size = 0;
    gboolean ok;

    if ((fd = util_open_new_image(path, base, &created, error)) < 0)
        return FALSE;
    if (manage_own_overlay_possible(format, base, base_format, &size)) {
        ok = qcow2w_create_overlay(fd, path, size, base, base_format, error);
    } else {
        ok = manage_qemu_img_create(path, format, base, base_format, error);
    }
    if (ok && close(g_steal_fd(&fd)) < 0) {
        int errsv = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "cannot close '%s': %s",
                    path, g_strerror(errsv));
        ok = FALSE;
    }
    if (!ok && created)
        unlink(path);
    else if (!ok && fd >= 0 && ftruncate(fd, 0) < 0)
        g_debug("cannot empty '%s' again", path);
    return ok;
}

/* The change @journal records is complete (or undone): the journal goes. A journal
 * that cannot be removed is run again at the next load, which finds nothing left
 * to do. */
static void
manage_journal_done(Journal *journal)
{
    g_autoptr(GError) local = NULL;

    if (!journal_remove(journal, &local))
        g_debug("%s", local->message);
}

/* Journals the image step @action (@args) before it is made: written, so that a
 * crash after it leaves a record of what may exist. Returns the step, or -1. */
static gint
manage_journal_step(Journal *journal, const char *action, const char *const *args,
                    GError **error)
{
    guint step = journal_add_step(journal, action, args);

    return journal_write(journal, error) ? (gint)step : -1;
}

/* Creates the images of @def (overlays with qemu-img create, or internal qcow2
 * snapshots), each journalled in @journal before it is made; on failure removes
 * what it made. @overlays and @internal_images receive what was made, for a later
 * rollback. */
static gboolean
manage_create_images(const SnapshotDef *def, const DomainDef *dom, Journal *journal,
                     GPtrArray *overlays, GPtrArray *internal_images, GError **error)
{
    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sd = def->disks->pdata[i];
        DiskDef *disk = domain_disk_by_name(dom, sd->name);
        struct stat st;

        if (sd->snapshot != SNAP_LOC_EXTERNAL)
            continue;
        if (sd->src->type == STORAGE_TYPE_BLOCK) {
            if (!util_path_outside(sd->src->path, error)) {
                g_prefix_error(error, "cannot use snapshot target '%s': ", sd->src->path);
                return FALSE;
            }
            if (!util_path_stat(sd->src->path, FALSE, &st, NULL)) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "block device snapshot target '%s' doesn't exist", sd->src->path);
                return FALSE;
            }
            if (!S_ISBLK(st.st_mode)) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "mismatch between configured type for snapshot disk '%s' and the "
                            "type of existing file '%s'", sd->name, sd->src->path);
                return FALSE;
            }
            if (!manage_path_allowed(dom, sd->src->path, error))
                return FALSE;
            continue;
        }
        if (!util_path_outside(sd->src->path, error)) {
            g_prefix_error(error, "cannot use snapshot target '%s': ", sd->src->path);
            return FALSE;
        }
        if (util_path_stat(sd->src->path, FALSE, &st, NULL)) {
            if (S_ISREG(st.st_mode) && st.st_size > 0) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS,
                            "external snapshot file for disk %s already exists and is not a "
                            "block device: %s", sd->name, sd->src->path);
                return FALSE;
            }
            if (sd->src->type == STORAGE_TYPE_FILE && !S_ISREG(st.st_mode)) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "mismatch between configured type for snapshot disk '%s' and the "
                            "type of existing file '%s'", sd->name, sd->src->path);
                return FALSE;
            }
        }
        if (disk->src->path == NULL) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "disk '%s' has no source",
                        sd->name);
            return FALSE;
        }
        /* the new overlay is built on that chain, as qemu-img create would open it */
        if (!manage_path_allowed(dom, sd->src->path, error) ||
            !chain_check_outside(disk->src->path, error))
            return FALSE;
    }
    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sd = def->disks->pdata[i];
        DiskDef *disk = domain_disk_by_name(dom, sd->name);
        g_autofree char *count = NULL;
        guint before = 0;
        gint step = -1;

        if (sd->snapshot == SNAP_LOC_EXTERNAL && sd->src->type != STORAGE_TYPE_BLOCK) {
            struct stat st;
            /* an empty file already there is reused, and emptied again on rollback */
            const char *args[] = { sd->name, sd->src->path,
                                   lstat(sd->src->path, &st) == 0 ? "reused" : "new", NULL };

            if ((step = manage_journal_step(journal, "overlay", args, error)) < 0)
                goto fail;
        } else if (sd->snapshot == SNAP_LOC_INTERNAL) {
            if (!qcow_snapshot_count(disk->src->path, def->name, &before, error))
                goto fail;
            count = g_strdup_printf("%u", before);
            {
                const char *args[] = { def->name, disk->src->path, count, NULL };

                if ((step = manage_journal_step(journal, "snapshot-create", args, error)) < 0)
                    goto fail;
            }
        }
        if (sd->snapshot == SNAP_LOC_EXTERNAL && sd->src->type == STORAGE_TYPE_BLOCK) {
            /* an existing block device (checked above): qemu-img formats it */
            if (!manage_qemu_img_create(sd->src->path, sd->src->format, disk->src->path,
                                        disk->src->format, error))
                goto fail;
            g_ptr_array_add(overlays, g_strdup(sd->src->path));
        } else if (sd->snapshot == SNAP_LOC_EXTERNAL) {
            if (!manage_create_overlay(sd->src->path, sd->src->format, disk->src->path,
                                       disk->src->format, error))
                goto fail;
            g_ptr_array_add(overlays, g_strdup(sd->src->path));
        } else if (sd->snapshot == SNAP_LOC_INTERNAL) {
            const char *argv[] = { "qemu-img", "snapshot", "-c", def->name, disk->src->path,
                                   NULL };

            if (!manage_run(argv, error))
                goto fail;
            g_ptr_array_add(internal_images, g_strdup(disk->src->path));
        }
        if (step >= 0 && !journal_mark_done(journal, step, error))
            goto fail;
    }
    return TRUE;

fail:
    manage_rollback_images(overlays, internal_images, def->name, error);
    g_ptr_array_set_size(overlays, 0);
    g_ptr_array_set_size(internal_images, 0);
    return FALSE;
}

/* qemu-img snapshot -c writes each image an internal snapshot goes into: only
 * @domain may use it. A new overlay writes no existing image: nothing to check. */
static gboolean
manage_create_check_users(Store *store, const char *domain, const SnapshotDef *def,
                          const DomainDef *dom, GError **error)
{
    g_autoptr(UsersScan) scan = NULL;
    g_autofree char *what = g_strdup_printf("cannot create internal snapshot %s", def->name);

    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sd = def->disks->pdata[i];
        DiskDef *disk = domain_disk_by_name(dom, sd->name);

        if (sd->snapshot == SNAP_LOC_INTERNAL && disk && disk->src->path &&
            !manage_check_users(store, &scan, disk->src->path, domain, NULL, NULL,
                                MANAGE_USERS_SAME_DOMAIN, what, error))
            return FALSE;
    }
    return TRUE;
}

/* The domain after an external snapshot: each external disk on its overlay. */
static DomainDef *
manage_domain_on_overlays(const DomainDef *dom, const SnapshotDef *def)
{
    DomainDef *copy = domain_copy(dom);

    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sd = def->disks->pdata[i];
        DiskDef *disk;
        StorageSource *src;

        if (sd->snapshot != SNAP_LOC_EXTERNAL)
            continue;
        disk = domain_disk_by_name(copy, sd->name);
        src = storage_source_new();
        src->type = sd->src->type;
        src->path = g_strdup(sd->src->path);
        src->format = g_strdup(sd->src->format);
        /* As libvirt: the old source stays as <backingStore> only when the chain
         * was already known in the XML. */
        domain_disk_set_source(copy, disk, src,
                               disk->src->backing != NULL || disk->src->backing_terminated);
    }
    return copy;
}

static gboolean
manage_redefine_locked(Store *store, const char *domain, BackendDomain *sd, SnapshotDef *def,
                       guint flags, char **result, GError **error);

static gboolean manage_create_def(Store *store, const char *domain, SnapshotDef *owned,
                                  guint flags, char **result, GError **error);

/* The flags' combinations libvirt refuses. */
static gboolean
manage_create_check_flags(guint flags, GError **error)
{
    if ((flags & MANAGE_CREATE_CURRENT) && !(flags & MANAGE_CREATE_REDEFINE)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag "
                            "'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'");
        return FALSE;
    }
    if ((flags & MANAGE_CREATE_REDEFINE) && (flags & MANAGE_CREATE_NO_METADATA)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and "
                            "'VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA' are mutually exclusive");
        return FALSE;
    }
    return TRUE;
}

gboolean
manage_create(Store *store, const char *domain, const char *xml, gsize len, guint flags,
              char **result, GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(SnapshotDef) def = NULL;

    if (!manage_create_check_flags(flags, error))
        return FALSE;
    if (len > MANAGE_MAX_PAYLOAD) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG, "payload is larger than %d bytes",
                    MANAGE_MAX_PAYLOAD);
        return FALSE;
    }
    /* The payload is parsed before the store lock is taken: a huge document
     * stalls only its own writer, not every change to the store. */
    if (flags & MANAGE_CREATE_REDEFINE) {
        if (!(def = snapshot_parse(xml, len, SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS,
                                   error)))
            return FALSE;
        if (!(sd = manage_begin(store, domain, MANAGE_METADATA, &lock, error)))
            return FALSE;
        return manage_redefine_locked(store, domain, sd, g_steal_pointer(&def), flags, result,
                                      error);
    }
    if (!(def = snapshot_parse(xml, len, SNAPSHOT_PARSE_DISKS | SNAPSHOT_PARSE_OFFLINE, error)))
        return FALSE;
    return manage_create_def(store, domain, g_steal_pointer(&def), flags, result, error);
}

gboolean
manage_create_named(Store *store, const char *domain, const char *name, guint flags,
                    char **result, GError **error)
{
    g_autofree char *value = NULL;
    g_autoptr(SnapshotDef) def = NULL;

    g_return_val_if_fail(!(flags & (MANAGE_CREATE_REDEFINE | MANAGE_CREATE_CURRENT)), FALSE);
    if (!(value = manage_bare_value(name, strlen(name), "snapshot name", error)))
        return FALSE;
    def = snapshot_def_new();
    def->name = g_steal_pointer(&value);
    def->creation_time = g_get_real_time() / G_USEC_PER_SEC;
    return manage_create_def(store, domain, g_steal_pointer(&def), flags | MANAGE_CREATE_DISK_ONLY,
                             result, error);
}

/* Creates snapshot @owned (parsed, not aligned yet) of @domain: its images, then its
 * metadata and the domain on its overlays. */
static gboolean
manage_create_def(Store *store, const char *domain, SnapshotDef *owned, guint flags,
                  char **result, GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(SnapshotDef) def = owned;
    g_autoptr(DomainDef) newdom = NULL;
    g_autoptr(GPtrArray) overlays = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) internal_images = g_ptr_array_new_with_free_func(g_free);
    gboolean disk_only = (flags & MANAGE_CREATE_DISK_ONLY) != 0;
    gboolean metadata = !(flags & MANAGE_CREATE_NO_METADATA);
    g_autofree char *snap_name = NULL;
    g_autofree char *path = journal_path(store->snapshot_dir, domain);
    g_autoptr(Journal) journal = journal_new(path, "create");
    SnapNode *old_current;
    SnapNode *node;
    ManageUndo undo;

    if (!(sd = manage_begin(store, domain, MANAGE_IMAGES, &lock, error)))
        return FALSE;
    if (metadata) {
        if (!snapshot_check_name(def->name, error))
            return FALSE;
        /* A name too long for NAME.xml is refused before any image changes: at the metadata
         * write qemu-img would already have added an internal snapshot to the images, and
         * the rollback that deletes it still leaves the image files changed. */
        if (strlen(def->name) + strlen(".xml") > NAME_MAX) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                        "snapshot name is too long: %zu bytes (at most %d)", strlen(def->name),
                        NAME_MAX - (int)strlen(".xml"));
            return FALSE;
        }
        if (snaptree_lookup(sd->snaps, def->name)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS, "domain moment %s already exists",
                        def->name);
            return FALSE;
        }
    }
    /* An inactive domain: any external disk or memory makes it disk-only. */
    if (def->memory == SNAP_LOC_EXTERNAL)
        disk_only = TRUE;
    for (guint i = 0; i < def->disks->len; i++)
        if (((SnapDiskDef *)def->disks->pdata[i])->snapshot == SNAP_LOC_EXTERNAL)
            disk_only = TRUE;
    if (def->memory != SNAP_LOC_DEFAULT && def->memory != SNAP_LOC_NO) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "memory state cannot be saved with offline or disk-only snapshot");
        return FALSE;
    }
    def->memory = SNAP_LOC_NO;
    def->state = SNAP_STATE_SHUTOFF;
    if (!snapshot_align_disks(def, sd->def,
                              disk_only ? SNAP_LOC_EXTERNAL : SNAP_LOC_INTERNAL, TRUE, error))
        return FALSE;
    if (!manage_create_check_disks(def, sd->def, disk_only, error))
        return FALSE;
    if (!manage_create_check_users(store, domain, def, sd->def, error))
        return FALSE;
    journal_set(journal, "snapshot", def->name);
    journal_set(journal, "metadata", metadata ? "yes" : "no");
    if (metadata && sd->snaps->current)
        journal_set(journal, "current-before", sd->snaps->current->def->name);
    if (!manage_create_images(def, sd->def, journal, overlays, internal_images, error)) {
        journal_remove(journal, NULL);
        return FALSE;
    }
    snap_name = g_strdup(def->name);

    g_clear_pointer(&def->dom, domain_free);
    def->dom = domain_copy(sd->def);
    old_current = metadata ? sd->snaps->current : NULL;
    g_clear_pointer(&def->parent, g_free);
    if (old_current)
        def->parent = g_strdup(old_current->def->name);
    if (overlays->len)
        newdom = manage_domain_on_overlays(sd->def, def);

    manage_undo_init(&undo);
    if (metadata) {
        if (!(node = snaptree_add(sd->snaps, g_steal_pointer(&def), error)))
            goto fail;
        snaptree_set_parent(sd->snaps, node, old_current);
        sd->snaps->current = node;
        if (!manage_write_current(store, domain, sd, old_current, node, &undo, error))
            goto fail;
        *result = g_strdup_printf("Domain snapshot %s created", snap_name);
    } else {
        *result = g_strdup_printf("Domain snapshot %s created (no metadata kept)", snap_name);
    }
    if (newdom && !manage_write_domain_undo(store, newdom, &undo, error))
        goto fail;
    manage_undo_clear(&undo);
    manage_journal_done(journal);
    return TRUE;

fail:
    g_clear_pointer(result, g_free);
    manage_undo_run(&undo, error);
    manage_undo_clear(&undo);
    manage_rollback_images(overlays, internal_images, snap_name, error);
    manage_journal_done(journal);
    return FALSE;
}

/* ---- redefine ----------------------------------------------------------- */

static gboolean
manage_redefine_prepare(BackendDomain *sd, SnapshotDef *def, GError **error)
{
    SnapNode *old = snaptree_lookup(sd->snaps, def->name);
    gboolean disk_only = def->state == SNAP_STATE_DISK_SNAPSHOT;   /* as virsh adds it */

    if (!snapshot_check_name(def->name, error))
        return FALSE;
    if (!snapshot_check_state(def->state, TRUE, error))   /* qemuSnapshotCreateXMLValidateDef */
        return FALSE;
    if (!snaptree_check_cycles(sd->snaps, def, error))
        return FALSE;
    if (!snapshot_redefine_prep(def, old ? old->def : NULL, sd->def, disk_only, error))
        return FALSE;
    /* A new snapshot needs a full domain (redefine check 6). */
    if (!def->dom && !old) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID, "missing domain in snapshot");
        return FALSE;
    }
    return TRUE;
}

/* Puts @def (validated) into the tree: replaces an existing snapshot of the same
 * name (keeping its domain when @def has none; its children stay attached) or adds
 * it. Returns the node. */
static SnapNode *
manage_redefine_apply(BackendDomain *sd, SnapshotDef *def)
{
    SnapNode *node = snaptree_lookup(sd->snaps, def->name);
    SnapNode *parent = def->parent ? snaptree_lookup(sd->snaps, def->parent) : NULL;

    if (node) {
        if (!def->dom && node->def->dom)
            def->dom = domain_copy(node->def->dom);
        snaptree_replace_def(sd->snaps, node, def);
    } else {
        node = snaptree_add(sd->snaps, def, NULL);
        g_assert(node);
    }
    snaptree_set_parent(sd->snaps, node, parent);
    return node;
}

static gboolean
manage_redefine_locked(Store *store, const char *domain, BackendDomain *sd, SnapshotDef *owned,
                       guint flags, char **result, GError **error)
{
    g_autoptr(SnapshotDef) def = owned;
    g_autofree char *name = g_strdup(def->name);
    SnapNode *old_current = sd->snaps->current;
    SnapNode *node = snaptree_lookup(sd->snaps, def->name);

    /* The snapshot it replaces is compared in full (and may give its domain). */
    if (node && !store_snapshot_full(store, domain, sd, node, error))
        return FALSE;
    if (!manage_redefine_prepare(sd, def, error))
        return FALSE;
    def->active = -1;
    node = manage_redefine_apply(sd, g_steal_pointer(&def));
    if (flags & MANAGE_CREATE_CURRENT)
        sd->snaps->current = node;
    if (!manage_write_metadata(store, domain, sd, NULL, old_current, node, error))
        return FALSE;
    *result = g_strdup_printf("Domain snapshot %s created", name);
    return TRUE;
}

/* ---- import --------------------------------------------------------------- */

gboolean
manage_import(Store *store, const char *domain, const char *payload, gsize len, char **result,
              GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(GPtrArray) defs = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_def_free);
    g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) order = g_ptr_array_new();
    g_autoptr(GHashTable) placed = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) nodes = g_ptr_array_new();
    const char *current_name = NULL;
    SnapNode *old_current;
    gsize off = 0;
    ManageUndo undo;

    if (len > MANAGE_MAX_PAYLOAD * 64) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG, "import is larger than %d bytes",
                    MANAGE_MAX_PAYLOAD * 64);
        return FALSE;
    }
    /* Split the stream into documents and parse each as a redefinition. */
    while (off < len) {
        gssize end;
        SnapshotDef *def;
        guint n = defs->len + 1;

        while (off < len && g_ascii_isspace(payload[off]))
            off++;
        if (off == len)
            break;
        end = xmlutil_document_end(payload + off, len - off);
        if (end < 0) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                        "document %u of the import is %s", n,
                        end == XMLUTIL_INCOMPLETE ? "incomplete" : "not XML");
            return FALSE;
        }
        /* Metadata files carry <active>: read it to restore current. */
        def = snapshot_parse(payload + off, end,
                             SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS |
                             (g_strstr_len(payload + off, end, "<active>")
                                  ? SNAPSHOT_PARSE_INTERNAL : 0), error);
        if (!def) {
            g_prefix_error(error, "document %u of the import: ", n);
            return FALSE;
        }
        g_ptr_array_add(defs, def);
        if (g_hash_table_contains(by_name, def->name)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS,
                        "snapshot %s appears twice in the import", def->name);
            return FALSE;
        }
        g_hash_table_insert(by_name, def->name, def);
        if (def->active == 1)
            current_name = def->name;
        off += end;
    }
    if (defs->len == 0) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE, "no snapshot in the import");
        return FALSE;
    }
    /* Parents first: repeatedly place what has its parent placed or outside the set. */
    while (order->len < defs->len) {
        guint before = order->len;

        for (guint i = 0; i < defs->len; i++) {
            SnapshotDef *def = defs->pdata[i];

            if (g_hash_table_contains(placed, def->name))
                continue;
            if (def->parent && g_hash_table_contains(by_name, def->parent) &&
                !g_hash_table_contains(placed, def->parent))
                continue;
            g_ptr_array_add(order, def);
            g_hash_table_add(placed, def->name);
        }
        if (order->len == before) {
            for (guint i = 0; i < defs->len; i++) {
                SnapshotDef *def = defs->pdata[i];

                if (!g_hash_table_contains(placed, def->name)) {
                    g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                                "parent %s would create cycle to %s", def->parent, def->name);
                    return FALSE;
                }
            }
        }
    }
    if (!(sd = manage_begin(store, domain, MANAGE_METADATA, &lock, error)))
        return FALSE;
    old_current = sd->snaps->current;
    /* Validate and apply in memory, parents first; nothing is written until all pass. */
    for (guint i = 0; i < order->len; i++) {
        SnapshotDef *def = order->pdata[i];

        if (!manage_redefine_prepare(sd, def, error)) {
            g_prefix_error(error, "snapshot %s: ", def->name);
            return FALSE;
        }
        def->active = -1;
        g_ptr_array_steal_index_fast(defs, 0);   /* ownership moves to the tree below */
        g_ptr_array_add(nodes, manage_redefine_apply(sd, def));
    }
    g_ptr_array_set_free_func(defs, NULL);
    if (current_name)
        sd->snaps->current = snaptree_lookup(sd->snaps, current_name);
    manage_undo_init(&undo);
    if (!manage_write_old_current(store, domain, sd, old_current, &undo, error))
        goto fail;
    for (guint i = 0; i < nodes->len; i++) {
        if (!manage_write_node_undo(store, domain, sd, nodes->pdata[i], &undo, error))
            goto fail;
    }
    manage_undo_clear(&undo);
    *result = g_strdup_printf("%u snapshots imported%s%s", nodes->len,
                              current_name ? ", current " : "", current_name ? current_name : "");
    return TRUE;

fail:
    manage_undo_run(&undo, error);
    manage_undo_clear(&undo);
    return FALSE;
}

/* ---- current --------------------------------------------------------------- */

gboolean
manage_set_current(Store *store, const char *domain, const char *snap, char **result,
                   GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    SnapNode *node = NULL;
    SnapNode *old;

    if (!(sd = manage_begin(store, domain, MANAGE_METADATA, &lock, error)))
        return FALSE;
    if (snap && !(node = manage_snap_lookup(sd, snap, error)))
        return FALSE;
    old = sd->snaps->current;
    if (!snap && !old) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "domain '%s' has no current snapshot", domain);
        return FALSE;
    }
    sd->snaps->current = node;
    if (!manage_write_metadata(store, domain, sd, NULL, old, node, error))
        return FALSE;
    *result = snap ? g_strdup_printf("Snapshot %s set as current", snap)
                   : g_strdup_printf("domain '%s' has no current snapshot now", domain);
    return TRUE;
}

/* ---- delete ---------------------------------------------------------------- */

static gboolean
manage_is_external(const SnapshotDef *def)
{
    return snapshot_is_external(def) || def->state == SNAP_STATE_DISK_SNAPSHOT;
}

/* The external-snapshot merge of a plain delete, when it cannot lose data:
 * S is a leaf, its overlay is the top of the domain's disk, the overlay holds no
 * internal snapshot, and nothing else is built on the image below it. Adds to
 * @journal a commit of each overlay into the image below; @to_unlink receives the
 * overlays, removed once the metadata no longer names them. */
static gboolean
manage_delete_external_data(Store *store, BackendDomain *sd, SnapNode *node, UsersScan **scan,
                            Journal *journal, GPtrArray *to_unlink, GError **error)
{
    g_autofree char *what = g_strdup_printf("cannot delete the data of external snapshot %s",
                                            node->def->name);
    const SnapshotDef *def;
    g_autoptr(DomainDef) dom = domain_copy(sd->def);
    g_autoptr(GPtrArray) all = snaptree_topological(sd->snaps);

    /* Every snapshot's domain is read: none may still use the image merged away. */
    for (guint i = 0; i < all->len; i++)
        if (!store_snapshot_full(store, sd->def->name, sd, all->pdata[i], error))
            return FALSE;
    def = node->def;

    if (node->children->len) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "cannot delete the data of external snapshot %s: it has children that are "
                    "built on its overlay (delete with --metadata to keep the images)",
                    def->name);
        return FALSE;
    }
    if (node->parent && !manage_is_external(node->parent->def)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "deleting external snapshot that has internal snapshot as parent not "
                            "supported");
        return FALSE;
    }
    if (!def->dom) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "snapshot '%s' lacks domain '%s' rollback info", def->name, sd->def->name);
        return FALSE;
    }
    /* A delete that stopped part-way marked the disks (libvirt's texts). */
    for (SnapNode *n = node; n; n = n == node ? n->parent : NULL) {
        for (guint i = 0; i < n->def->disks->len; i++) {
            SnapDiskDef *d = n->def->disks->pdata[i];

            if (d->delete_in_progress) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "snapshot disk '%s' was target of not completed snapshot delete",
                            d->name);
                return FALSE;
            }
        }
    }
    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sdisk = def->disks->pdata[i];
        DiskDef *vmdisk = domain_disk_by_name(dom, sdisk->name);
        DiskDef *before = domain_disk_by_name(def->dom, sdisk->name);
        g_autoptr(QcowInfo) info = NULL;

        if (sdisk->snapshot != SNAP_LOC_EXTERNAL)
            continue;
        if (!vmdisk || !vmdisk->src->path || g_strcmp0(vmdisk->src->path, sdisk->src->path) != 0) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                                "VM disk source and snapshot disk source are not the same");
            return FALSE;
        }
        if (!before || !before->src->path) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                                "snapshot VM disk source and parent disk source are not the "
                                "same");
            return FALSE;
        }
        if (!manage_path_allowed(sd->def, before->src->path, error))
            return FALSE;
        if (!(info = qcow_info_read(sdisk->src->path, sdisk->src->format, error)))
            return FALSE;
        if (info->nsnapshots > 0) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "cannot delete the data of external snapshot %s: overlay '%s' holds %u "
                        "internal snapshot(s) that a merge would destroy", def->name,
                        sdisk->src->path, info->nsnapshots);
            return FALSE;
        }
        /* The overlay goes away and the image below is written: nothing but this
         * disk and this snapshot may use the one or be built on the other (another
         * domain's image, a reverted branch, a sibling snapshot, in any directory),
         * except the overlays of earlier snapshots that are the image below itself. */
        if (!manage_check_users(store, scan, sdisk->src->path, sd->def->name, sdisk->name,
                                def->name, MANAGE_USERS_FILES, what, error) ||
            !manage_check_users(store, scan, before->src->path, sd->def->name, sdisk->name,
                                def->name, MANAGE_USERS_OWN_OVERLAYS | MANAGE_USERS_FILES, what,
                                error))
            return FALSE;
        {
            const char *args[] = { sdisk->name, sdisk->src->path,
                                   sdisk->src->format ? sdisk->src->format : "qcow2", NULL };

            journal_add_step(journal, "commit", args);
        }
        g_ptr_array_add(to_unlink, g_strdup(sdisk->src->path));
    }
    return TRUE;
}

/* Opens @image with qemu-img snapshot -l, which takes qemu's locks as -d and -a do
 * (shared): an image a running qemu holds fails the operation here, before any
 * image is changed (qemu-img snapshot -d and -a cannot be undone). */
static gboolean
manage_image_check_lock(const char *image, GError **error)
{
    const char *argv[] = { "qemu-img", "snapshot", "-l", image, NULL };

    return manage_run(argv, error);
}

/* The last snapshot of @victims' ancestry that survives their removal: where current
 * ends when it is among them (each removal moves current to the parent). */
static SnapNode *
manage_current_after(SnapNode *current, GPtrArray *victims)
{
    for (SnapNode *c = current; c; c = c->parent) {
        gboolean removed = FALSE;

        for (guint i = 0; i < victims->len && !removed; i++)
            removed = victims->pdata[i] == c;
        if (!removed)
            return c;
    }
    return NULL;
}

/* The metadata of a delete: each victim named by @journal that still exists is
 * removed, children move to its parent, current moves up; the domain points at the
 * images the commit steps merged into. Works from whatever an interrupted run left:
 * files already rewritten are rewritten again with the same contents. */
static gboolean
manage_delete_metadata(Store *store, const char *domain, BackendDomain *sd, Journal *journal,
                       GError **error)
{
    g_auto(GStrv) names = journal_get_list(journal, "victims");
    g_autofree char *snap = journal_get(journal, "snapshot");
    g_autofree char *after = journal_get(journal, "current-after");
    g_autoptr(GHashTable) changed = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_autoptr(GPtrArray) removed_names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(DomainDef) newdom = NULL;
    SnapNode *node = snap ? snaptree_lookup(sd->snaps, snap) : NULL;
    SnapNode *old_current;
    SnapNode *new_current;
    gboolean moved_current;
    ManageUndo undo;
    GHashTableIter it;
    gpointer key;

    /* The merged disks take the sources S captured (the images below its overlays);
     * once S's file is gone the domain was written already. */
    for (guint i = 0; node && i < journal_step_count(journal); i++) {
        g_autofree char *action = journal_step_action(journal, i);
        g_auto(GStrv) args = journal_step_args(journal, i);
        DiskDef *vmdisk;
        DiskDef *before;

        if (strcmp(action, "commit") != 0 || g_strv_length(args) < 1)
            continue;
        if (!store_snapshot_full(store, domain, sd, node, error))
            return FALSE;
        if (!newdom)
            newdom = domain_copy(sd->def);
        vmdisk = domain_disk_by_name(newdom, args[0]);
        before = node->def->dom ? domain_disk_by_name(node->def->dom, args[0]) : NULL;
        if (vmdisk && before)
            domain_disk_set_source(newdom, vmdisk, storage_source_copy(before->src), FALSE);
    }
    old_current = sd->snaps->current;
    for (guint i = 0; names[i]; i++) {
        SnapNode *v = snaptree_lookup(sd->snaps, names[i]);
        g_autoptr(GPtrArray) moved = NULL;

        if (!v)
            continue;
        g_hash_table_remove(changed, v);
        g_ptr_array_add(removed_names, g_strdup(v->def->name));
        moved = snaptree_remove(sd->snaps, v);
        for (guint j = 0; moved && j < moved->len; j++)
            g_hash_table_add(changed, moved->pdata[j]);
    }
    /* A run stopped after the old current's file went: current goes where it was
     * going. */
    if (!old_current && after && snaptree_lookup(sd->snaps, after))
        sd->snaps->current = snaptree_lookup(sd->snaps, after);
    new_current = sd->snaps->current != old_current ? sd->snaps->current : NULL;
    moved_current = new_current && g_hash_table_contains(changed, new_current);
    if (new_current)
        g_hash_table_add(changed, new_current);

    manage_undo_init(&undo);
    /* Every file naming a removed parent is rewritten before the removal, and a new current
     * gets its flag last, after the removed files (among them the old current) are gone: a
     * kill -9 in between leaves neither two currents nor a dangling parent. */
    g_hash_table_iter_init(&it, changed);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        SnapNode *n = key;

        if (n == new_current) {
            if (!moved_current)
                continue;
            /* Moved and made current: its new parent now, its flag after the removals. */
            g_autofree char *path = store_snapshot_path(store, domain, n->def->name);

            manage_undo_save(&undo, path);
            if (!store_snapshot_full(store, domain, sd, n, error) ||
                !store_write_snapshot(store, domain, n->def, FALSE, error))
                goto fail;
        } else if (!manage_write_node_undo(store, domain, sd, n, &undo, error)) {
            goto fail;
        }
    }
    if (newdom && !manage_write_domain_undo(store, newdom, &undo, error))
        goto fail;
    for (guint i = 0; i < removed_names->len; i++)
        if (!manage_remove_snapshot_undo(store, domain, removed_names->pdata[i], &undo, error))
            goto fail;
    if (new_current && !manage_write_node_undo(store, domain, sd, new_current, &undo, error))
        goto fail;
    manage_undo_clear(&undo);
    return TRUE;

fail:
    manage_undo_run(&undo, error);
    manage_undo_clear(&undo);
    return FALSE;
}

/* qemu-img snapshot -d of @snap in @image while the image holds as many snapshots of
 * that name as it did before the delete (@before): a rerun deletes nothing twice. */
static gboolean
manage_internal_delete_step(const char *snap, const char *image, guint before, GError **error)
{
    const char *argv[] = { "qemu-img", "snapshot", "-d", snap, image, NULL };
    guint now = 0;

    if (!qcow_snapshot_count(image, snap, &now, error))
        return FALSE;
    if (now == 0 || now < before)
        return TRUE;
    return manage_run(argv, error);
}

/* Runs the steps of a delete @journal not yet done, marking each done as it completes
 * (@durable: in the file), and removes the journal at the end. A run that fails before
 * any image changed removes the journal (nothing changed); later, the journal stays
 * and the next load or change of the domain runs it again. */
static gboolean
manage_delete_run(Store *store, const char *domain, BackendDomain *sd, Journal *journal,
                  gboolean durable, GError **error)
{
    gboolean changed_any = FALSE;
    guint n = journal_step_count(journal);

    for (guint i = 0; i < n; i++) {
        g_autofree char *action = journal_step_action(journal, i);
        g_auto(GStrv) args = journal_step_args(journal, i);
        guint nargs = g_strv_length(args);
        gboolean ok = TRUE;

        if (journal_step_done(journal, i)) {
            changed_any = TRUE;
            continue;
        }
        if (strcmp(action, "commit") == 0 && nargs == 3) {
            const char *argv[] = { "qemu-img", "commit", "-q", "-d", "-f", args[2], args[1],
                                   NULL };

            /* Rerunning a commit of an unchanged overlay writes the same clusters
             * again; a missing overlay was merged and removed already. */
            changed_any = TRUE;   /* a failed commit may have written part of it */
            if (g_file_test(args[1], G_FILE_TEST_EXISTS))
                ok = manage_run(argv, error);
        } else if (strcmp(action, "snapshot-delete") == 0 && nargs == 3) {
            ok = manage_internal_delete_step(args[0], args[1],
                                             (guint)g_ascii_strtoull(args[2], NULL, 10), error);
        } else if (strcmp(action, "metadata") == 0) {
            ok = manage_delete_metadata(store, domain, sd, journal, error);
        } else if (strcmp(action, "unlink") == 0 && nargs == 1) {
            if (unlink(args[0]) < 0 && errno != ENOENT) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "cannot remove '%s': %s", args[0], g_strerror(errsv));
                ok = FALSE;
            }
        } else {
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                        "journal '%s' has an unknown step '%s'", journal_get_path(journal),
                        action);
            ok = FALSE;
        }
        if (!ok) {
            if (!changed_any && durable)
                journal_remove(journal, NULL);
            return FALSE;
        }
        changed_any = TRUE;
        if (durable && !journal_mark_done(journal, i, error))
            return FALSE;
    }
    return !durable || journal_remove(journal, error);
}

gboolean
manage_delete(Store *store, const char *domain, const char *name, guint flags, char **result,
              GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GPtrArray) victims = g_ptr_array_new();
    g_autoptr(GPtrArray) to_unlink = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) victim_names = g_ptr_array_new();
    g_autoptr(Journal) journal = NULL;
    g_autoptr(UsersScan) scan = NULL;
    g_autoptr(GPtrArray) internal_images = g_ptr_array_new();   /* borrowed */
    gboolean images;
    SnapNode *node;
    SnapNode *after;

    if ((flags & BACKEND_DELETE_CHILDREN) && (flags & BACKEND_DELETE_CHILDREN_ONLY)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and "
                            "'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive");
        return FALSE;
    }
    if (!(sd = manage_begin(store, domain, MANAGE_IMAGES, &lock, error)))
        return FALSE;
    if (!(node = manage_snap_lookup(sd, name, error)))
        return FALSE;
    if (flags & (BACKEND_DELETE_CHILDREN | BACKEND_DELETE_CHILDREN_ONLY)) {
        g_autoptr(GPtrArray) desc = snaptree_descendants(sd->snaps, node);

        /* Leaves first, so each removal reparents nothing that is also removed. */
        for (guint i = desc->len; i-- > 0;)
            g_ptr_array_add(victims, desc->pdata[i]);
    }
    if (!(flags & BACKEND_DELETE_CHILDREN_ONLY))
        g_ptr_array_add(victims, node);
    path = journal_path(store->snapshot_dir, domain);
    journal = journal_new(path, "delete");
    images = !(flags & BACKEND_DELETE_METADATA_ONLY);

    if (images) {
        guint ext = 0, in = 0;

        for (guint i = 0; i < victims->len; i++) {
            SnapNode *v = victims->pdata[i];

            if (v == node && !(flags & BACKEND_DELETE_CHILDREN_ONLY))
                continue;
            if (manage_is_external(v->def))
                ext++;
            else
                in++;
        }
        if (manage_is_external(node->def) && (flags & BACKEND_DELETE_CHILDREN)) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                                "deletion of external disk snapshots with children not supported");
            return FALSE;
        }
        if (ext && in) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                                "deletion of external and internal children disk snapshots not "
                                "supported");
            return FALSE;
        }
        if (ext) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                                "deletion of external children disk snapshots not supported");
            return FALSE;
        }
        /* qemu-img snapshot -d writes each image: only this domain may use it. */
        for (guint i = 0; i < victims->len; i++) {
            SnapNode *v = victims->pdata[i];
            g_autofree char *what = NULL;

            if (manage_is_external(v->def))
                continue;
            if (!store_snapshot_full(store, domain, sd, v, error))
                return FALSE;
            what = g_strdup_printf("cannot delete internal snapshot %s", v->def->name);
            for (guint j = 0; v->def->dom && j < v->def->disks->len; j++) {
                SnapDiskDef *sdisk = v->def->disks->pdata[j];
                DiskDef *disk = domain_disk_by_name(v->def->dom, sdisk->name);

                if (sdisk->snapshot == SNAP_LOC_INTERNAL && disk && disk->src->path &&
                    manage_path_allowed(sd->def, disk->src->path, NULL) &&
                    !manage_check_users(store, &scan, disk->src->path, domain, NULL, NULL,
                                        MANAGE_USERS_SAME_DOMAIN, what, error))
                    return FALSE;
            }
        }
        if (!(flags & BACKEND_DELETE_CHILDREN_ONLY) && manage_is_external(node->def) &&
            !manage_delete_external_data(store, sd, node, &scan, journal, to_unlink, error))
            return FALSE;
        /* Internal snapshots: qemu-img snapshot -d in the images they live in;
         * one its image does not hold fails the delete with qemu-img's words. */
        for (guint i = 0; i < victims->len; i++) {
            SnapNode *v = victims->pdata[i];

            if (!manage_is_external(v->def) && !store_snapshot_full(store, domain, sd, v, error))
                return FALSE;
            if (manage_is_external(v->def) || !v->def->dom)
                continue;
            for (guint j = 0; j < v->def->disks->len; j++) {
                SnapDiskDef *sdisk = v->def->disks->pdata[j];
                DiskDef *disk = domain_disk_by_name(v->def->dom, sdisk->name);
                g_autofree char *count = NULL;
                guint before = 0;

                if (sdisk->snapshot != SNAP_LOC_INTERNAL || !disk || !disk->src->path ||
                    !manage_path_allowed(sd->def, disk->src->path, NULL) ||
                    !qcow_snapshot_count(disk->src->path, v->def->name, &before, NULL))
                    continue;
                if (before == 0) {
                    /* Not in its image: qemu-img says so in its words, and the delete
                     * fails before anything changed. */
                    const char *argv[] = { "qemu-img", "snapshot", "-d", v->def->name,
                                           disk->src->path, NULL };

                    if (!manage_run(argv, error))
                        return FALSE;
                    continue;
                }
                count = g_strdup_printf("%u", before);
                {
                    const char *a[] = { v->def->name, disk->src->path, count, NULL };

                    journal_add_step(journal, "snapshot-delete", a);
                }
                g_ptr_array_add(internal_images, disk->src->path);
            }
        }
        for (guint i = 0; i < internal_images->len; i++)
            if (!manage_image_check_lock(internal_images->pdata[i], error))
                return FALSE;
    }
    for (guint i = 0; i < victims->len; i++)
        g_ptr_array_add(victim_names, ((SnapNode *)victims->pdata[i])->def->name);
    journal_set_list(journal, "victims", (const char *const *)victim_names->pdata,
                     victim_names->len);
    journal_set(journal, "snapshot", name);
    after = manage_current_after(sd->snaps->current, victims);
    journal_set(journal, "current-after", after ? after->def->name : NULL);
    {
        const char *none[] = { NULL };

        journal_add_step(journal, "metadata", none);
    }
    for (guint i = 0; i < to_unlink->len; i++) {
        const char *a[] = { to_unlink->pdata[i], NULL };

        journal_add_step(journal, "unlink", a);
    }
    /* Metadata alone needs no journal: its writes are ordered so that a crash
     * leaves a consistent store. */
    images = images && journal_step_count(journal) > 1;
    if (images && !journal_write(journal, error))
        return FALSE;
    if (!manage_delete_run(store, domain, sd, journal, images, error)) {
        /* The journal stays when a step had changed something: the delete is half
         * done, and the user learns that it goes on by itself. */
        if (images && g_file_test(journal_get_path(journal), G_FILE_TEST_EXISTS))
            g_prefix_error(error, "delete of %s stopped part-way (the next change of domain "
                           "'%s' finishes it): ", name, domain);
        return FALSE;
    }
    *result = flags & BACKEND_DELETE_CHILDREN_ONLY
                  ? g_strdup_printf("Domain snapshot %s children deleted", name)
                  : g_strdup_printf("Domain snapshot %s deleted", name);
    return TRUE;
}

/* ---- revert ---------------------------------------------------------------- */

/* A name for a new overlay on @base for reverting to @snap: base.SNAP-N, the first
 * N that is free. A symbolic link is never followed (it takes its name, dangling or not);
 * a name that cannot be looked up is returned: creating the overlay refuses it with the reason. */
static char *
manage_revert_overlay_name(const char *base, const char *snap)
{
    g_autofree char *stem = snapshot_external_name(base, snap);

    for (guint n = 1;; n++) {
        char *path = g_strdup_printf("%s-%u", stem, n);
        struct stat st;

        /* not followed: a dangling symbolic link is a taken name too */
        if (!util_path_stat(path, TRUE, &st, NULL))
            return path;
        g_free(path);
    }
}

/* The domain a revert to @def gives: its captured (inactive) definition under the
 * domain's own name, as qemu keeps the VM's name. Owned. */
static DomainDef *
manage_revert_domain(const SnapshotDef *def, const char *domain)
{
    DomainDef *newdom = domain_copy(def->inactive_dom ? def->inactive_dom : def->dom);

    if (g_strcmp0(newdom->name, domain) != 0) {
        xmlNode *root = xmlDocGetRootElement(newdom->doc);
        xmlNode *n = xmlutil_child(root, "name");

        g_free(newdom->name);
        newdom->name = g_strdup(domain);
        if (n)
            xmlNodeSetContent(n, (const xmlChar *)domain);
    }
    return newdom;
}

/* A reverted domain is another run of the VM: a new genid when it has one. */
static void
manage_revert_genid(DomainDef *newdom)
{
    if (newdom && newdom->has_genid) {
        guint8 genid[UTIL_UUID_LEN];

        util_uuid_generate(genid);
        domain_set_genid(newdom, genid);
    }
}

/* Puts @disk of @newdom on the new qcow2 overlay @overlay. */
static void
manage_revert_set_overlay(DomainDef *newdom, DiskDef *disk, const char *overlay)
{
    StorageSource *src = storage_source_new();

    src->type = STORAGE_TYPE_FILE;
    src->path = g_strdup(overlay);
    src->format = g_strdup("qcow2");
    domain_disk_set_source(newdom, disk, src, FALSE);
}

/* Whether a revert to @def may make the overlay of its disk @sdisk on the image @disk of
 * the captured definition names: an external disk with an image, in a directory @dom uses. */
static gboolean
manage_revert_overlay_wanted(const DomainDef *dom, const SnapDiskDef *sdisk, const DiskDef *disk,
                             gboolean *wanted, GError **error)
{
    *wanted = FALSE;
    if (!disk || !disk->src->path || sdisk->snapshot != SNAP_LOC_EXTERNAL)
        return TRUE;
    if (!manage_path_allowed(dom, disk->src->path, error))
        return FALSE;
    *wanted = TRUE;
    return TRUE;
}

DomainDef *
manage_revert_external(const DomainDef *dom, const SnapshotDef *def, GPtrArray *overlays,
                       GError **error)
{
    g_autoptr(DomainDef) newdom = NULL;

    if (!def->dom) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "snapshot '%s' lacks domain '%s' rollback info", def->name, dom->name);
        return NULL;
    }
    newdom = manage_revert_domain(def, dom->name);
    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sdisk = def->disks->pdata[i];
        DiskDef *disk = domain_disk_by_name(newdom, sdisk->name);
        g_autofree char *overlay = NULL;
        gboolean wanted;

        if (!manage_revert_overlay_wanted(dom, sdisk, disk, &wanted, error))
            goto fail;
        if (!wanted)
            continue;
        overlay = manage_revert_overlay_name(disk->src->path, def->name);
        if (!manage_create_overlay(overlay, "qcow2", disk->src->path,
                                   disk->src->format ? disk->src->format : "raw", error))
            goto fail;
        g_ptr_array_add(overlays, g_strdup(overlay));
        manage_revert_set_overlay(newdom, disk, overlay);
    }
    manage_revert_genid(newdom);
    return g_steal_pointer(&newdom);

fail:
    manage_rollback_images(overlays, NULL, def->name, error);
    g_ptr_array_set_size(overlays, 0);
    return NULL;
}

/* The metadata of a revert: @newdom (NULL: the domain stays), then @node current,
 * old current first. On failure the files are as they were. */
static gboolean
manage_revert_metadata(Store *store, const char *domain, BackendDomain *sd, SnapNode *node,
                       DomainDef *newdom, GError **error)
{
    SnapNode *old_current = sd->snaps->current;

    manage_revert_genid(newdom);
    sd->snaps->current = node;
    return manage_write_metadata(store, domain, sd, newdom, old_current, node, error);
}

gboolean
manage_revert(Store *store, const char *domain, const char *snap, char **result, GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(DomainDef) newdom = NULL;
    g_autoptr(GPtrArray) overlays = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(UsersScan) scan = NULL;
    g_autofree char *path = journal_path(store->snapshot_dir, domain);
    g_autoptr(Journal) journal = journal_new(path, "revert");
    SnapNode *node;
    const SnapshotDef *def;
    gboolean external;
    guint applied = 0;

    if (!(sd = manage_begin(store, domain, MANAGE_IMAGES, &lock, error)))
        return FALSE;
    if (!(node = manage_snap_lookup(sd, snap, error)) ||
        !store_snapshot_full(store, domain, sd, node, error))
        return FALSE;
    def = node->def;
    if (!def->dom) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "snapshot '%s' lacks domain '%s' rollback info", snap, domain);
        return FALSE;
    }
    if (def->state != SNAP_STATE_SHUTOFF && def->state != SNAP_STATE_DISK_SNAPSHOT &&
        def->state != SNAP_STATE_SHUTDOWN && def->state != SNAP_STATE_CRASHED) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "snapshot '%s' holds a running domain's memory; snapfs reverts offline "
                    "snapshots only", snap);
        return FALSE;
    }
    external = manage_is_external(def);
    newdom = manage_revert_domain(def, domain);
    journal_set(journal, "snapshot", snap);
    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *sdisk = def->disks->pdata[i];
        DiskDef *disk = domain_disk_by_name(newdom, sdisk->name);

        gboolean wanted;

        if (!disk || !disk->src->path)
            continue;
        if (!manage_revert_overlay_wanted(sd->def, sdisk, disk, &wanted, error) ||
            (sdisk->snapshot == SNAP_LOC_INTERNAL &&
             !manage_path_allowed(sd->def, disk->src->path, error)))
            goto fail;
        if (external && wanted) {
            g_autofree char *overlay = manage_revert_overlay_name(disk->src->path, snap);
            const char *fmt = disk->src->format ? disk->src->format : "raw";
            const char *args[] = { sdisk->name, overlay, "new", NULL };
            gint step;

            if ((step = manage_journal_step(journal, "overlay", args, error)) < 0 ||
                !manage_create_overlay(overlay, "qcow2", disk->src->path, fmt, error))
                goto fail;
            g_ptr_array_add(overlays, g_strdup(overlay));
            if (!journal_mark_done(journal, step, error))
                goto fail;
            manage_revert_set_overlay(newdom, disk, overlay);
        } else if (!external && sdisk->snapshot == SNAP_LOC_INTERNAL) {
            /* qemu-img snapshot -a rewrites the image: nothing may be built on it, and
             * only this domain's chains that end at it (its disk, its snapshots) may
             * use it. */
            g_autofree char *what = g_strdup_printf("cannot revert to internal snapshot %s",
                                                    snap);

            if (!manage_check_users(store, &scan, disk->src->path, domain, NULL, NULL,
                                    MANAGE_USERS_OWN_TOPS | MANAGE_USERS_FILES, what, error))
                goto fail;
        }
    }
    if (!external) {
        /* Check every disk first, then apply. qemu-img snapshot -a cannot be undone:
         * every image is opened first (manage_image_check_lock), and once one disk
         * is reverted, the journal makes the next load revert the rest. */
        for (guint i = 0; i < def->disks->len; i++) {
            SnapDiskDef *sdisk = def->disks->pdata[i];
            DiskDef *disk = domain_disk_by_name(newdom, sdisk->name);
            const char *args[] = { snap, disk ? disk->src->path : NULL, NULL };

            if (sdisk->snapshot != SNAP_LOC_INTERNAL || !disk || !disk->src->path)
                continue;
            journal_add_step(journal, "snapshot-apply", args);
        }
        for (guint i = 0; i < journal_step_count(journal); i++) {
            g_auto(GStrv) args = journal_step_args(journal, i);

            if (!manage_image_check_lock(args[1], error))
                goto fail;
        }
        if (journal_step_count(journal) && !journal_write(journal, error))
            goto fail;
        for (guint i = 0; i < journal_step_count(journal); i++) {
            g_auto(GStrv) args = journal_step_args(journal, i);
            const char *argv[] = { "qemu-img", "snapshot", "-a", snap, args[1], NULL };

            if (!manage_run(argv, error) || !journal_mark_done(journal, i, error))
                goto fail;
            applied++;
        }
    }
    if (!manage_revert_metadata(store, domain, sd, node, newdom, error))
        goto fail;
    manage_journal_done(journal);
    *result = g_strdup_printf("Domain snapshot %s reverted", snap);
    return TRUE;

fail:
    manage_rollback_images(overlays, NULL, snap, error);
    if (applied == 0)
        manage_journal_done(journal);
    else
        g_prefix_error(error, "revert to %s stopped after %u of its disks (the next change of "
                       "domain '%s' reverts the rest): ", snap, applied, domain);
    return FALSE;
}

/* ---- journalled changes: finishing or undoing an interrupted one -------------- */

/* TRUE when the domain's disks name an image that the "overlay" steps of @journal
 * made: the domain was written, so the change went past its point of no return. */
static gboolean
manage_domain_uses_overlays(const DomainDef *dom, Journal *journal)
{
    for (guint i = 0; i < journal_step_count(journal); i++) {
        g_autofree char *action = journal_step_action(journal, i);
        g_auto(GStrv) args = journal_step_args(journal, i);

        if (strcmp(action, "overlay") != 0 || g_strv_length(args) < 2)
            continue;
        for (guint j = 0; j < dom->disks->len; j++) {
            DiskDef *disk = dom->disks->pdata[j];

            if (g_strcmp0(disk->src->path, args[1]) == 0)
                return TRUE;
        }
    }
    return FALSE;
}

/* Undoes the image steps of an interrupted create or revert, last first: overlays
 * it made go (an empty file it reused is emptied again), internal snapshots it
 * added are deleted. Files the domain uses are never touched. */
static gboolean
manage_undo_image_steps(const DomainDef *dom, Journal *journal, GError **error)
{
    for (guint i = journal_step_count(journal); i-- > 0;) {
        g_autofree char *action = journal_step_action(journal, i);
        g_auto(GStrv) args = journal_step_args(journal, i);
        guint nargs = g_strv_length(args);

        if (strcmp(action, "overlay") == 0 && nargs == 3) {
            gboolean used = FALSE;

            for (guint j = 0; j < dom->disks->len; j++)
                used |= g_strcmp0(((DiskDef *)dom->disks->pdata[j])->src->path, args[1]) == 0;
            if (used)
                continue;
            if (strcmp(args[2], "new") == 0 ? unlink(args[1]) < 0 && errno != ENOENT
                                            : truncate(args[1], 0) < 0 && errno != ENOENT) {
                int errsv = errno;

                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                            "cannot remove overlay '%s': %s", args[1], g_strerror(errsv));
                return FALSE;
            }
        } else if (strcmp(action, "snapshot-create") == 0 && nargs == 3) {
            const char *argv[] = { "qemu-img", "snapshot", "-d", args[0], args[1], NULL };
            guint now = 0;

            if (!qcow_snapshot_count(args[1], args[0], &now, error))
                return FALSE;
            if (now > (guint)g_ascii_strtoull(args[2], NULL, 10) && !manage_run(argv, error))
                return FALSE;
        }
    }
    return TRUE;
}

/* An interrupted create: finished when its metadata (or the domain on its overlays)
 * was written, else undone, with current given back to the snapshot that had it. */
static gboolean
manage_create_resume(Store *store, const char *domain, BackendDomain *sd, Journal *journal,
                     GError **error)
{
    g_autofree char *snap = journal_get(journal, "snapshot");
    g_autofree char *before = journal_get(journal, "current-before");
    SnapNode *node = snap ? snaptree_lookup(sd->snaps, snap) : NULL;
    SnapNode *old = before ? snaptree_lookup(sd->snaps, before) : NULL;
    gboolean used = manage_domain_uses_overlays(sd->def, journal);

    if (node || used) {
        if (node && !used) {
            g_autoptr(DomainDef) newdom = manage_domain_on_overlays(sd->def, node->def);

            if (!store_write_domain(store, newdom, error))
                return FALSE;
        }
        return journal_remove(journal, error);
    }
    if (!manage_undo_image_steps(sd->def, journal, error))
        return FALSE;
    if (!sd->snaps->current && old) {
        sd->snaps->current = old;
        if (!manage_write_node(store, domain, sd, old, error))
            return FALSE;
    }
    return journal_remove(journal, error);
}

/* An interrupted revert: an internal one is finished (qemu-img snapshot -a cannot be
 * undone; the disks not reverted yet are); an external one is finished when the
 * domain was written on its overlays, else its overlays go. */
static gboolean
manage_revert_resume(Store *store, const char *domain, BackendDomain *sd, Journal *journal,
                     GError **error)
{
    g_autofree char *snap = journal_get(journal, "snapshot");
    SnapNode *node = snap ? snaptree_lookup(sd->snaps, snap) : NULL;
    gboolean internal = FALSE;

    for (guint i = 0; i < journal_step_count(journal); i++) {
        g_autofree char *action = journal_step_action(journal, i);
        g_auto(GStrv) args = journal_step_args(journal, i);
        const char *argv[] = { "qemu-img", "snapshot", "-a", NULL, NULL, NULL };

        if (strcmp(action, "snapshot-apply") != 0 || g_strv_length(args) != 2)
            continue;
        argv[3] = args[0];
        argv[4] = args[1];
        internal = TRUE;
        if (!node) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                        "snapshot '%s' is gone; its disks are reverted in part", snap);
            return FALSE;
        }
        if (!journal_step_done(journal, i) &&
            (!manage_run(argv, error) || !journal_mark_done(journal, i, error)))
            return FALSE;
    }
    if (internal) {
        g_autoptr(DomainDef) newdom = NULL;

        if (!store_snapshot_full(store, domain, sd, node, error))
            return FALSE;
        newdom = manage_revert_domain(node->def, domain);
        if (!manage_revert_metadata(store, domain, sd, node, newdom, error))
            return FALSE;
    } else if (node && manage_domain_uses_overlays(sd->def, journal)) {
        if (!manage_revert_metadata(store, domain, sd, node, NULL, error))
            return FALSE;
    } else if (!manage_undo_image_steps(sd->def, journal, error)) {
        return FALSE;
    }
    return journal_remove(journal, error);
}

/* Finishes or undoes the change an unfinished journal of @domain records. Called with
 * the store lock held: a journal seen then belongs to a change that was interrupted.
 * @done (optional) receives what was resolved, for the log. */
static gboolean
manage_resume(Store *store, const char *domain, char **done, GError **error)
{
    g_autofree char *path = journal_path(store->snapshot_dir, domain);
    g_autoptr(Journal) journal = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *op = NULL;
    g_autofree char *snap = NULL;
    gboolean ok;
    struct stat st;

    {
        /* a journal's temp file left by a crash while it was written: either the
         * journal before it is intact, or there was none and nothing had changed */
        g_autofree char *tmp = g_strconcat(path, ".new", NULL);

        if (!store->read_only && unlink(tmp) == 0)
            util_fsync_dir_of(tmp, NULL);
    }
    if (lstat(path, &st) < 0 && errno == ENOENT)
        return TRUE;
    /* finishing or undoing it writes images, whatever the change asked for */
    if (!guard_check_idle(store, domain, error))
        return FALSE;
    if (!(journal = journal_load(path, error))) {
        g_prefix_error(error, "domain '%s' has a journal of an interrupted change that cannot "
                       "be read (check the images, then remove it): ", domain);
        return FALSE;
    }
    op = journal_operation(journal);
    snap = journal_get(journal, "snapshot");
    if (!(sd = store_load_domain_light(store, domain, error)))
        return FALSE;
    if (strcmp(op, "delete") == 0) {
        ok = manage_delete_run(store, domain, sd, journal, TRUE, error);
    } else if (strcmp(op, "create") == 0) {
        ok = manage_create_resume(store, domain, sd, journal, error);
    } else if (strcmp(op, "revert") == 0) {
        ok = manage_revert_resume(store, domain, sd, journal, error);
    } else {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "unknown operation '%s' in '%s'",
                    op, path);
        ok = FALSE;
    }
    if (!ok) {
        /* EBUSY for the change asked for: the domain is held by the unfinished one */
        g_autoptr(GError) cause = g_steal_pointer(error);

        g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                    "the interrupted %s of snapshot '%s' of domain '%s' cannot be finished "
                    "yet (it is tried again at every change of the domain): %s", op,
                    snap ? snap : "", domain, cause ? cause->message : "");
        return FALSE;
    }
    if (done)
        *done = g_strdup_printf("domain '%s': resolved the interrupted %s of snapshot '%s'",
                                domain, op, snap ? snap : "");
    return TRUE;
}

void
manage_recover(Store *store, GPtrArray *resolved, GPtrArray *failed)
{
    g_autofree char *dir = journal_dir(store->snapshot_dir);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(GError) local = NULL;
    const char *name;

    if (!d || store->read_only)
        return;
    if (!(lock = store_lock(store, &local))) {
        g_ptr_array_add(failed, g_strdup(local->message));
        return;
    }
    while ((name = g_dir_read_name(d))) {
        g_autoptr(GError) error = NULL;
        /* a temp file left while a journal was written: resuming its domain removes it */
        g_autofree char *domain = g_str_has_suffix(name, ".new")
            ? g_strndup(name, strlen(name) - strlen(".new"))
            : g_strdup(name);
        char *done = NULL;

        if (manage_resume(store, domain, &done, &error)) {
            if (done)
                g_ptr_array_add(resolved, done);
        } else {
            g_ptr_array_add(failed, g_strdup(error->message));
        }
    }
}

/* ---- genid, define, undefine ---------------------------------------------- */

gboolean
manage_genid(Store *store, const char *domain, const char *arg, char **result, GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *value = manage_bare_value(arg, strlen(arg), "genid", error);
    guint8 genid[UTIL_UUID_LEN];
    char str[UTIL_UUID_STRLEN + 1];

    if (!value)
        return FALSE;
    if (strcmp(value, "new") == 0)
        util_uuid_generate(genid);
    else if (!util_uuid_parse(value, genid)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID, "malformed genid element");
        return FALSE;
    }
    if (!(sd = manage_begin(store, domain, MANAGE_METADATA, &lock, error)))
        return FALSE;
    domain_set_genid(sd->def, genid);
    if (!store_write_domain(store, sd->def, error))
        return FALSE;
    util_uuid_format(genid, str);
    *result = g_strdup_printf("genid of domain '%s' set to %s", domain, str);
    return TRUE;
}

gboolean
manage_define(Store *store, const char *xml, gsize len, char **result, GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(DomainDef) def = NULL;
    g_autoptr(GPtrArray) names = NULL;
    char uuid[UTIL_UUID_STRLEN + 1];

    if (len > MANAGE_MAX_PAYLOAD) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG, "payload is larger than %d bytes",
                    MANAGE_MAX_PAYLOAD);
        return FALSE;
    }
    if (!(def = domain_parse(xml, len, DOMAIN_PARSE_NO_UUID_OK, error)))
        return FALSE;
    if (!def->name || !*def->name || strchr(def->name, '/') || def->name[0] == '.' ||
        strlen(def->name) > 250) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "domain name '%s' cannot be used as a file name (no '/', no leading '.', "
                    "at most 250 bytes)", def->name ? def->name : "");
        return FALSE;
    }
    if (!(lock = store_lock(store, error)) || !(names = store_list_domains(store, error)))
        return FALSE;
    /* virDomainObjListAdd: same name with another uuid, or same uuid with another name. */
    for (guint i = 0; i < names->len; i++) {
        g_autoptr(BackendDomain) other = store_load_domain(store, names->pdata[i], NULL);

        if (!other)
            continue;
        if (strcmp(other->def->name, def->name) == 0 &&
            memcmp(other->def->uuid, def->uuid, UTIL_UUID_LEN) != 0) {
            util_uuid_format(other->def->uuid, uuid);
            g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS,
                        "domain '%s' already exists with uuid %s", def->name, uuid);
            return FALSE;
        }
        if (strcmp(other->def->name, def->name) != 0 &&
            memcmp(other->def->uuid, def->uuid, UTIL_UUID_LEN) == 0) {
            util_uuid_format(other->def->uuid, uuid);
            g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS,
                        "domain '%s' already exists with uuid %s", other->def->name, uuid);
            return FALSE;
        }
    }
    if (!store_write_domain(store, def, error))
        return FALSE;
    *result = g_strdup_printf("Domain '%s' defined", def->name);
    return TRUE;
}

gboolean
manage_undefine(Store *store, const char *name, guint flags, char **result, GError **error)
{
    g_autoptr(StoreLock) lock = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    gboolean with_snapshots = (flags & BACKEND_UNDEFINE_SNAPSHOTS_METADATA) != 0;
    guint count;

    if (!(sd = manage_begin(store, name, MANAGE_METADATA, &lock, error)))
        return FALSE;
    count = snaptree_count(sd->snaps);
    if (count && !with_snapshots) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "cannot delete inactive domain with %u snapshots", count);
        return FALSE;
    }
    /* Snapshot metadata first, leaves before their parents (libvirt's
     * qemuDomainSnapshotDiscardAllMetadata removes every file): a crash leaves a
     * domain with fewer snapshots and no dangling parent, never snapshots without
     * their domain, which a later define of the name would bring back. */
    if (count) {
        g_autoptr(GPtrArray) order = snaptree_topological(sd->snaps);

        for (guint i = order->len; i-- > 0;) {
            SnapNode *n = order->pdata[i];
            g_autoptr(GError) local = NULL;

            if (!store_remove_snapshot(store, name, n->def->name, &local) &&
                !g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
                g_propagate_error(error, g_steal_pointer(&local));
                g_prefix_error(error, "%u of %u snapshots removed, the domain kept: ",
                               order->len - 1 - i, order->len);
                return FALSE;
            }
        }
    }
    if (!store_remove_domain(store, name, error))
        return FALSE;
    *result = g_strdup_printf("Domain '%s' has been undefined", name);
    return TRUE;
}
