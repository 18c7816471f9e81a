/* cache.c: the tree's domains as loaded: listing, stamps and the backend's watch, versions a
 * request keeps to its end, snapshots read in full on demand, chains probed outside the lock. */
#include "cache.h"

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

/* Snapshots kept in full per domain: the others are light (no <domain>), so memory
 * does not grow with the number of snapshot.xml files read. One operation uses
 * one or two at a time. */
#define VIEW_FULL_MAX 64

typedef struct {
    SnapNode *node;
    char *token;   /* the light_token it had: the backend's way back to light */
} ViewFull;

static void
view_full_free(ViewFull *f)
{
    g_free(f->token);
    g_free(f);
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
const char *
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
    g_mutex_init(&view->guest_lock);
    view->guest_disks = g_hash_table_new(g_str_hash, g_str_equal);
    g_queue_init(&view->guest_lru);
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
    view_guest_clear(view);
    g_hash_table_unref(view->guest_disks);
    g_mutex_clear(&view->guest_lock);
    g_mutex_clear(&view->lock);
    g_free(view);
}

gboolean
view_set_noent(GError **error, const char *what)
{
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no such entry '%s'", what);
    return FALSE;
}

/* A name that can appear as a file name in the mount. */
gboolean
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

/* Logs a failure to list or load: a warning, but for a backend that cannot be reached now,
 * which is a state of the host (a daemon restarting), not a fault of the mount. */
static void
view_log_failure(const GError *error, const char *what)
{
    if (g_error_matches(error, CORE_ERROR, CORE_ERROR_UNREACHABLE))
        g_message("%s: %s", what, error->message);
    else
        g_warning("%s: %s", what, error->message);
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

/* Whether domain @vd's stamp has to be taken again (after view_sync_watch()). An event
 * about a domain that is polled (a daemon's lifecycle or block-job event) brings its
 * check forward. */
static gboolean
view_domain_due(const ViewDomain *vd, gint64 now)
{
    return vd->dirty || (!vd->watched && now - vd->checked_us >= vd->recheck_us);
}

/* Refreshes the domain list when the backend says the list changed. Lock held. */
void
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
        view_log_failure(error, "cannot list domains");
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

gboolean
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
        g_autofree char *what = g_strdup_printf("cannot load domain '%s'", name);

        view_log_failure(local, what);
        ver->load_error = g_strdup(local->message);
    } else {
        for (guint i = 0; ver->sd->warnings && i < ver->sd->warnings->len; i++)
            g_message("domain '%s': %s", name, (const char *)ver->sd->warnings->pdata[i]);
    }
    return ver;
}

void
view_req_clear(ViewReq *r)
{
    g_clear_pointer(&r->ver, view_version_unref);
    r->stale = FALSE;
}

/* The version of domain @dom for request @r. Lock held. */
ViewVersion *
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

/* After a failed request: TRUE when it failed only because a snapshot changed
 * after its load and another try is left (@error is cleared, @r reset); on the last
 * try the error becomes ENOENT: the snapshot the load saw is gone. Lock held. */
gboolean
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

SnapNode *
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
gboolean
view_snap_has_dom(const SnapNode *sn)
{
    return sn->def->dom || (sn->def->light_token && sn->def->light_dom);
}

/* @sn of @r's version with its domains read (the domain is loaded light): a parse of
 * its file the first time. Replaces sn->def: take definition pointers after this.
 * Lock held. When the file changed since the load, the domain is reloaded at the
 * next access and the request marked for a retry. */
