/* view.c: the mounted tree computed from a backend's domains: names, attributes, file contents. */
#include "view.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

/* How often a domain is re-examined when the backend cannot watch it:
 * changes made by another process show up within this time (plus the kernel's 1 s
 * attribute timeout). Watched domains are re-examined only after an event. */
#define VIEW_RECHECK_US (300 * G_TIME_SPAN_MILLISECOND)
#define VIEW_RECHECK_MAX_US (900 * G_TIME_SPAN_MILLISECOND)

/* One load of a domain: what a request that resolves the domain sees from its start to
 * its end. A reload makes a new version instead of changing this one, so a request
 * never sees a snapshot, a current or a parent vanish between two steps; the old
 * version goes when its last request ends. Its fields are fixed after the load but for
 * the caches and the light/full state of its snapshots (sn->def is replaced by
 * view_snap_full()), which change only under View.lock. */
typedef struct {
    gatomicrefcount ref;
    char *name;
    Backend *backend;             /* the view's: snapshots are read in full on demand */
    BackendDomain *sd;              /* NULL: the domain failed to load (error kept); loaded
                                     light, see view_snap_full() */
    char *load_error;
    GHashTable *sizes;            /* key of a generated file -> ViewContentMeta */
    GHashTable *chains;           /* "SNAP/TARGET" or "/TARGET" -> Chain *, resolved outside
                                     the lock (view_req_prepare), never removed */
    GQueue full;                  /* ViewFull *: snapshots read in full, oldest first */
} ViewVersion;

/* A domain as the view tracks it: when to look at its files again, and its version. */
typedef struct {
    char *name;
    Backend *watch;               /* the view's backend when it watches, or NULL */
    ViewVersion *ver;             /* the last load (one reference) */
    guint64 stamp;
    gboolean watched;             /* inotify reports its changes: re-examined when dirty */
    gboolean dirty;               /* an event came since its stamp was taken */
    gboolean reload;              /* a file changed after the load: reload even when the
                                     stamp did not see it */
    gint64 checked_us;            /* not watched: re-examined after recheck_us */
    gint64 recheck_us;            /* interval: 300 ms, longer when a check is costly */
} ViewDomain;

/* Snapshots kept in full per domain: the others are light (no <domain>), so memory
 * does not grow with the number of snapshot.xml files read. One operation uses
 * one or two at a time. */
#define VIEW_FULL_MAX 64

typedef struct {
    SnapNode *node;
    char *path;
} ViewFull;

static void
view_full_free(ViewFull *f)
{
    g_free(f->path);
    g_free(f);
}

struct View {
    GMutex lock;                  /* guards everything below */
    GHashTable *results;          /* domain name ("" = top) -> char * */
    GHashTable *templinks;        /* "DOM/NAME" -> target */
    GHashTable *jobs;             /* domain name -> BackendJob * (running or last) */
    GHashTable *starting;         /* names of domains whose backup is being started */
    GHashTable *reloaded;         /* names of domains reloaded on access since the last
                                     poll: the kernel's caches of them are stale */
    Backend *backend;
    gboolean watching;            /* FALSE: the backend cannot watch, everything is polled */
    GHashTable *changed;          /* scratch set for backend_watch_drain() */
    gboolean list_dirty;          /* an event in the config directory since the listing */
    gboolean list_failed;         /* the last listing failed: retried as when polled */
    uid_t uid;
    gid_t gid;
    GHashTable *domains;          /* name -> ViewDomain * */
    GPtrArray *domain_names;      /* sorted, from the last listing */
    guint64 list_stamp;
    gint64 list_checked_us;
    struct timespec mount_time;
};

static const char *const view_dom_files[] = {
    "domain.xml", "domain.secure.xml", "uuid", "genid", "tree", "snapshots.tsv", "job",
    "backup.xml", "state", NULL
};
static const char *const view_snap_files[] = {
    "snapshot.xml", "snapshot.secure.xml", "domain.xml", "description", "state",
    "creationTime", NULL
};
static const char *const view_disk_files[] = {
    "source", "type", "format", "info", "data", NULL
};
static const char *const view_ctl_top[] = { "define", "undefine", "result", NULL };
static const char *const view_ctl_dom[] = {
    "create", "create-no-metadata", "redefine", "redefine-current", "import", "revert",
    "delete", "genid", "backup", "result", NULL
};

const char *const *
view_ctl_names(gboolean top)
{
    return top ? view_ctl_top : view_ctl_dom;
}

gboolean
view_ctl_is_result(const ViewNode *node)
{
    return node->kind == VIEW_CTL_FILE && strcmp(node->leaf, "result") == 0;
}

void
view_node_free(ViewNode *node)
{
    if (!node)
        return;
    g_free(node->dom);
    g_free(node->snap);
    g_free(node->disk);
    g_free(node->leaf);
    g_free(node);
}

ViewNode *
view_node_copy(const ViewNode *node)
{
    ViewNode *n = g_new0(ViewNode, 1);

    n->kind = node->kind;
    n->dom = g_strdup(node->dom);
    n->snap = g_strdup(node->snap);
    n->disk = g_strdup(node->disk);
    n->leaf = g_strdup(node->leaf);
    return n;
}

void
view_dirent_free(ViewDirent *ent)
{
    if (!ent)
        return;
    g_free(ent->name);
    g_free(ent);
}

static ViewVersion *
view_version_new(Backend *backend, const char *name)
{
    ViewVersion *ver = g_new0(ViewVersion, 1);

    g_atomic_ref_count_init(&ver->ref);
    ver->name = g_strdup(name);
    ver->backend = backend;
    ver->chains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify)chain_free);
    ver->sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return ver;
}

static ViewVersion *
view_version_ref(ViewVersion *ver)
{
    g_atomic_ref_count_inc(&ver->ref);
    return ver;
}

/* Drops a reference; the last one frees. Needs no lock: nobody else can reach a
 * version whose last reference goes. */
static void
view_version_unref(ViewVersion *ver)
{
    if (!ver || !g_atomic_ref_count_dec(&ver->ref))
        return;
    g_free(ver->name);
    g_queue_clear_full(&ver->full, (GDestroyNotify)view_full_free);
    backend_domain_free(ver->sd);
    g_free(ver->load_error);
    g_hash_table_unref(ver->chains);
    g_hash_table_unref(ver->sizes);
    g_free(ver);
}

/* What an unfinished journalled change does to snapshot @snap (NULL: none). */
static const char *
view_pending(const BackendDomain *sd, const char *snap)
{
    if (!snap || !sd || !sd->pending)
        return NULL;
    return g_hash_table_lookup(sd->pending, snap);
}

static void
view_domain_free(ViewDomain *vd)
{
    if (!vd)
        return;
    if (vd->watch)
        backend_watch_forget(vd->watch, vd->name);
    g_free(vd->name);
    view_version_unref(vd->ver);
    g_free(vd);
}

View *
view_new(Backend *backend, gboolean watch)
{
    View *view = g_new0(View, 1);

    g_mutex_init(&view->lock);
    view->backend = backend;
    view->uid = getuid();
    view->gid = getgid();
    view->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify)view_domain_free);
    view->domain_names = g_ptr_array_new_with_free_func(g_free);
    view->results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    view->templinks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    view->jobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)backend->klass->job_free);
    view->starting = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    view->reloaded = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    view->changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    {
        g_autoptr(GError) error = NULL;

        if (watch && !(view->watching = backend_watch(backend, &error)))
            g_message("%s: changes made by other processes are found by polling",
                      error->message);
    }
    view->list_dirty = TRUE;
    clock_gettime(CLOCK_REALTIME, &view->mount_time);
    return view;
}

void
view_free(View *view)
{
    if (!view)
        return;
    g_hash_table_unref(view->domains);
    g_ptr_array_unref(view->domain_names);
    g_hash_table_unref(view->results);
    g_hash_table_unref(view->templinks);
    g_hash_table_unref(view->jobs);   /* cancels and waits for running backups */
    g_hash_table_unref(view->starting);
    g_hash_table_unref(view->reloaded);
    g_hash_table_unref(view->changed);
    g_mutex_clear(&view->lock);
    g_free(view);
}

