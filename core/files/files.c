/* files.c: the files backend: BackendClass over the store, its watch, the host's live
 * state, the guard and the operations of manage.c. */
#include "files.h"

#include <sys/stat.h>

#include "backup_job.h"
#include "error.h"
#include "guard.h"
#include "live.h"
#include "manage.h"
#include "util.h"
#include "watch.h"

typedef struct {
    Backend parent;
    Store *store;
    LiveHost *live;       /* NULL: nothing on the host is checked */
    StoreWatch *watch;    /* NULL until watched, or when the store cannot be watched */
} FilesBackend;

static FilesBackend *
files_of(Backend *b)
{
    return (FilesBackend *)b;
}

static GPtrArray *
files_list_domains(Backend *b, GError **error)
{
    return store_list_domains(files_of(b)->store, error);
}

static guint64
files_list_stamp(Backend *b)
{
    return store_list_stamp(files_of(b)->store);
}

static guint64
files_domain_stamp(Backend *b, const char *name)
{
    return store_domain_stamp(files_of(b)->store, name);
}

static gboolean
files_domain_mtime(Backend *b, const char *name, struct timespec *mtime)
{
    g_autofree char *path = store_domain_path(files_of(b)->store, name);
    struct stat st;

    if (stat(path, &st) != 0)
        return FALSE;
    *mtime = st.st_mtim;
    return TRUE;
}

static BackendDomain *
files_load_domain(Backend *b, const char *name, GError **error)
{
    BackendDomain *bd = store_load_domain_light(files_of(b)->store, name, error);

    /* The config file's time after the load: a change during it makes a new stamp,
     * and so a new load, anyway. */
    if (bd && !files_domain_mtime(b, name, &bd->mtime))
        clock_gettime(CLOCK_REALTIME, &bd->mtime);
    return bd;
}

static gboolean
files_snapshot_full(Backend *b, const char *name, BackendDomain *bd, SnapNode *node,
                    GError **error)
{
    return store_snapshot_full(files_of(b)->store, name, bd, node, error);
}

static void
files_snapshot_light(Backend *b, SnapNode *node, const char *token)
{
    store_snapshot_light(node, token);
}

static gboolean
files_watch(Backend *b, GError **error)
{
    FilesBackend *f = files_of(b);

    if (!f->watch)
        f->watch = watch_new(f->store, error);
    return f->watch != NULL;
}

static gboolean
files_watch_list(Backend *b)
{
    return files_of(b)->watch && watch_list_watched(files_of(b)->watch);
}

static gboolean
files_watch_domain(Backend *b, const char *name)
{
    return files_of(b)->watch && watch_domain(files_of(b)->watch, name);
}

static void
files_watch_forget(Backend *b, const char *name)
{
    if (files_of(b)->watch)
        watch_forget(files_of(b)->watch, name);
}

static gboolean
files_watch_drain(Backend *b, GHashTable *changed)
{
    return files_of(b)->watch && watch_drain(files_of(b)->watch, changed);
}

static gboolean
files_watch_check(Backend *b)
{
    return files_of(b)->watch && watch_check(files_of(b)->watch);
}

static const char *
files_domain_state(Backend *b, const char *name, GError **error)
{
    /* From libvirt's status file: a domain starts and stops without a change to the store. */
    FilesBackend *f = files_of(b);

    return live_state_name(f->live ? live_domain_state(f->live, name, NULL)
                                   : LIVE_STATE_SHUTOFF);
}

static gboolean
files_image_stable(Backend *b, const char *path, GError **error)
{
    return live_image_check(path, LIVE_IMAGE_USED, error);
}

static gboolean
files_check(Backend *b, const BackendOp *op, GError **error)
{
    FilesBackend *f = files_of(b);
    g_autofree char *defined = op->op == BACKEND_OP_DEFINE
                                   ? guard_define_name(op->xml, op->len) : NULL;
    const char *name = op->op == BACKEND_OP_DEFINE ? defined
                       : op->op == BACKEND_OP_UNDEFINE ? op->name : op->dom;
    gboolean named = op->op == BACKEND_OP_CURRENT || op->op == BACKEND_OP_REVERT ||
                     op->op == BACKEND_OP_DELETE;

    return guard_check(f->store, f->live, op->op, name, named ? op->name : NULL, error);
}

static gboolean
files_apply(Backend *b, const BackendOp *op, char **result, GError **error)
{
    Store *store = files_of(b)->store;
    const char *dom = op->dom;

    switch (op->op) {
    case BACKEND_OP_DEFINE:
        return manage_define(store, op->xml, op->len, result, error);
    case BACKEND_OP_UNDEFINE:
        return manage_undefine(store, op->name, op->flags, result, error);
    case BACKEND_OP_CREATE:
    case BACKEND_OP_CREATE_NO_METADATA: {
        guint flags = op->op == BACKEND_OP_CREATE ? 0 : MANAGE_CREATE_NO_METADATA;

        /* Both need a running guest, which the files backend never acts behind. */
        if (op->flags & (BACKEND_CREATE_QUIESCE | BACKEND_CREATE_MEMORY)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "%s needs a running domain: mount its daemon with snapfs -c URI",
                        op->flags & BACKEND_CREATE_QUIESCE ? "--quiesce" : "--memory");
            return FALSE;
        }

        return op->xml ? manage_create(store, dom, op->xml, op->len, flags, result, error)
                       : manage_create_named(store, dom, op->name, flags, result, error);
    }
    case BACKEND_OP_REDEFINE:
    case BACKEND_OP_REDEFINE_CURRENT:
        return manage_create(store, dom, op->xml, op->len,
                             MANAGE_CREATE_REDEFINE | (op->op == BACKEND_OP_REDEFINE_CURRENT
                                                           ? MANAGE_CREATE_CURRENT : 0),
                             result, error);
    case BACKEND_OP_IMPORT:
        return manage_import(store, dom, op->xml, op->len, result, error);
    case BACKEND_OP_CURRENT:
        return manage_set_current(store, dom, op->name, result, error);
    case BACKEND_OP_REVERT:
        return manage_revert(store, dom, op->name, result, error);
    case BACKEND_OP_DELETE:
        return manage_delete(store, dom, op->name, op->flags, result, error);
    case BACKEND_OP_GENID:
        return manage_genid(store, dom, op->name, result, error);
    case BACKEND_OP_BACKUP:
        break;
    }
    g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED, "a backup is a job, not an operation");
    return FALSE;
}