gboolean
view_snap_full(ViewReq *r, SnapNode *sn, GError **error)
{
    ViewVersion *ver = r->ver;
    g_autoptr(GError) local = NULL;
    g_autofree char *token = g_strdup(sn->def->light_token);
    ViewDomain *vd;

    if (!token)
        return TRUE;
    if (backend_snapshot_full(ver->backend, ver->name, ver->sd, sn, &local)) {
        ViewFull *f = g_new0(ViewFull, 1);

        f->node = sn;
        f->token = g_steal_pointer(&token);
        g_queue_push_tail(&ver->full, f);
        while (g_queue_get_length(&ver->full) > VIEW_FULL_MAX) {
            ViewFull *old = g_queue_pop_head(&ver->full);

            backend_snapshot_light(ver->backend, old->node, old->token);
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

/* The domain definition whose disks a VIEW_DISKS node under @snap shows: a running
 * domain's own disks follow its live definition, where virsh domblklist reads them. */
const DomainDef *
view_disks_def(ViewReq *r, const char *snap, GError **error)
{
    SnapNode *sn;

    if (!snap)
        return r->ver->sd->live ? r->ver->sd->live : r->ver->sd->def;
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
Chain *
view_chain_get(ViewVersion *ver, const char *snap, const char *target, GError **error)
{
    g_autofree char *key = view_chain_key(snap, target);
    Chain *chain = g_hash_table_lookup(ver->chains, key);

    if (!chain)
        view_set_noent(error, target);
    return chain;
}

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
void
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
        char *target = view_label_target(node->disk);

        if (!target)
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

/* The disk target of chain label @label: "vda" of "vda" and of "vda[3]" (libvirt's
 * syntax: a number from 1 in brackets, nothing after them); NULL when it is not one. */
char *
view_label_target(const char *label)
{
    const char *br = strchr(label, '[');
    guint64 n = 0;
    char *end = NULL;

    if (!br)
        return g_strdup(label);
    if (br == label || !g_ascii_isdigit(br[1]))
        return NULL;
    n = g_ascii_strtoull(br + 1, &end, 10);
    if (!end || strcmp(end, "]") != 0 || n == 0 || n > G_MAXUINT)
        return NULL;
    return g_strndup(label, br - label);
}

/* The chain that @node's element belongs to, and the element's position in it (0: the
 * top). Found by its label, which is a depth or libvirt's index (chain.h). Lock held;
 * ENOENT when there is no such element. */
Chain *
view_layer_find(ViewVersion *ver, const ViewNode *node, guint *pos, GError **error)
{
    g_autofree char *target = view_label_target(node->disk);
    Chain *chain;

    if (!target) {
        view_set_noent(error, node->disk);
        return NULL;
    }
    if (!(chain = view_chain_get(ver, node->snap, target, error)))
        return NULL;
    for (guint i = 0; i < chain->layers->len; i++) {
        if (strcmp(((ChainLayer *)chain->layers->pdata[i])->label, node->disk) == 0) {
            *pos = i;
            return chain;
        }
    }
    view_set_noent(error, node->disk);
    return NULL;
}

ChainLayer *
view_layer_get(ViewVersion *ver, const ViewNode *node, GError **error)
{
    guint pos;
    Chain *chain = view_layer_find(ver, node, &pos, error);

    return chain ? chain->layers->pdata[pos] : NULL;
}

/* A data file exists when every element from @layer's position down can be read:
 * local, not encrypted, no error (a broken element below breaks the guest view). */
gboolean
view_data_ok(ViewVersion *ver, const ViewNode *node)
{
    guint pos;
    Chain *chain = view_layer_find(ver, node, &pos, NULL);

    if (!chain)
        return FALSE;
    for (guint i = pos; i < chain->layers->len; i++) {
        ChainLayer *layer = chain->layers->pdata[i];

        if (layer->error || !layer->info || layer->info->encrypted ||
            layer->src->type == STORAGE_TYPE_NETWORK)
            return FALSE;
    }
    return TRUE;
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

typedef struct {
    char *name;
    guint64 stamp;      /* when the poll began */
    guint64 now;        /* taken without the lock */
    gint64 checked_us;
    gint64 recheck_us;
} ViewPollDomain;

static void
view_poll_domain_free(ViewPollDomain *p)
{
    g_free(p->name);
    g_free(p);
}

/* The stamps are taken without the lock: they may wait on the backend (a directory of
 * 10,000 snapshot files, a daemon that answers slowly), and requests must not wait for
 * them. A domain reloaded by a request meanwhile has a new stamp, and keeps it. */
GPtrArray *
view_poll(View *view)
{
    GPtrArray *changed = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func(
        (GDestroyNotify)view_poll_domain_free);
    guint64 list_stamp = 0, list_now = 0;
    GHashTableIter it;
    gpointer k, v;

    g_mutex_lock(&view->lock);
    g_hash_table_iter_init(&it, view->reloaded);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(changed, g_strdup(k));
    g_hash_table_remove_all(view->reloaded);
    /* No event says that a parent directory moved: a watched directory that is not
     * the one at its path any more makes everything dirty. */
    if (view->watching && backend_watch_check(view->backend))
        view_dirty_all(view);
    view_sync_watch(view);
    /* The list's own re-check time is left alone: only a change resets it. */
    if (view->list_stamp && (!view_list_watched(view) || view->list_dirty)) {
        list_stamp = view->list_stamp;
        view->list_dirty = FALSE;   /* an event from here on makes it due again */
    }
    g_hash_table_iter_init(&it, view->domains);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        ViewDomain *vd = v;
        gint64 now = g_get_monotonic_time();
        ViewPollDomain *p;

        if (!view_domain_due(vd, now))
            continue;
        p = g_new0(ViewPollDomain, 1);
        p->name = g_strdup(vd->name);
        p->stamp = vd->stamp;
        p->checked_us = now;
        vd->watched = view->watching && backend_watch_domain(view->backend, vd->name);
        vd->dirty = FALSE;   /* an event from here on makes it due again */
        g_ptr_array_add(due, p);
    }
    g_mutex_unlock(&view->lock);

    if (list_stamp)
        list_now = backend_list_stamp(view->backend);
    for (guint i = 0; i < due->len; i++) {
        ViewPollDomain *p = due->pdata[i];
        gint64 start = g_get_monotonic_time();

        p->now = backend_domain_stamp(view->backend, p->name);
        p->recheck_us = CLAMP((g_get_monotonic_time() - start) * 20, VIEW_RECHECK_US,
                              VIEW_RECHECK_MAX_US);
    }

    g_mutex_lock(&view->lock);
    if (list_stamp && list_stamp == view->list_stamp) {
        if (list_now != list_stamp) {
            view->list_checked_us = 0;    /* the next access lists again */
            view->list_stamp = 0;
            view->list_dirty = TRUE;
            g_ptr_array_add(changed, g_strdup(""));
        }
    }
    for (guint i = 0; i < due->len; i++) {
        ViewPollDomain *p = due->pdata[i];
        ViewDomain *vd = g_hash_table_lookup(view->domains, p->name);

        if (!vd || vd->stamp != p->stamp)   /* gone or reloaded meanwhile */
            continue;
        vd->recheck_us = p->recheck_us;
        vd->checked_us = p->checked_us;
        if (p->now != p->stamp) {
            g_ptr_array_add(changed, g_strdup(p->name));
            g_hash_table_remove(view->domains, p->name);
        }
    }
    g_mutex_unlock(&view->lock);
    return changed;
}