static gboolean
view_set_noent(GError **error, const char *what)
{
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no such entry '%s'", what);
    return FALSE;
}

/* A name that can appear as a file name in the mount. */
static gboolean
view_name_ok(const char *name)
{
    return name && *name && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
           strcmp(name, "..") != 0 && strlen(name) <= 255;
}

/* Everything may have changed (events lost, a directory moved). Lock held. */
static void
view_dirty_all(View *view)
{
    GHashTableIter it;
    gpointer v;

    view->list_dirty = TRUE;
    g_hash_table_iter_init(&it, view->domains);
    while (g_hash_table_iter_next(&it, NULL, &v))
        ((ViewDomain *)v)->dirty = TRUE;
}

/* Marks dirty what the events queued since the last call may have changed. Lock held. */
static void
view_sync_watch(View *view)
{
    GHashTableIter it;
    gpointer k;

    if (!view->watching)
        return;
    if (backend_watch_drain(view->backend, view->changed))
        view_dirty_all(view);
    g_hash_table_iter_init(&it, view->changed);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        ViewDomain *vd;

        if (!*(const char *)k)
            view->list_dirty = TRUE;
        else if ((vd = g_hash_table_lookup(view->domains, k)))
            vd->dirty = TRUE;
    }
    g_hash_table_remove_all(view->changed);
}

/* Whether events tell when the domain list changed (else it is polled). */
static gboolean
view_list_watched(View *view)
{
    return view->watching && backend_watch_list(view->backend) && !view->list_failed;
}

/* Whether the domain list has to be read again (after view_sync_watch()). */
static gboolean
view_list_due(View *view, gint64 now)
{
    if (view_list_watched(view))
        return view->list_dirty;
    return !view->list_checked_us || now - view->list_checked_us >= VIEW_RECHECK_US;
}

/* Whether domain @vd's stamp has to be taken again (after view_sync_watch()). */
static gboolean
view_domain_due(const ViewDomain *vd, gint64 now)
{
    if (vd->watched)
        return vd->dirty;
    return now - vd->checked_us >= vd->recheck_us;
}

/* Refreshes the domain list when the config directory changed. Lock held. */
static void
view_refresh_list(View *view)
{
    gint64 now = g_get_monotonic_time();
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) names = NULL;
    guint64 stamp;

    view_sync_watch(view);
    if (!view_list_due(view, now))
        return;
    view->list_checked_us = now;
    view->list_dirty = FALSE;
    stamp = backend_list_stamp(view->backend);
    if (stamp == view->list_stamp && view->domain_names->len)
        return;
    if (!(names = backend_list_domains(view->backend, &error))) {
        g_warning("cannot list domains: %s", error->message);
        view->list_failed = TRUE;   /* tried again in VIEW_RECHECK_US */
        view->list_dirty = TRUE;
        return;
    }
    view->list_failed = FALSE;
    if (view->domain_names->len)   /* a change found here: the poller tells the kernel */
        g_hash_table_add(view->reloaded, g_strdup(""));
    view->list_stamp = stamp;
    g_ptr_array_set_size(view->domain_names, 0);
    for (guint i = 0; i < names->len; i++)
        if (view_name_ok(names->pdata[i]))
            g_ptr_array_add(view->domain_names, g_strdup(names->pdata[i]));
}

static gboolean
view_domain_listed(View *view, const char *name)
{
    view_refresh_list(view);
    for (guint i = 0; i < view->domain_names->len; i++)
        if (strcmp(view->domain_names->pdata[i], name) == 0)
            return TRUE;
    return FALSE;
}
/* Takes domain @name's stamp, watching it first so that no change after the stamp
 * goes unseen. Lock held. What the check cost sets how often an unwatched domain
 * is checked: a check stats every file of the domain, and its cost is kept under
 * ~5 % of the time, so 10,000 snapshots are not re-examined every 300 ms. */
static guint64
view_stamp_domain(View *view, const char *name, gboolean *watched, gint64 *recheck_us)
{
    gint64 start = g_get_monotonic_time();
    guint64 stamp;

    *watched = view->watching && backend_watch_domain(view->backend, name);
    stamp = backend_domain_stamp(view->backend, name);
    *recheck_us = CLAMP((g_get_monotonic_time() - start) * 20, VIEW_RECHECK_US,
                        VIEW_RECHECK_MAX_US);
    return stamp;
}

/* Domain @name as loaded now: the last version, or a new one when its files changed.
 * Lock held; the version is the view's (take a reference to keep it). NULL with
 * ENOENT when there is no such domain. */
static ViewVersion *
view_domain_get(View *view, const char *name, GError **error)
{
    ViewDomain *vd;
    ViewVersion *ver;
    gint64 now = g_get_monotonic_time();
    guint64 stamp;
    gboolean watched;
    gint64 recheck_us;
    g_autoptr(GError) local = NULL;

    if (!name || !view_domain_listed(view, name)) {
        view_set_noent(error, name ? name : "");
        return NULL;
    }
    vd = g_hash_table_lookup(view->domains, name);   /* view_domain_listed() synced */
    if (vd && !vd->reload && !view_domain_due(vd, now))
        return vd->ver;
    stamp = view_stamp_domain(view, name, &watched, &recheck_us);
    if (vd) {
        vd->recheck_us = recheck_us;
        vd->watched = watched;
        vd->dirty = FALSE;
    }
    if (vd && vd->stamp == stamp && !vd->reload) {
        vd->checked_us = now;
        return vd->ver;
    }
    if (vd)   /* reloaded here, not by the poller: it still has to tell the kernel */
        g_hash_table_add(view->reloaded, g_strdup(name));
    if (!vd) {
        vd = g_new0(ViewDomain, 1);
        vd->name = g_strdup(name);
        vd->watch = view->watching ? view->backend : NULL;
        vd->watched = watched;
        vd->recheck_us = recheck_us;
        g_hash_table_insert(view->domains, vd->name, vd);
    }
    vd->stamp = stamp;
    vd->checked_us = now;
    vd->reload = FALSE;
    /* Requests still working on the old version keep it until they end. */
    g_clear_pointer(&vd->ver, view_version_unref);
    vd->ver = ver = view_version_new(view->backend, name);
    if (!(ver->sd = backend_load_domain(view->backend, name, &local))) {
        g_warning("cannot load domain '%s': %s", name, local->message);
        ver->load_error = g_strdup(local->message);
    } else {
        for (guint i = 0; i < ver->sd->warnings->len; i++)
            g_message("domain '%s': %s", name, (const char *)ver->sd->warnings->pdata[i]);
    }
    return ver;
}

/* One request: the version of its domain is taken at the first need and kept to the
 * end, so every step of the request sees the same tree, whatever reloads meanwhile. */
typedef struct {
    View *view;
    ViewVersion *ver;      /* a reference, or NULL until needed */
    gboolean stale;        /* a snapshot file changed after the load: worth a retry */
} ViewReq;

static void
view_req_clear(ViewReq *r)
{
    g_clear_pointer(&r->ver, view_version_unref);
    r->stale = FALSE;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ViewReq, view_req_clear)

/* Tries of a request whose snapshot file changed under it: each retry works on a
 * new load, so only a file rewritten again within milliseconds needs another. */
#define VIEW_REQ_TRIES 4

/* The version of domain @dom for request @r. Lock held. */
static ViewVersion *
view_req_domain(ViewReq *r, const char *dom, GError **error)
{
    ViewVersion *ver;

    if (r->ver) {
        g_assert(strcmp(r->ver->name, dom) == 0);
        return r->ver;
    }
    if (!(ver = view_domain_get(r->view, dom, error)))
        return NULL;
    r->ver = view_version_ref(ver);
    return ver;
}

/* After a failed request: TRUE when it failed only because a snapshot file changed
 * after its load and another try is left (@error is cleared, @r reset); on the last
 * try the error becomes ENOENT: the snapshot the load saw is gone. Lock held. */