static BackendJob *
files_job_start(Backend *b, const char *dom, const char *xml, gsize len, BackendJob *previous,
                GError **error)
{
    BackendOp op = { .op = BACKEND_OP_BACKUP, .dom = dom, .xml = xml, .len = len };

    if (!files_check(b, &op, error))
        return NULL;
    return (BackendJob *)backup_job_start(files_of(b)->store, dom, xml, len,
                                          (BackupJob *)previous, error);
}

static void
files_job_cancel(BackendJob *job)
{
    backup_job_cancel((BackupJob *)job);
}

static gboolean
files_job_running(BackendJob *job)
{
    return backup_job_is_running((BackupJob *)job);
}

static char *
files_job_describe(BackendJob *job)
{
    return backup_job_describe((BackupJob *)job);
}

static char *
files_job_xml(BackendJob *job)
{
    return backup_job_xml((BackupJob *)job);
}

static void
files_job_free(BackendJob *job)
{
    backup_job_free((BackupJob *)job);
}

static void
files_free(Backend *b)
{
    FilesBackend *f = files_of(b);

    watch_free(f->watch);
    store_free(f->store);
    live_host_free(f->live);   /* after the store that borrows it */
    g_free(f);
}

static const BackendClass files_class = {
    .list_domains = files_list_domains,
    .list_stamp = files_list_stamp,
    .domain_stamp = files_domain_stamp,
    .domain_mtime = files_domain_mtime,
    .load_domain = files_load_domain,
    .snapshot_full = files_snapshot_full,
    .snapshot_light = files_snapshot_light,
    .watch = files_watch,
    .watch_list = files_watch_list,
    .watch_domain = files_watch_domain,
    .watch_forget = files_watch_forget,
    .watch_drain = files_watch_drain,
    .watch_check = files_watch_check,
    .domain_state = files_domain_state,
    .image_stable = files_image_stable,
    .check = files_check,
    .apply = files_apply,
    .job_start = files_job_start,
    .job_cancel = files_job_cancel,
    .job_running = files_job_running,
    .job_describe = files_job_describe,
    .job_xml = files_job_xml,
    .job_free = files_job_free,
    .free = files_free,
};

/* A daemon in charge makes every change through this backend fail: the user learns it at
 * mount time, with the URI that reaches the daemon. */
static void
files_log_live(const LiveHost *live)
{
    g_autofree char *uri = NULL;
    g_autofree char *who = NULL;
    pid_t pid = 0;

    if (live->run_dir)
        g_debug("libvirt's status files: %s", live->run_dir);
    else
        g_debug("no libvirt status directory is known for this store (-o run_dir)");
    if (live_host_daemon(live, &uri, &pid)) {
        who = pid ? g_strdup_printf(" (pid %d)", (int)pid) : g_strdup("");
        g_message("a libvirt daemon%s is in charge of this store: snapfs shows it and "
                  "refuses changes; make them with virsh -c %s, or mount it with "
                  "snapfs -c %s", who, uri, uri);
    }
}

Backend *
files_backend_new(const FilesOptions *o, GError **error)
{
    g_autoptr(GPtrArray) resolved = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) failed = g_ptr_array_new_with_free_func(g_free);
    FilesBackend *f;
    Store *store;

    if (!(store = store_open(o->root, o->config_dir, o->snapshot_dir, error)))
        return NULL;
    f = g_new0(FilesBackend, 1);
    f->parent.klass = &files_class;
    f->parent.read_only = o->read_only;
    f->store = store;
    store->read_only = o->read_only;   /* loading then changes nothing on disk either */
    if (o->live) {
        f->live = live_host_new(store->config_dir, o->run_dir);
        store->live = f->live;
        files_log_live(f->live);
    }
    /* Changes of images a crash interrupted are finished or undone before anything is
     * shown (the journals say how); an unresolved one is shown as such. */
    manage_recover(store, resolved, failed);
    backup_job_recover(store, resolved, failed);
    for (guint i = 0; i < resolved->len; i++)
        g_message("%s", (char *)resolved->pdata[i]);
    for (guint i = 0; i < failed->len; i++)
        g_warning("%s", (char *)failed->pdata[i]);
    return &f->parent;
}

Store *
files_backend_store(Backend *backend)
{
    g_assert(backend->klass == &files_class);
    return files_of(backend)->store;
}