static gboolean
view_req_retry(ViewReq *r, guint attempt, GError **error)
{
    if (!r->stale)
        return FALSE;
    view_req_clear(r);
    if (attempt + 1 < VIEW_REQ_TRIES) {
        g_clear_error(error);
        return TRUE;
    }
    if (error && *error)
        (*error)->code = G_FILE_ERROR_NOENT;
    return FALSE;
}

static SnapNode *
view_snap_get(ViewVersion *ver, const char *snap, GError **error)
{
    SnapNode *sn = snaptree_lookup(ver->sd->snaps, snap);

    if (!sn || !view_name_ok(snap)) {
        view_set_noent(error, snap);
        return NULL;
    }
    return sn;
}

/* Whether snapshot @sn has a full <domain> (loaded or left out by a light load). */
static gboolean
view_snap_has_dom(const SnapNode *sn)
{
    return sn->def->dom || (sn->def->light_path && sn->def->light_dom);
}

/* @sn of @r's version with its domains read (the domain is loaded light): a parse of
 * its file the first time. Replaces sn->def: take definition pointers after this.
 * Lock held. When the file changed since the load, the domain is reloaded at the
 * next access and the request marked for a retry. */
static gboolean
view_snap_full(ViewReq *r, SnapNode *sn, GError **error)
{
    ViewVersion *ver = r->ver;
    g_autoptr(GError) local = NULL;
    g_autofree char *path = g_strdup(sn->def->light_path);
    ViewDomain *vd;

    if (!path)
        return TRUE;
    if (backend_snapshot_full(ver->backend, ver->name, ver->sd, sn, &local)) {
        ViewFull *f = g_new0(ViewFull, 1);

        f->node = sn;
        f->path = g_steal_pointer(&path);
        g_queue_push_tail(&ver->full, f);
        while (g_queue_get_length(&ver->full) > VIEW_FULL_MAX) {
            ViewFull *old = g_queue_pop_head(&ver->full);

            backend_snapshot_light(ver->backend, old->node, old->path);
            view_full_free(old);
        }
        return TRUE;
    }
    if ((vd = g_hash_table_lookup(r->view->domains, ver->name)) && vd->ver == ver)
        vd->reload = TRUE;
    r->stale = TRUE;
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s", local->message);
    return FALSE;
}

/* The domain definition whose disks a VIEW_DISKS node under @snap shows. */
static const DomainDef *
view_disks_def(ViewReq *r, const char *snap, GError **error)
{
    SnapNode *sn;

    if (!snap)
        return r->ver->sd->def;
    if (!(sn = view_snap_get(r->ver, snap, error)) || !view_snap_full(r, sn, error))
        return NULL;
    return sn->def->dom;   /* NULL for the legacy uuid-only form: no disks */
}

static char *
view_chain_key(const char *snap, const char *target)
{
    return g_strdup_printf("%s/%s", snap ? snap : "", target);
}

/* The disk of @def whose chain disk @target shows, or NULL (no such disk, or empty
 * media: a cdrom without a disc has no chain). */
static const DiskDef *
view_chain_disk(const DomainDef *def, const char *target)
{
    const DiskDef *disk = NULL;

    for (guint i = 0; def && i < def->disks->len; i++) {
        const DiskDef *d = def->disks->pdata[i];

        if (d->dst && strcmp(d->dst, target) == 0)
            disk = d;
    }
    if (!disk || !disk->src || (!disk->src->path && disk->src->type != STORAGE_TYPE_NETWORK))
        return NULL;
    return disk;
}

/* The chain of disk @target as the domain (snap NULL) or snapshot @snap of @ver has
 * it, as view_req_prepare() resolved it. Lock held; never probes (ENOENT when the
 * disk has no chain). */
static Chain *
view_chain_get(ViewVersion *ver, const char *snap, const char *target, GError **error)
{
    g_autofree char *key = view_chain_key(snap, target);
    Chain *chain = g_hash_table_lookup(ver->chains, key);

    if (!chain)
        view_set_noent(error, target);
    return chain;
}

static gboolean view_parse_label(const char *label, char **target, guint *index);

typedef struct {
    char *key;
    char *target;
    StorageSource *src;
    Chain *chain;
} ViewChainJob;

static void
view_chain_job_free(ViewChainJob *job)
{
    g_free(job->key);
    g_free(job->target);
    storage_source_free(job->src);
    if (job->chain)
        chain_free(job->chain);
    g_free(job);
}

/* Resolves the chains @node needs that @r's version does not have yet. Probing
 * opens and reads images, which can wait on the outside (a FIFO, a dead NFS server,
 * a path inside our own mount): it runs with the lock released, so no request of
 * another node or domain waits behind it. Lock held on entry and on return. The
 * version is @r's: a reload meanwhile does not change what the request sees. */
static void
view_req_prepare(ViewReq *r, const ViewNode *node)
{
    g_autoptr(GPtrArray) jobs = NULL;
    g_autoptr(GPtrArray) targets = g_ptr_array_new_with_free_func(g_free);
    const DomainDef *def;
    ViewVersion *ver;

    if (!node->dom || (!node->disk && node->kind != VIEW_DISKS))
        return;
    if (!(ver = view_req_domain(r, node->dom, NULL)) || !ver->sd ||
        !(def = view_disks_def(r, node->snap, NULL)))
        return;
    if (node->disk) {
        char *target = NULL;
        guint index;

        if (!view_parse_label(node->disk, &target, &index))
            return;
        g_ptr_array_add(targets, target);
    } else {
        for (guint i = 0; i < def->disks->len; i++) {
            const DiskDef *d = def->disks->pdata[i];

            if (d->dst && view_name_ok(d->dst))
                g_ptr_array_add(targets, g_strdup(d->dst));
        }
    }
    jobs = g_ptr_array_new_with_free_func((GDestroyNotify)view_chain_job_free);
    for (guint i = 0; i < targets->len; i++) {
        const char *target = targets->pdata[i];
        g_autofree char *key = view_chain_key(node->snap, target);
        const DiskDef *disk;
        ViewChainJob *job;

        if (g_hash_table_contains(ver->chains, key) || !(disk = view_chain_disk(def, target)))
            continue;
        job = g_new0(ViewChainJob, 1);
        job->key = g_steal_pointer(&key);
        job->target = g_strdup(target);
        job->src = storage_source_copy(disk->src);   /* def may go light meanwhile */
        g_ptr_array_add(jobs, job);
    }
    if (!jobs->len)
        return;
    g_mutex_unlock(&r->view->lock);
    for (guint i = 0; i < jobs->len; i++) {
        ViewChainJob *job = jobs->pdata[i];

        job->chain = chain_resolve(job->src, job->target);
    }
    g_mutex_lock(&r->view->lock);
    for (guint i = 0; i < jobs->len; i++) {
        ViewChainJob *job = jobs->pdata[i];

        /* Another request may have resolved it meanwhile: the first one stays, so a
         * chain pointer a request holds is never freed under it. */
        if (!g_hash_table_contains(ver->chains, job->key))
            g_hash_table_insert(ver->chains, g_steal_pointer(&job->key),
                                g_steal_pointer(&job->chain));
    }
}

/* Splits "vda[2]" into target "vda" and index 2; "vda" is index 0. */
static gboolean
view_parse_label(const char *label, char **target, guint *index)
{
    const char *br = strchr(label, '[');
    guint64 n = 0;
    char *end = NULL;

    if (!br) {
        *target = g_strdup(label);
        *index = 0;
        return TRUE;
    }
    if (br == label || !g_ascii_isdigit(br[1]))
        return FALSE;
    n = g_ascii_strtoull(br + 1, &end, 10);
    if (!end || strcmp(end, "]") != 0 || n == 0 || n > CHAIN_MAX_DEPTH)
        return FALSE;
    *target = g_strndup(label, br - label);
    *index = (guint)n;
    return TRUE;
}

static ChainLayer *
view_layer_get(ViewVersion *ver, const ViewNode *node, GError **error)
{
    g_autofree char *target = NULL;
    guint index;
    Chain *chain;

    if (!view_parse_label(node->disk, &target, &index)) {
        view_set_noent(error, node->disk);
        return NULL;
    }
    if (!(chain = view_chain_get(ver, node->snap, target, error)))
        return NULL;
    if (index >= chain->layers->len) {
        view_set_noent(error, node->disk);
        return NULL;
    }
    return chain->layers->pdata[index];
}

/* A data file exists when every element from @layer's position down can be read:
 * local, not encrypted, no error (a broken element below breaks the guest view). */
static gboolean
view_data_ok(ViewVersion *ver, const ViewNode *node)
{
    g_autofree char *target = NULL;
    guint index;
    Chain *chain;

    if (!view_parse_label(node->disk, &target, &index) ||
        !(chain = view_chain_get(ver, node->snap, target, NULL)))
        return FALSE;
    for (guint i = index; i < chain->layers->len; i++) {
        ChainLayer *layer = chain->layers->pdata[i];

        if (layer->error || !layer->info || layer->info->encrypted ||
            layer->src->type == STORAGE_TYPE_NETWORK)
            return FALSE;
    }
    return TRUE;
}

static gboolean
view_in_list(const char *const *list, const char *name)
{
    for (guint i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return TRUE;
    return FALSE;
}

static ViewNode *
view_child_new(const ViewNode *parent, ViewKind kind, const char *snap, const char *disk,
               const char *leaf)
{
    ViewNode *n = g_new0(ViewNode, 1);

    n->kind = kind;
    n->dom = g_strdup(parent->dom);
    n->snap = g_strdup(snap);
    n->disk = g_strdup(disk);
    n->leaf = g_strdup(leaf);
    return n;
}

/* Nodes whose existence and attributes need the domain listed, not loaded. */
static gboolean
view_domain_shallow(const ViewNode *node)
{
    return node->dom && (node->kind == VIEW_DOM || node->kind == VIEW_CTL_DIR ||
                         node->kind == VIEW_CTL_FILE);
}

/* Times of domain-level nodes: when the definition last changed, from the load or, for
 * a domain not loaded, from the backend. */
static struct timespec
view_version_mtime(View *view, const ViewVersion *ver)
{
    return ver->sd ? ver->sd->mtime : view->mount_time;
}

static struct timespec
view_domain_mtime(View *view, const char *dom)
{
    ViewDomain *vd = g_hash_table_lookup(view->domains, dom);
    struct timespec t;

    if (vd && vd->ver)
        return view_version_mtime(view, vd->ver);
    return backend_domain_mtime(view->backend, dom, &t) ? t : view->mount_time;
}

/* Checks that @node exists in @r's version of its domain. Lock held. */
static gboolean
view_exists(ViewReq *r, const ViewNode *node, GError **error)
{
    View *view = r->view;
    ViewVersion *vd;
    SnapNode *sn;

    if (node->kind == VIEW_ROOT)
        return TRUE;
    if (!node->dom && (node->kind == VIEW_CTL_DIR || node->kind == VIEW_CTL_FILE))
        return TRUE;
    /* A domain's directory and control files exist while it is listed: `ls -l` of the
     * top and the control writes do not load its snapshots. */
    if (view_domain_shallow(node))
        return view_domain_listed(view, node->dom) ? TRUE : view_set_noent(error, node->dom);
    if (!(vd = view_req_domain(r, node->dom, error)))
        return FALSE;
    if (node->kind == VIEW_TEMP_LINK) {
        g_autofree char *key = g_strdup_printf("%s/%s", node->dom, node->leaf);

        return g_hash_table_contains(view->templinks, key) ? TRUE : view_set_noent(error, node->leaf);
    }
    if (!vd->sd)
        return view_set_noent(error, node->dom);
    switch (node->kind) {
    case VIEW_DOM_FILE:
    case VIEW_SNAPS:
    case VIEW_CTL_DIR:
    case VIEW_CTL_FILE:
        return TRUE;
    case VIEW_DOM_CURRENT:
        return vd->sd->snaps->current ? TRUE : view_set_noent(error, "current");
    case VIEW_DISKS:
        return view_disks_def(r, node->snap, error) != NULL;
    case VIEW_DISK_DIR:
    case VIEW_DISK_FILE:
    case VIEW_DISK_BACKING: {
        ChainLayer *layer = view_layer_get(vd, node, error);
        g_autofree char *target = NULL;
        guint index;
        Chain *chain;

        if (!layer)
            return FALSE;
        if (node->kind == VIEW_DISK_BACKING) {
            view_parse_label(node->disk, &target, &index);
            chain = view_chain_get(vd, node->snap, target, error);
            return index + 1 < chain->layers->len ? TRUE : view_set_noent(error, "backing");
        }
        if (node->kind == VIEW_DISK_FILE && strcmp(node->leaf, "data") == 0 &&
            !view_data_ok(vd, node))
            return view_set_noent(error, "data");
        return TRUE;
    }
    case VIEW_DISK_XML:
        return view_chain_get(vd, node->snap, node->disk, error) != NULL;
    case VIEW_SNAP:
    case VIEW_SNAP_CHILDREN:
        return view_snap_get(vd, node->snap, error) != NULL;
    case VIEW_SNAP_FILE:
        if (!(sn = view_snap_get(vd, node->snap, error)))
            return FALSE;
        if (strcmp(node->leaf, "domain.xml") == 0 && !view_snap_has_dom(sn))
            return view_set_noent(error, "domain.xml");
        return TRUE;
    case VIEW_SNAP_PARENT:
        if (!(sn = view_snap_get(vd, node->snap, error)))
            return FALSE;
        return sn->parent ? TRUE : view_set_noent(error, "parent");
    case VIEW_SNAP_CHILD: {
        SnapNode *child;

        if (!(sn = view_snap_get(vd, node->snap, error)))
            return FALSE;
        child = snaptree_lookup(vd->sd->snaps, node->leaf);
        return child && child->parent == sn ? TRUE : view_set_noent(error, node->leaf);
    }
    default:
        g_assert_not_reached();
    }
}

/* The child node @name of @parent, not checked. NULL with an error when @parent
 * cannot have it. Lock held (templinks). */
static ViewNode *
view_child_of(View *view, const ViewNode *parent, const char *name, GError **error)
{
    g_autoptr(ViewNode) n = NULL;

    if (!view_name_ok(name)) {
        view_set_noent(error, name);
        return NULL;
    }
    switch (parent->kind) {
    case VIEW_ROOT:
        n = g_new0(ViewNode, 1);
        n->kind = strcmp(name, "ctl") == 0 ? VIEW_CTL_DIR : VIEW_DOM;
        n->dom = n->kind == VIEW_DOM ? g_strdup(name) : NULL;
        break;
    case VIEW_CTL_DIR:
        if (view_in_list(parent->dom ? view_ctl_dom : view_ctl_top, name))
            n = view_child_new(parent, VIEW_CTL_FILE, NULL, NULL, name);
        break;
    case VIEW_DOM:
        if (strcmp(name, "ctl") == 0) {
            n = view_child_new(parent, VIEW_CTL_DIR, NULL, NULL, NULL);
        } else {
            g_autofree char *key = g_strdup_printf("%s/%s", parent->dom, name);

            if (g_hash_table_contains(view->templinks, key))
                n = view_child_new(parent, VIEW_TEMP_LINK, NULL, NULL, name);
        }
        if (n)
            ;
        else if (view_in_list(view_dom_files, name))
            n = view_child_new(parent, VIEW_DOM_FILE, NULL, NULL, name);
        else if (strcmp(name, "current") == 0)
            n = view_child_new(parent, VIEW_DOM_CURRENT, NULL, NULL, NULL);
        else if (strcmp(name, "disks") == 0)
            n = view_child_new(parent, VIEW_DISKS, NULL, NULL, NULL);
        else if (strcmp(name, "snapshots") == 0)
            n = view_child_new(parent, VIEW_SNAPS, NULL, NULL, NULL);
        break;
    case VIEW_SNAPS:
        n = view_child_new(parent, VIEW_SNAP, name, NULL, NULL);
        break;
    case VIEW_SNAP:
        if (view_in_list(view_snap_files, name))
            n = view_child_new(parent, VIEW_SNAP_FILE, parent->snap, NULL, name);
        else if (strcmp(name, "parent") == 0)
            n = view_child_new(parent, VIEW_SNAP_PARENT, parent->snap, NULL, NULL);
        else if (strcmp(name, "children") == 0)
            n = view_child_new(parent, VIEW_SNAP_CHILDREN, parent->snap, NULL, NULL);
        else if (strcmp(name, "disks") == 0)
            n = view_child_new(parent, VIEW_DISKS, parent->snap, NULL, NULL);
        break;
    case VIEW_SNAP_CHILDREN:
        n = view_child_new(parent, VIEW_SNAP_CHILD, parent->snap, NULL, name);
        break;
    case VIEW_DISKS:
        if (g_str_has_suffix(name, ".xml") && strlen(name) > 4) {
            g_autofree char *target = g_strndup(name, strlen(name) - 4);

            if (!strchr(target, '['))
                n = view_child_new(parent, VIEW_DISK_XML, parent->snap, target, NULL);
        } else {
            n = view_child_new(parent, VIEW_DISK_DIR, parent->snap, name, NULL);
        }
        break;
    case VIEW_DISK_DIR:
        if (view_in_list(view_disk_files, name))
            n = view_child_new(parent, VIEW_DISK_FILE, parent->snap, parent->disk, name);
        else if (strcmp(name, "backing") == 0)
            n = view_child_new(parent, VIEW_DISK_BACKING, parent->snap, parent->disk, NULL);
        break;
    default:
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "not a directory");
        return NULL;
    }
    if (!n)
        view_set_noent(error, name);
    return g_steal_pointer(&n);
}

ViewNode *
view_lookup(View *view, const ViewNode *parent, const char *name, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    g_autoptr(ViewNode) n = NULL;

    if (!(n = view_child_of(view, parent, name, error)))
        return NULL;
    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };

        view_req_prepare(&r, n);
        if (view_exists(&r, n, error))
            return g_steal_pointer(&n);
        if (!view_req_retry(&r, attempt, error))
            return NULL;
    }
}

/* Content of generated files. Lock held. */
static GBytes *
view_content_locked(ViewReq *r, const ViewNode *node, GError **error)
{
    View *view = r->view;
    ViewVersion *vd = NULL;
    SnapNode *sn = NULL;
    char *s = NULL;
    char uuid[UTIL_UUID_STRLEN + 1];

    if (!view_exists(r, node, error))
        return NULL;
    if (node->kind == VIEW_CTL_FILE) {
        const char *r = g_hash_table_lookup(view->results, node->dom ? node->dom : "");

        s = g_strdup(view_ctl_is_result(node) && r ? r : "");
        return g_bytes_new_take(s, strlen(s));
    }
    vd = r->ver;   /* view_exists() took it: the one this request sees */
    if (node->snap && node->kind != VIEW_DISK_FILE && node->kind != VIEW_DISK_XML)
        sn = snaptree_lookup(vd->sd->snaps, node->snap);

    switch (node->kind) {
    case VIEW_DOM_FILE: {
        const DomainDef *def = vd->sd->def;

        if (strcmp(node->leaf, "domain.xml") == 0) {
            s = domain_format(def, 0);
        } else if (strcmp(node->leaf, "domain.secure.xml") == 0) {
            s = domain_format(def, DOMAIN_FORMAT_SECURE);
        } else if (strcmp(node->leaf, "uuid") == 0) {
            util_uuid_format(def->uuid, uuid);
            s = g_strdup_printf("%s\n", uuid);
        } else if (strcmp(node->leaf, "genid") == 0) {
            util_uuid_format(def->genid, uuid);
            s = def->has_genid ? g_strdup_printf("%s\n", uuid) : g_strdup("");
        } else if (strcmp(node->leaf, "job") == 0) {
            BackendJob *job = g_hash_table_lookup(view->jobs, node->dom);

            s = job ? backend_job_describe(view->backend, job) : g_strdup("");
        } else if (strcmp(node->leaf, "backup.xml") == 0) {
            BackendJob *job = g_hash_table_lookup(view->jobs, node->dom);

            s = job ? backend_job_xml(view->backend, job) : g_strdup("");
        } else if (strcmp(node->leaf, "state") == 0) {
            /* Asked at each open: a domain starts and stops without a change of its
             * definition. */
            s = g_strdup_printf("%s\n", backend_domain_state(view->backend, node->dom));
        } else if (strcmp(node->leaf, "tree") == 0) {
            /* Plain virsh ends every command's output with one more newline:
             * `virsh snapshot-list NAME --tree` is this file byte for byte. */
            g_autofree char *t = snaptree_render_tree(vd->sd->snaps, NULL, FALSE);

            s = g_strconcat(t, "\n", NULL);
        } else {
            s = snaptree_render_tsv(vd->sd->snaps);
        }
        break;
    }
    case VIEW_SNAP_FILE: {
        const SnapshotDef *def;

        if (!view_snap_full(r, sn, error))
            return NULL;
        def = sn->def;

        if (strcmp(node->leaf, "snapshot.xml") == 0)
            s = snapshot_format(def, 0);
        else if (strcmp(node->leaf, "snapshot.secure.xml") == 0)
            s = snapshot_format(def, SNAPSHOT_FORMAT_SECURE);
        else if (strcmp(node->leaf, "domain.xml") == 0)
            s = domain_format(def->dom, 0);
        else if (strcmp(node->leaf, "description") == 0)
            s = def->description ? g_strdup_printf("%s\n", def->description) : g_strdup("");
        else if (strcmp(node->leaf, "state") == 0)
            s = g_strdup_printf("%s\n%s%s", snapshot_state_to_string(def->state),
                                view_pending(vd->sd, node->snap) ? view_pending(vd->sd, node->snap) : "",
                                view_pending(vd->sd, node->snap) ? "\n" : "");
        else
            s = g_strdup_printf("%" G_GINT64_FORMAT "\n", def->creation_time);
        break;
    }
    case VIEW_DISK_FILE: {
        ChainLayer *layer = view_layer_get(vd, node, error);
        const StorageSource *src;

        if (!layer)
            return NULL;
        src = layer->src;
        if (strcmp(node->leaf, "source") == 0) {
            g_autofree char *d = storage_source_describe(src);
            s = g_strdup_printf("%s\n", d);
        } else if (strcmp(node->leaf, "type") == 0) {
            s = g_strdup_printf("%s\n", storage_type_to_string(src->type));
        } else if (strcmp(node->leaf, "format") == 0) {
            const char *fmt = src->format ? src->format
                              : layer->info && layer->info->format ? layer->info->format : "";
            s = *fmt ? g_strdup_printf("%s\n", fmt) : g_strdup("");
        } else if (strcmp(node->leaf, "info") == 0) {
            GString *out = g_string_new(NULL);
            QcowInfo *info = layer->info;
            g_autofree char *d = storage_source_describe(src);

            g_string_append_printf(out, "image: %s\n", d);
            if (info) {
                g_string_append_printf(out, "format: %s\n",
                                       src->format ? src->format : info->format);
                g_string_append_printf(out, "virtual-size: %" G_GUINT64_FORMAT "\n",
                                       info->virtual_size);
                g_string_append_printf(out, "file-size: %" G_GUINT64_FORMAT "\n",
                                       info->file_size);
                g_string_append_printf(out, "allocated: %" G_GUINT64_FORMAT "\n",
                                       info->allocated);
                if (info->cluster_size)
                    g_string_append_printf(out, "cluster-size: %u\n", info->cluster_size);
                if (info->version)
                    g_string_append_printf(out, "qcow2-version: %u\n", info->version);
                if (info->backing_name)
                    g_string_append_printf(out, "backing-file: %s\n", info->backing_name);
                if (info->backing_format)
                    g_string_append_printf(out, "backing-format: %s\n", info->backing_format);
                if (info->compression)
                    g_string_append_printf(out, "compression-type: %s\n", info->compression);
                if (info->data_file)
                    g_string_append_printf(out, "data-file: %s\ndata-file-raw: %s\n",
                                           info->data_file, info->data_file_raw ? "yes" : "no");
                g_string_append_printf(out, "internal-snapshots: %u\n", info->nsnapshots);
                g_string_append_printf(out, "encrypted: %s\n", info->encrypted ? "yes" : "no");
                if (info->encrypted && !layer->error)
                    g_string_append(out, "error: encrypted images cannot be read (no data file)\n");
            } else if (src->type == STORAGE_TYPE_NETWORK) {
                g_string_append(out, "network: not opened\n");
            }
            if (layer->error)
                g_string_append_printf(out, "error: %s\n", layer->error);
            if (view_pending(vd->sd, node->snap))
                g_string_append_printf(out, "snapshot: %s\n", view_pending(vd->sd, node->snap));
            s = g_string_free(out, FALSE);
        } else {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a generated file");
            return NULL;
        }
        break;
    }
    case VIEW_DISK_XML: {
        const DomainDef *def = view_disks_def(r, node->snap, error);
        DiskDef *disk = def ? domain_disk_by_name(def, node->disk) : NULL;
        Chain *chain = view_chain_get(vd, node->snap, node->disk, error);
        g_autoptr(DomainDef) copy = NULL;
        DiskDef *cdisk;

        if (!disk || !chain)
            return NULL;
        /* Show the chain as resolved (XML plus probing) under a copy of the disk. */
        copy = domain_copy(def);
        cdisk = domain_disk_by_name(copy, node->disk);
        domain_disk_set_source(copy, cdisk, chain_to_source(chain), FALSE);
        /* Live formatting keeps the probed (detected) chain members. */
        s = domain_disk_format(copy, cdisk, DOMAIN_FORMAT_LIVE);
        break;
    }
    default:
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a generated file");
        return NULL;
    }
    return g_bytes_new_take(s, strlen(s));
}

static guint64 view_content_hash(GBytes *content);

GBytes *
view_read_content(View *view, const ViewNode *node, guint64 *version, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };
        GBytes *content;

        view_req_prepare(&r, node);
        if ((content = view_content_locked(&r, node, error))) {
            if (version)
                *version = view_content_hash(content);
            return content;
        }
        if (!view_req_retry(&r, attempt, error))
            return NULL;
    }
}

static char *
view_readlink_locked(ViewReq *r, const ViewNode *node, GError **error)
{
    View *view = r->view;
    ViewVersion *vd;
    SnapNode *sn;

    if (!view_exists(r, node, error))
        return NULL;
    vd = r->ver;   /* view_exists() took it: current and parent are still there */
    switch (node->kind) {
    case VIEW_DOM_CURRENT:
        return g_strdup_printf("snapshots/%s", vd->sd->snaps->current->def->name);
    case VIEW_SNAP_PARENT:
        sn = snaptree_lookup(vd->sd->snaps, node->snap);
        return g_strdup_printf("../%s", sn->parent->def->name);
    case VIEW_SNAP_CHILD:
        return g_strdup_printf("../../%s", node->leaf);
    case VIEW_TEMP_LINK: {
        g_autofree char *key = g_strdup_printf("%s/%s", node->dom, node->leaf);

        return g_strdup(g_hash_table_lookup(view->templinks, key));
    }
    case VIEW_DISK_BACKING: {
        g_autofree char *target = NULL;
        guint index;

        view_parse_label(node->disk, &target, &index);
        return g_strdup_printf("../%s[%u]", target, index + 1);
    }
    default:
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a symbolic link");
        return NULL;
    }
}

char *
view_readlink(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };
        char *target;

        view_req_prepare(&r, node);
        if ((target = view_readlink_locked(&r, node, error)))
            return target;
        if (!view_req_retry(&r, attempt, error))
            return NULL;
    }
}

static void
view_dirent_add(GPtrArray *ents, const char *name, mode_t type)
{
    ViewDirent *e = g_new0(ViewDirent, 1);

    e->name = g_strdup(name);
    e->type = type;
    g_ptr_array_add(ents, e);
}

/* Chain labels of every disk with media in @def. */
static void
view_disk_entries(ViewVersion *vd, const char *snap, const DomainDef *def, GPtrArray *ents)
{
    for (guint i = 0; def && i < def->disks->len; i++) {
        DiskDef *d = def->disks->pdata[i];
        Chain *chain;
        g_autofree char *xml = NULL;

        if (!d->dst || !view_name_ok(d->dst))
            continue;
        if (!(chain = view_chain_get(vd, snap, d->dst, NULL)))
            continue;
        for (guint j = 0; j < chain->layers->len; j++)
            view_dirent_add(ents, ((ChainLayer *)chain->layers->pdata[j])->label, S_IFDIR);
        xml = g_strdup_printf("%s.xml", d->dst);
        view_dirent_add(ents, xml, S_IFREG);
    }
}

static GPtrArray *
view_readdir_locked(ViewReq *r, const ViewNode *node, GError **error)
{
    View *view = r->view;
    g_autoptr(GPtrArray) ents = g_ptr_array_new_with_free_func((GDestroyNotify)view_dirent_free);
    ViewVersion *vd = NULL;
    SnapNode *sn = NULL;

    if (!view_exists(r, node, error))
        return NULL;
    if (node->kind == VIEW_CTL_DIR) {
        const char *const *names = node->dom ? view_ctl_dom : view_ctl_top;

        for (guint i = 0; names[i]; i++)
            view_dirent_add(ents, names[i], S_IFREG);
        return g_steal_pointer(&ents);
    }
    if (node->kind != VIEW_ROOT) {
        if (!(vd = view_req_domain(r, node->dom, error)))
            return NULL;
        if (node->snap && node->kind != VIEW_DISKS)
            sn = snaptree_lookup(vd->sd->snaps, node->snap);
    }
    switch (node->kind) {
    case VIEW_ROOT:
        view_refresh_list(view);
        view_dirent_add(ents, "ctl", S_IFDIR);
        for (guint i = 0; i < view->domain_names->len; i++)
            if (strcmp(view->domain_names->pdata[i], "ctl") != 0)
                view_dirent_add(ents, view->domain_names->pdata[i], S_IFDIR);
        break;
    case VIEW_DOM:
        if (!vd->sd)
            break;   /* a domain that fails to load shows as an empty directory */
        view_dirent_add(ents, "ctl", S_IFDIR);
        {
            GHashTableIter it;
            gpointer k;
            g_autofree char *prefix = g_strdup_printf("%s/", node->dom);

            g_hash_table_iter_init(&it, view->templinks);
            while (g_hash_table_iter_next(&it, &k, NULL))
                if (g_str_has_prefix(k, prefix))
                    view_dirent_add(ents, (const char *)k + strlen(prefix), S_IFLNK);
        }
        for (guint i = 0; view_dom_files[i]; i++)
            view_dirent_add(ents, view_dom_files[i], S_IFREG);
        if (vd->sd->snaps->current)
            view_dirent_add(ents, "current", S_IFLNK);
        view_dirent_add(ents, "disks", S_IFDIR);
        view_dirent_add(ents, "snapshots", S_IFDIR);
        break;
    case VIEW_SNAPS: {
        g_autoptr(GPtrArray) all = snaptree_topological(vd->sd->snaps);

        for (guint i = 0; i < all->len; i++) {
            SnapNode *s = all->pdata[i];

            if (view_name_ok(s->def->name))
                view_dirent_add(ents, s->def->name, S_IFDIR);
        }
        break;
    }
    case VIEW_SNAP:
        for (guint i = 0; view_snap_files[i]; i++)
            if (strcmp(view_snap_files[i], "domain.xml") != 0 || view_snap_has_dom(sn))
                view_dirent_add(ents, view_snap_files[i], S_IFREG);
        if (sn->parent)
            view_dirent_add(ents, "parent", S_IFLNK);
        view_dirent_add(ents, "children", S_IFDIR);
        view_dirent_add(ents, "disks", S_IFDIR);
        break;
    case VIEW_SNAP_CHILDREN:
        for (guint i = 0; i < sn->children->len; i++) {
            SnapNode *c = sn->children->pdata[i];

            if (view_name_ok(c->def->name))
                view_dirent_add(ents, c->def->name, S_IFLNK);
        }
        break;
    case VIEW_DISKS:
        view_disk_entries(vd, node->snap, view_disks_def(r, node->snap, NULL), ents);
        break;
    case VIEW_DISK_DIR: {
        ChainLayer *layer = view_layer_get(vd, node, NULL);
        g_autoptr(ViewNode) b = view_node_copy(node);

        for (guint i = 0; view_disk_files[i]; i++)
            if (strcmp(view_disk_files[i], "data") != 0 || (layer && view_data_ok(vd, node)))
                view_dirent_add(ents, view_disk_files[i], S_IFREG);
        b->kind = VIEW_DISK_BACKING;
        if (view_exists(r, b, NULL))
            view_dirent_add(ents, "backing", S_IFLNK);
        break;
    }
    default:
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "not a directory");
        return NULL;
    }
    return g_steal_pointer(&ents);
}

GPtrArray *
view_readdir(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };
        GPtrArray *ents;

        view_req_prepare(&r, node);
        if ((ents = view_readdir_locked(&r, node, error)))
            return ents;
        if (!view_req_retry(&r, attempt, error))
            return NULL;
    }
}

static gboolean
view_kind_is_dir(ViewKind kind)
{
    switch (kind) {
    case VIEW_ROOT:
    case VIEW_DOM:
    case VIEW_SNAPS:
    case VIEW_SNAP:
    case VIEW_SNAP_CHILDREN:
    case VIEW_DISKS:
    case VIEW_CTL_DIR:
    case VIEW_DISK_DIR:
        return TRUE;
    default:
        return FALSE;
    }
}

gboolean
view_is_dir(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };

        view_req_prepare(&r, node);
        if (view_exists(&r, node, error))
            break;
        if (!view_req_retry(&r, attempt, error))
            return FALSE;
    }
    if (view_kind_is_dir(node->kind))
        return TRUE;
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "%s: not a directory",
                node->leaf ? node->leaf : "");
    return FALSE;
}

static guint
view_count_dirs(GPtrArray *ents)
{
    guint n = 0;

    for (guint i = 0; ents && i < ents->len; i++)
        if (((ViewDirent *)ents->pdata[i])->type == S_IFDIR)
            n++;
    return n;
}

/* A 64-bit FNV-1a of @content, never 0 (0 stands for "not known"). */
static guint64
view_content_hash(GBytes *content)
{
    gsize len = 0;
    const guint8 *p = g_bytes_get_data(content, &len);
    guint64 h = util_hash_fnv1a(UTIL_FNV1A_INIT, p, len);

    return h ? h : 1;
}

typedef struct {
    guint64 size;
    guint64 version;
} ViewContentMeta;

/* Size and version (hash) of generated file @node in @r's version of its domain. Fixed for one load of the domain, so formatted once per load;
 * control files, job, backup.xml and state change without a reload and are never kept.
 * @made (optional) receives the content when it had to be made now, else NULL. */
static gboolean
view_content_meta_locked(ViewReq *r, const ViewNode *node, guint64 *version, guint64 *size,
                         GBytes **made, GError **error)
{
    ViewVersion *vd = r->ver;
    g_autofree char *key = NULL;
    g_autoptr(GBytes) content = NULL;
    ViewContentMeta *meta;

    if (vd && node->kind != VIEW_CTL_FILE &&
        !(node->kind == VIEW_DOM_FILE &&
          (strcmp(node->leaf, "job") == 0 || strcmp(node->leaf, "backup.xml") == 0 ||
           strcmp(node->leaf, "state") == 0))) {
        key = g_strdup_printf("%d|%s|%s|%s", (int)node->kind, node->snap ? node->snap : "",
                              node->disk ? node->disk : "", node->leaf ? node->leaf : "");
        if ((meta = g_hash_table_lookup(vd->sizes, key))) {
            *version = meta->version;
            *size = meta->size;
            return TRUE;
        }
    }
    if (!(content = view_content_locked(r, node, error)))
        return FALSE;
    *version = view_content_hash(content);
    *size = g_bytes_get_size(content);
    if (key) {
        meta = g_new(ViewContentMeta, 1);
        meta->size = *size;
        meta->version = *version;
        g_hash_table_insert(vd->sizes, g_steal_pointer(&key), meta);
    }
    if (made)
        *made = g_steal_pointer(&content);
    return TRUE;
}

gboolean
view_content_version(View *view, const ViewNode *node, guint64 *version, guint64 *size,
                     GBytes **made, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };

        view_req_prepare(&r, node);
        if (view_exists(&r, node, error) &&
            view_content_meta_locked(&r, node, version, size, made, error))
            return TRUE;
        if (!view_req_retry(&r, attempt, error))
            return FALSE;
    }
}

/* view_stat() in @r's version. Lock held. A data file's times are its image's:
 * @image receives the path to stat after the lock is released (or NULL). */
static gboolean
view_stat_locked(ViewReq *r, const ViewNode *node, struct stat *st, char **image,
                 GError **error)
{
    View *view = r->view;
    guint64 size;
    ViewVersion *vd = NULL;
    struct timespec t = view->mount_time;

    if (!view_exists(r, node, error))
        return FALSE;
    memset(st, 0, sizeof(*st));
    st->st_uid = view->uid;
    st->st_gid = view->gid;
    st->st_nlink = 1;
    st->st_blksize = 65536;
    if (view_domain_shallow(node)) {
        t = view_domain_mtime(view, node->dom);
        if (node->kind == VIEW_DOM) {
            ViewDomain *loaded = g_hash_table_lookup(view->domains, node->dom);
            gboolean failed = loaded && loaded->ver && loaded->ver->load_error;

            /* ctl/, disks/ and snapshots/; none when it failed to load (an empty
             * directory). Not loaded (or reloaded) for this. */
            st->st_mode = S_IFDIR | 0555;
            st->st_nlink = failed ? 2 : 2 + 3;
            st->st_size = 4096;
            st->st_atim = st->st_mtim = st->st_ctim = t;
            return TRUE;
        }
    } else if (node->kind != VIEW_ROOT && node->dom) {
        vd = r->ver;   /* view_exists() took it */
        t = view_version_mtime(view, vd);
        if (node->snap && vd->sd) {
            SnapNode *sn = snaptree_lookup(vd->sd->snaps, node->snap);

            if (sn) {
                t.tv_sec = sn->def->creation_time;
                t.tv_nsec = 0;
            }
        }
    }
    switch (node->kind) {
    case VIEW_CTL_FILE:
        if (!view_ctl_is_result(node)) {
            /* Write-only; EROFS comes from the read-only mount itself. */
            st->st_mode = S_IFREG | 0200;
            st->st_size = 0;
            break;
        }
        goto default_content;
    default_content: {
        guint64 version;

        st->st_mode = S_IFREG | 0444;
        if (node->leaf && g_str_has_suffix(node->leaf, ".secure.xml"))
            st->st_mode = S_IFREG | 0400;
        if (!view_content_meta_locked(r, node, &version, &size, NULL, error))
            return FALSE;
        st->st_size = (off_t)size;
        break;
    }
    case VIEW_DOM_CURRENT:
    case VIEW_SNAP_PARENT:
    case VIEW_SNAP_CHILD:
    case VIEW_TEMP_LINK:
    case VIEW_DISK_BACKING: {
        g_autofree char *target = view_readlink_locked(r, node, error);

        if (!target)
            return FALSE;
        st->st_mode = S_IFLNK | 0777;
        st->st_size = strlen(target);
        break;
    }
    case VIEW_DISK_FILE:
        if (strcmp(node->leaf, "data") == 0) {
            ChainLayer *layer = view_layer_get(vd, node, error);

            st->st_mode = S_IFREG | 0400;
            st->st_size = layer->info->virtual_size;
            st->st_blocks = layer->info->allocated / 512;
            *image = g_strdup(layer->src->path);
            break;
        }
        goto default_content;
    default:
        if (view_kind_is_dir(node->kind)) {
            g_autoptr(GPtrArray) ents = view_readdir_locked(r, node, error);

            if (!ents)
                return FALSE;
            st->st_mode = S_IFDIR | 0555;
            st->st_nlink = 2 + view_count_dirs(ents);
            st->st_size = 4096;
            break;
        }
        goto default_content;
    }
    if (S_ISREG(st->st_mode) && st->st_blocks == 0)
        st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = st->st_mtim = st->st_ctim = t;
    return TRUE;
}

gboolean
view_stat(View *view, const ViewNode *node, struct stat *st, GError **error)
{
    g_autofree char *image = NULL;
    struct stat ist;

    g_mutex_lock(&view->lock);
    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };

        view_req_prepare(&r, node);
        if (view_stat_locked(&r, node, st, &image, error))
            break;
        if (!view_req_retry(&r, attempt, error)) {
            g_mutex_unlock(&view->lock);
            return FALSE;
        }
    }
    g_mutex_unlock(&view->lock);
    /* An image may sit where a stat waits (a dead NFS server): never under the lock. */
    if (image && util_path_stat(image, FALSE, &ist, NULL))
        st->st_atim = st->st_mtim = st->st_ctim = ist.st_mtim;
    return TRUE;
}

/* The chain and element index of data file @node in @r's version. Lock held. */
static Chain *
view_data_chain(ViewReq *r, const ViewNode *node, guint *index, GError **error)
{
    g_autofree char *target = NULL;

    if (node->kind != VIEW_DISK_FILE || strcmp(node->leaf, "data") != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a data file");
        return NULL;
    }
    if (!view_exists(r, node, error))
        return NULL;
    view_parse_label(node->disk, &target, index);
    return view_chain_get(r->ver, node->snap, target, error);
}

Image *
view_open_data(View *view, const ViewNode *node, guint64 *version, GError **error)
{
    g_auto(ViewReq) r = { view, NULL, FALSE };
    Chain *chain;
    guint index = 0;
    guint64 v = UTIL_FNV1A_INIT;

    g_mutex_lock(&view->lock);
    for (guint attempt = 0;; attempt++) {
        view_req_prepare(&r, node);
        if ((chain = view_data_chain(&r, node, &index, error)))
            break;
        if (!view_req_retry(&r, attempt, error)) {
            g_mutex_unlock(&view->lock);
            return NULL;
        }
    }
    g_mutex_unlock(&view->lock);
    /* Opening and stat'ing images can wait on the outside: without the lock. The
     * chain stays valid while @r holds its version. */
    for (guint i = index; i < chain->layers->len; i++) {
        ChainLayer *layer = chain->layers->pdata[i];
        struct stat st;

        if (layer->src->path && util_path_stat(layer->src->path, FALSE, &st, NULL)) {
            guint64 parts[] = { st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                                st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec };

            v = util_hash_fnv1a(v, parts, sizeof(parts));
        }
    }
    /* A domain's own disk whose image a running qemu writes: its bytes change under the
     * reader. The elements below it, and every snapshot's disks, read as usual. */
    if (!node->snap && index < chain->layers->len) {
        ChainLayer *layer = chain->layers->pdata[index];

        if ((layer->src->type == STORAGE_TYPE_FILE || layer->src->type == STORAGE_TYPE_BLOCK) &&
            layer->src->path && !backend_image_stable(view->backend, layer->src->path, error))
            return NULL;
    }
    *version = v;
    return image_open(chain, index, error);
}

void
view_set_result(View *view, const char *dom, gboolean ok, const char *text)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    g_hash_table_insert(view->results, g_strdup(dom ? dom : ""),
                        g_strdup_printf("%s%s\n", ok ? "" : "error: ", text));
}

gboolean
view_templink_add(View *view, const char *dom, const char *name, const char *target,
                  GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    g_autofree char *key = g_strdup_printf("%s/%s", dom, name);

    if (g_hash_table_size(view->templinks) >= 1024) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "too many temporary links");
        return FALSE;
    }
    if (g_hash_table_contains(view->templinks, key)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "'%s' exists", name);
        return FALSE;
    }
    g_hash_table_insert(view->templinks, g_steal_pointer(&key), g_strdup(target));
    return TRUE;
}

char *
view_templink_take(View *view, const char *dom, const char *name)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    g_autofree char *key = g_strdup_printf("%s/%s", dom, name);
    g_autofree char *stolen_key = NULL;
    char *target = NULL;

    if (!g_hash_table_steal_extended(view->templinks, key, (gpointer *)&stolen_key,
                                     (gpointer *)&target))
        return NULL;
    return target;
}

Backend *
view_backend(View *view)
{
    return view->backend;
}

void
view_invalidate(View *view, const char *dom)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    view->list_checked_us = 0;
    view->list_stamp = 0;
    view->list_dirty = TRUE;
    if (dom)
        g_hash_table_remove(view->domains, dom);
    else
        g_hash_table_remove_all(view->domains);
}

/* A start of a backup of the same domain is under way: as if it ran (libvirt's text). */
static gboolean
view_backup_busy(GError **error)
{
    g_set_error_literal(error, CORE_ERROR, CORE_ERROR_BUSY,
                        "another backup job is already running");
    return FALSE;
}

gboolean
view_backup_start(View *view, const char *dom, const char *xml, gsize len, char **result,
                  GError **error)
{
    BackendJob *job;
    BackendJob *previous;

    /* Starting checks the chains and opens the images, which can wait on the
     * outside: the domain is marked as starting under the lock and the job started
     * without it, so two writers still cannot both start one. */
    g_mutex_lock(&view->lock);
    if (g_hash_table_contains(view->starting, dom)) {
        g_mutex_unlock(&view->lock);
        return view_backup_busy(error);
    }
    g_hash_table_add(view->starting, g_strdup(dom));
    /* Only a start replaces a domain's job, and this one is the only start of @dom. */
    previous = g_hash_table_lookup(view->jobs, dom);
    g_mutex_unlock(&view->lock);
    job = backend_job_start(view->backend, dom, xml, len, previous, error);
    g_mutex_lock(&view->lock);
    g_hash_table_remove(view->starting, dom);
    if (job)
        g_hash_table_insert(view->jobs, g_strdup(dom), job);   /* frees the finished one */
    g_mutex_unlock(&view->lock);
    if (!job)
        return FALSE;
    *result = g_strdup_printf("Backup started; progress in %s/job", dom);
    return TRUE;
}

gboolean
view_backup_cancel(View *view, const char *dom, char **result, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    BackendJob *job = g_hash_table_lookup(view->jobs, dom);

    if (!job || !backend_job_running(view->backend, job)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "no backup job is running for domain '%s'", dom);
        return FALSE;
    }
    backend_job_cancel(view->backend, job);
    *result = g_strdup_printf("Backup of domain '%s' cancelled", dom);
    return TRUE;
}

GPtrArray *
view_poll(View *view)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    GPtrArray *changed = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer k, v;

    {
        GHashTableIter r;
        gpointer name;

        g_hash_table_iter_init(&r, view->reloaded);
        while (g_hash_table_iter_next(&r, &name, NULL))
            g_ptr_array_add(changed, g_strdup(name));
        g_hash_table_remove_all(view->reloaded);
    }
    /* No event says that a parent directory moved: a watched directory that is not
     * the one at its path any more makes everything dirty. */
    if (view->watching && backend_watch_check(view->backend))
        view_dirty_all(view);
    view_sync_watch(view);
    /* The list's own re-check time is left alone: only a change resets it. */
    if (view->list_stamp && (!view_list_watched(view) || view->list_dirty)) {
        if (backend_list_stamp(view->backend) != view->list_stamp) {
            view->list_checked_us = 0;    /* the next access lists again */
            view->list_stamp = 0;
            view->list_dirty = TRUE;
            g_ptr_array_add(changed, g_strdup(""));
        } else {
            view->list_dirty = FALSE;
        }
    }
    g_hash_table_iter_init(&it, view->domains);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        ViewDomain *vd = v;
        gint64 start = g_get_monotonic_time();
        guint64 stamp;

        if (!view_domain_due(vd, start))
            continue;
        stamp = view_stamp_domain(view, vd->name, &vd->watched, &vd->recheck_us);
        vd->dirty = FALSE;
        vd->checked_us = start;
        if (stamp != vd->stamp) {
            g_ptr_array_add(changed, g_strdup(vd->name));
            g_hash_table_iter_remove(&it);
        }
    }
    return changed;
}
