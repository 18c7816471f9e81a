/* daemon.c: the libvirt daemon backend: BackendClass over the libvirt API. Domains and snapshots
 * are read as the daemon gives them (virDomainGetXMLDesc, virDomainSnapshotGetXMLDesc)
 * and parsed by core/model; each operation is the API call that virsh makes for it, so
 * the daemon validates, applies and records it, and its message is the error's. */
#include "daemon.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>

#include "backup_job.h"
#include "error.h"
#include "guard.h"
#include "live.h"
#include "manage.h"
#include "snapshot.h"
#include "util.h"

/* How long a silent daemon is waited for: keepalive probes every 2 s, 3 unanswered close the
 * connection, so no request waits longer than about 8 s on a daemon that hangs. A daemon that
 * went away is tried again at most once a second. */
#define LV_KEEPALIVE_S 2
#define LV_KEEPALIVE_COUNT 3
#define LV_RETRY_US G_USEC_PER_SEC

typedef struct {
    Backend parent;
    char *uri;
    unsigned int secure;   /* VIR_DOMAIN_XML_SECURE, 0 on a read-only connection (which
                            * libvirt does not give secrets) */
    GMutex lock;           /* guards what follows */
    virConnectPtr conn;    /* NULL: not connected */
    gboolean closed;       /* the daemon closed the connection: reconnect at the next use */
    gint64 retry_us;       /* no connection attempt before this time */
    struct LvAttempt *attempt;   /* the connection attempt under way, or NULL */
    GHashTable *changed;   /* domain names events named since the last drain; "" the list */
    GHashTable *stamps;    /* domain name ("" the list) -> its last stamp (guint64 *): what
                            * is loaded stays while the daemon does not answer */
    gboolean lost;         /* events may have been missed (a reconnection) */
    GThread *loop;         /* runs libvirt's event loop */
    gint stop;
    int timer;
    GHashTable *backups;   /* domain name -> the BackupJob snapfs runs on its images
                            * (borrowed from its LvJob), under lock */
} LibvirtBackend;

static LibvirtBackend *
lv_of(Backend *b)
{
    return (LibvirtBackend *)b;
}

/* The last libvirt error of this thread as a GError: libvirt's message, a code that maps
 * to the errno a user expects (no such snapshot: ENOENT; exists: EEXIST; refused now:
 * EBUSY; invalid: EINVAL; the daemon gone: EIO). */
static gboolean
lv_error(GError **error, const char *what)
{
    virErrorPtr err = virGetLastError();
    const char *msg = err && err->message ? err->message : what;
    CoreError code = CORE_ERROR_INVALID;

    if (err && err->domain == VIR_FROM_RPC)
        code = CORE_ERROR_UNREACHABLE;
    else switch (err ? err->code : VIR_ERR_INTERNAL_ERROR) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_DOMAIN_SNAPSHOT:
    case VIR_ERR_NO_DOMAIN_CHECKPOINT:
        code = CORE_ERROR_NOT_FOUND;
        break;
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_OPERATION_TIMEOUT:
    case VIR_ERR_AGENT_UNRESPONSIVE:
        code = CORE_ERROR_BUSY;
        break;
    case VIR_ERR_OPERATION_UNSUPPORTED:
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_CONFIG_UNSUPPORTED:
        code = CORE_ERROR_UNSUPPORTED;
        break;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
        code = CORE_ERROR_PARSE;
        break;
    case VIR_ERR_SYSTEM_ERROR:
    case VIR_ERR_RPC:
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_INVALID_CONN:
        code = CORE_ERROR_UNREACHABLE;
        break;
    default:
        break;
    }
    if (msg && strstr(msg, "already exists"))
        code = CORE_ERROR_EXISTS;
    g_set_error_literal(error, CORE_ERROR, code, msg);
    return FALSE;
}

static void lv_connected(LibvirtBackend *lv, virConnectPtr conn);
static void lv_on_close(virConnectPtr conn, int reason, void *opaque);

/* One connection attempt on a thread of its own: virConnectOpenAuth() has no time limit,
 * and a daemon that accepts connections but never answers (stopped, hung) would hold the
 * request that connects for ever. Requests wait for it until its deadline at most; whoever
 * lets go of it last frees it (and closes a connection nobody took). */
typedef struct LvAttempt {
    gint refs;
    GMutex lock;
    GCond cond;
    char *uri;
    unsigned int flags;
    gboolean done;
    virConnectPtr conn;    /* the connection made, until taken */
    char *error;           /* libvirt's words when it failed */
    gint64 deadline_us;    /* requests wait until then, not longer */
} LvAttempt;

static void
lv_attempt_unref(LvAttempt *a)
{
    if (!a || !g_atomic_int_dec_and_test(&a->refs))
        return;
    if (a->conn)
        virConnectClose(a->conn);
    g_mutex_clear(&a->lock);
    g_cond_clear(&a->cond);
    g_free(a->uri);
    g_free(a->error);
    g_free(a);
}

static gpointer
lv_attempt_main(gpointer data)
{
    LvAttempt *a = data;
    virConnectPtr conn = virConnectOpenAuth(a->uri, virConnectAuthPtrDefault, a->flags);
    g_autoptr(GError) local = NULL;

    /* From here on a silent daemon closes the connection (keepalive; not every driver
     * keeps connections alive: test:///, the in-process ones). */
    if (conn)
        virConnectSetKeepAlive(conn, LV_KEEPALIVE_S, LV_KEEPALIVE_COUNT);
    else
        lv_error(&local, "cannot connect");
    g_mutex_lock(&a->lock);
    a->conn = conn;
    a->error = local ? g_strdup(local->message) : NULL;
    a->done = TRUE;
    g_cond_broadcast(&a->cond);
    g_mutex_unlock(&a->lock);
    lv_attempt_unref(a);
    return NULL;
}

static LvAttempt *
lv_attempt_start(LibvirtBackend *lv, gint64 now)
{
    LvAttempt *a = g_new0(LvAttempt, 1);

    a->refs = 2;   /* the backend's and the thread's */
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    a->uri = g_strdup(lv->uri);
    a->flags = lv->parent.read_only ? VIR_CONNECT_RO : 0;
    a->deadline_us = now + LV_KEEPALIVE_S * LV_KEEPALIVE_COUNT * G_USEC_PER_SEC;
    g_thread_unref(g_thread_new("libvirt-connect", lv_attempt_main, a));
    return a;
}

/* Waits for attempt @a until its deadline. TRUE when it ended; then @conn receives the
 * connection (or NULL) and @error libvirt's words. */
static gboolean
lv_attempt_wait(LvAttempt *a, virConnectPtr *conn, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&a->lock);

    while (!a->done && g_cond_wait_until(&a->cond, &a->lock, a->deadline_us))
        ;
    if (!a->done)
        return FALSE;
    *conn = g_steal_pointer(&a->conn);
    if (!*conn)
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNREACHABLE,
                    "the libvirt daemon at %s does not answer: %s", a->uri, a->error);
    return TRUE;
}

/* A reference to the connection (virConnectClose() it), connecting again when the daemon
 * went away; NULL with CORE_ERROR_UNREACHABLE and libvirt's words while it cannot be
 * reached. An attempt starts at most once a second and is waited for within the keepalive
 * bound; one that takes longer goes on alone, and a later request takes its connection. */
static virConnectPtr
lv_conn(Backend *b, GError **error)
{
    LibvirtBackend *lv = lv_of(b);
    virConnectPtr conn = NULL, old = NULL;
    gint64 now = g_get_monotonic_time();
    LvAttempt *a;
    gboolean ended;

    g_mutex_lock(&lv->lock);
    if (lv->conn && lv->closed) {
        old = lv->conn;
        lv->conn = NULL;
    }
    if (lv->conn) {
        conn = lv->conn;
        virConnectRef(conn);
        g_mutex_unlock(&lv->lock);
        return conn;
    }
    if (!lv->attempt && now >= lv->retry_us) {
        lv->attempt = lv_attempt_start(lv, now);
        lv->retry_us = now + LV_RETRY_US;
    }
    if ((a = lv->attempt))
        g_atomic_int_inc(&a->refs);
    g_mutex_unlock(&lv->lock);
    if (old) {
        virConnectUnregisterCloseCallback(old, lv_on_close);
        virConnectClose(old);
    }
    if (!a) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNREACHABLE,
                    "the libvirt daemon at %s does not answer (tried again every second)",
                    lv->uri);
        return NULL;
    }
    ended = lv_attempt_wait(a, &conn, error);
    g_mutex_lock(&lv->lock);
    if (ended && lv->attempt == a) {
        lv->attempt = NULL;
        lv_attempt_unref(a);   /* the backend's reference */
    }
    g_mutex_unlock(&lv->lock);
    lv_attempt_unref(a);
    if (!ended) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNREACHABLE,
                    "the libvirt daemon at %s does not answer (connecting for %d s)",
                    lv->uri, LV_KEEPALIVE_S * LV_KEEPALIVE_COUNT);
        return NULL;
    }
    if (!conn)
        return NULL;
    lv_connected(lv, conn);   /* keeps @conn, or closes it for one made meanwhile */
    g_mutex_lock(&lv->lock);
    if ((conn = lv->conn))
        virConnectRef(conn);
    g_mutex_unlock(&lv->lock);
    if (!conn)
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNREACHABLE,
                    "the libvirt daemon at %s closed the connection", lv->uri);
    return conn;
}

static gint
lv_name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static GPtrArray *
lv_list_domains(Backend *b, GError **error)
{
    virConnectPtr conn = lv_conn(b, error);
    virDomainPtr *doms = NULL;
    GPtrArray *names;
    int n;

    if (!conn)
        return NULL;
    n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0)
        lv_error(error, "cannot list domains");
    virConnectClose(conn);
    if (n < 0)
        return NULL;
    names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, g_strdup(virDomainGetName(doms[i])));
        virDomainFree(doms[i]);
    }
    free(doms);
    g_ptr_array_sort(names, lv_name_cmp);
    return names;
}

/* @stamp taken now of @key, remembered; or, when it could not be taken (@ok FALSE: the
 * daemon does not answer), the last one: what was loaded stays readable meanwhile. */
static guint64
lv_stamp_keep(LibvirtBackend *lv, const char *key, guint64 stamp, gboolean ok)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&lv->lock);
    guint64 *last = g_hash_table_lookup(lv->stamps, key);

    if (!ok)
        return last ? *last : 0;
    if (!last) {
        last = g_new(guint64, 1);
        g_hash_table_insert(lv->stamps, g_strdup(key), last);
    }
    *last = stamp;
    return stamp;
}

static gboolean
lv_unreachable(const GError *error)
{
    return error && g_error_matches(error, CORE_ERROR, CORE_ERROR_UNREACHABLE);
}

static guint64
lv_list_stamp(Backend *b)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) names = lv_list_domains(b, &error);
    guint64 h = UTIL_FNV1A_INIT;

    for (guint i = 0; names && i < names->len; i++)
        h = util_hash_fnv1a(h, names->pdata[i], strlen(names->pdata[i]) + 1);
    return lv_stamp_keep(lv_of(b), "", h, names != NULL);
}

/* Domain @name (virDomainFree() it), or NULL with libvirt's error. */
static virDomainPtr
lv_domain(Backend *b, const char *name, GError **error)
{
    virConnectPtr conn = lv_conn(b, error);
    virDomainPtr dom;

    if (!conn)
        return NULL;
    if (!(dom = virDomainLookupByName(conn, name)))
        lv_error(error, "no such domain");
    virConnectClose(conn);   /* the domain keeps its own reference */
    return dom;
}

/* The name of @dom's current snapshot, or NULL: one call, not one per snapshot. */
static char *
lv_current_name(virDomainPtr dom)
{
    virDomainSnapshotPtr snap;
    char *name;

    if (virDomainHasCurrentSnapshot(dom, 0) != 1 || !(snap = virDomainSnapshotCurrent(dom, 0)))
        return NULL;
    name = g_strdup(virDomainSnapshotGetName(snap));
    virDomainSnapshotFree(snap);
    return name;
}

/* @dom's running definition as the daemon formats it (virDomainGetXMLDesc without INACTIVE:
 * the chain as qemu runs it, with libvirt's indexes), free() it; NULL when it does not run,
 * or with libvirt's error in @error. */
static char *
lv_running_xml(virDomainPtr dom, unsigned int flags, GError **error)
{
    int active = virDomainIsActive(dom);
    char *xml = NULL;

    if (active < 0)
        lv_error(error, "cannot tell whether the domain runs");
    else if (active && !(xml = virDomainGetXMLDesc(dom, flags)))
        lv_error(error, "cannot read the running definition");
    return xml;
}

/* What a domain's load depends on: its inactive definition, its state, its running
 * definition (a live snapshot or block job changes the chain qemu runs), its snapshots'
 * names and which is current. A snapshot redefined by someone else under the same name
 * shows at the next change of any of these. */
static guint64
lv_domain_stamp(Backend *b, const char *name)
{
    g_autoptr(GError) error = NULL;
    virDomainPtr dom = lv_domain(b, name, &error);
    virDomainSnapshotPtr *snaps = NULL;
    g_autofree char *current = NULL;
    guint64 h = UTIL_FNV1A_INIT;
    char *xml, *live = NULL;
    int state = 0, reason = 0, n;

    if (!dom)   /* gone: 0; the daemon away: what was loaded stays */
        return lv_stamp_keep(lv_of(b), name, 0, !lv_unreachable(error));
    /* The running definition is one call more while the domain runs (stopped meanwhile,
     * it is the inactive one: the state changed too). */
    if (!(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | lv_of(b)->secure)) ||
        virDomainGetState(dom, &state, &reason, 0) < 0 ||
        (state != VIR_DOMAIN_SHUTOFF && !(live = virDomainGetXMLDesc(dom, 0))) ||
        (n = virDomainListAllSnapshots(dom, &snaps, 0)) < 0) {
        free(xml);
        free(live);
        virDomainFree(dom);
        return lv_stamp_keep(lv_of(b), name, 0, FALSE);
    }
    h = util_hash_fnv1a(h, xml, strlen(xml));
    free(xml);
    if (live)
        h = util_hash_fnv1a(h, live, strlen(live));
    free(live);
    h = util_hash_fnv1a(h, &state, sizeof(state));
    current = lv_current_name(dom);
    h = util_hash_fnv1a(h, current ? current : "", current ? strlen(current) + 1 : 0);
    for (int i = 0; i < n; i++) {
        const char *sname = virDomainSnapshotGetName(snaps[i]);

        h = util_hash_fnv1a(h, sname, strlen(sname) + 1);
        virDomainSnapshotFree(snaps[i]);
    }
    free(snaps);
    virDomainFree(dom);
    return lv_stamp_keep(lv_of(b), name, h ? h : 1, TRUE);
}

static gboolean
lv_domain_mtime(Backend *b, const char *name, struct timespec *mtime)
{
    return FALSE;   /* the API does not say when a definition changed */
}

static gboolean
lv_load_live(Backend *b, virDomainPtr dom, BackendDomain *bd, GError **error)
{
    g_autoptr(GError) local = NULL;
    char *xml = lv_running_xml(dom, lv_of(b)->secure, &local);

    if (local) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!xml)
        return TRUE;
    if (!(bd->live = domain_parse(xml, strlen(xml), DOMAIN_PARSE_LIVE, &local)))
        g_ptr_array_add(bd->warnings, g_strdup_printf("the running definition: %s; disks/ "
                                                      "shows the inactive one",
                                                      local->message));
    free(xml);
    return TRUE;
}

/* Snapshot @xml as the daemon gave it, parsed, or NULL with the reason. */
static SnapshotDef *
lv_snapshot_parse(const char *xml, GError **error)
{
    return snapshot_parse(xml, strlen(xml), SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS,
                          error);
}

/* @snap, light: its document is its token, which snapshot_full() parses again without asking
 * the daemon (a tenth of the parsed domains' memory, and the version that was loaded,
 * whatever the daemon holds meanwhile). NULL with the reason. */
static SnapshotDef *
lv_snapshot_load(LibvirtBackend *lv, virDomainSnapshotPtr snap, GError **error)
{
    char *xml = virDomainSnapshotGetXMLDesc(snap, lv->secure ? VIR_DOMAIN_SNAPSHOT_XML_SECURE
                                                             : 0);
    SnapshotDef *def;

    if (!xml)
        return lv_error(error, "cannot read the snapshot"), NULL;
    if ((def = lv_snapshot_parse(xml, error)))
        snapshot_make_light(def, xml);
    free(xml);
    return def;
}

/* Adds @dom's snapshots to @bd, light; the ones that cannot be read or parsed become
 * warnings. One call per snapshot, one after the other: calls of several threads on one
 * connection cost libvirt's event loop thread a wake-up each, more CPU than the round
 * trips they overlap on a local daemon. */
static gboolean
lv_load_snapshots(LibvirtBackend *lv, virDomainPtr dom, BackendDomain *bd, GError **error)
{
    g_autofree char *current_name = lv_current_name(dom);
    virDomainSnapshotPtr *snaps = NULL;
    int n;

    if ((n = virDomainListAllSnapshots(dom, &snaps, 0)) < 0)
        return lv_error(error, "cannot list snapshots");
    for (int i = 0; i < n; i++) {
        g_autoptr(GError) local = NULL;
        SnapshotDef *def = lv_snapshot_load(lv, snaps[i], &local);
        SnapNode *node;

        if (!def)
            g_ptr_array_add(bd->warnings, g_strdup_printf("snapshot '%s': %s",
                                                          virDomainSnapshotGetName(snaps[i]),
                                                          local->message));
        else if (!(node = snaptree_add(bd->snaps, def, &local)))
            g_ptr_array_add(bd->warnings, g_strdup(local->message));
        else if (g_strcmp0(current_name, node->def->name) == 0)
            bd->snaps->current = node;
        virDomainSnapshotFree(snaps[i]);
    }
    free(snaps);
    snaptree_update_relations(bd->snaps);
    return TRUE;
}

static BackendDomain *
lv_load_domain(Backend *b, const char *name, GError **error)
{
    g_autoptr(BackendDomain) bd = g_new0(BackendDomain, 1);
    virDomainPtr dom = lv_domain(b, name, error);
    char *xml;
    gboolean ok;

    if (!dom)
        return NULL;
    bd->snaps = snaptree_new();
    bd->warnings = g_ptr_array_new_with_free_func(g_free);
    clock_gettime(CLOCK_REALTIME, &bd->mtime);
    if (!(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | lv_of(b)->secure))) {
        lv_error(error, "cannot read the domain's definition");
        virDomainFree(dom);
        return NULL;
    }
    bd->def = domain_parse(xml, strlen(xml), DOMAIN_PARSE_INACTIVE, error);
    free(xml);
    /* disks/ of a running domain: the chain qemu runs, numbered as libvirt numbers it.
     * A running definition we cannot parse leaves disks/ on the inactive one, and says so. */
    ok = bd->def && lv_load_live(b, dom, bd, error) &&
         lv_load_snapshots(lv_of(b), dom, bd, error);
    virDomainFree(dom);
    return ok ? g_steal_pointer(&bd) : NULL;
}

/* Parses the document a light load kept (its token) again. */
static gboolean
lv_snapshot_full(Backend *b, const char *name, BackendDomain *bd, SnapNode *node,
                 GError **error)
{
    g_autoptr(SnapshotDef) full = NULL;
    SnapshotDef *def = node->def;

    if (!def->light_token)
        return TRUE;
    if (!(full = lv_snapshot_parse(def->light_token, error))) {
        g_prefix_error(error, "cannot parse snapshot '%s' of domain '%s' again: ", def->name,
                       name);
        return FALSE;
    }
    snapshot_keep_relations(full, def);
    snaptree_replace_def(bd->snaps, node, g_steal_pointer(&full));
    return TRUE;
}

static void
lv_snapshot_light(Backend *b, SnapNode *node, const char *token)
{
    if (!node->def->light_token)
        snapshot_make_light(node->def, token);
}

/* Domain events (lifecycle, metadata, block jobs, device removal) name what changed at
 * once; a snapshot made by someone else has no event, so every domain is also polled (its
 * stamp re-taken on access when older than the tree's re-check interval). */
static gboolean
lv_watch(Backend *b, GError **error)
{
    return TRUE;
}

static gboolean
lv_true(Backend *b)
{
    return TRUE;
}

static gboolean
lv_false(Backend *b)
{
    return FALSE;
}

static gboolean
lv_watch_domain(Backend *b, const char *name)
{
    return FALSE;
}

static void
lv_watch_forget(Backend *b, const char *name)
{
}

static gboolean
lv_watch_drain(Backend *b, GHashTable *changed)
{
    LibvirtBackend *lv = lv_of(b);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&lv->lock);
    GHashTableIter it;
    gpointer k;
    gboolean lost = lv->lost || lv->closed;

    g_hash_table_iter_init(&it, lv->changed);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        g_hash_table_add(changed, g_strdup(k));
        g_hash_table_iter_remove(&it);
    }
    lv->lost = FALSE;
    return lost;
}

static void
lv_changed(LibvirtBackend *lv, const char *name, gboolean list)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&lv->lock);

    if (name)
        g_hash_table_add(lv->changed, g_strdup(name));
    if (list)
        g_hash_table_add(lv->changed, g_strdup(""));
}

static int
lv_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    lv_changed(opaque, virDomainGetName(dom),
               event == VIR_DOMAIN_EVENT_DEFINED || event == VIR_DOMAIN_EVENT_UNDEFINED);
    return 0;
}

/* Each event has its own signature: the opaque pointer comes last. */
static void
lv_on_metadata(virConnectPtr conn, virDomainPtr dom, int type, const char *nsuri, void *opaque)
{
    lv_changed(opaque, virDomainGetName(dom), FALSE);
}

static void
lv_on_block_job(virConnectPtr conn, virDomainPtr dom, const char *dst, int type, int status,
                void *opaque)
{
    lv_changed(opaque, virDomainGetName(dom), FALSE);
}

static void
lv_on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque)
{
    lv_changed(opaque, virDomainGetName(dom), FALSE);
}

static void
lv_on_close(virConnectPtr conn, int reason, void *opaque)
{
    LibvirtBackend *lv = opaque;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&lv->lock);

    if (lv->conn == conn)
        lv->closed = TRUE;
}

/* A new connection: its events, the close that says the daemon went away.
 * What happened while there was none is unknown: everything may have changed. */
static void
lv_connected(LibvirtBackend *lv, virConnectPtr conn)
{
    virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                     VIR_DOMAIN_EVENT_CALLBACK(lv_on_lifecycle), lv, NULL);
    virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_METADATA_CHANGE,
                                     VIR_DOMAIN_EVENT_CALLBACK(lv_on_metadata), lv, NULL);
    virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2,
                                     VIR_DOMAIN_EVENT_CALLBACK(lv_on_block_job), lv, NULL);
    virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
                                     VIR_DOMAIN_EVENT_CALLBACK(lv_on_device_removed), lv, NULL);
    virConnectRegisterCloseCallback(conn, lv_on_close, lv, NULL);
    g_mutex_lock(&lv->lock);
    if (lv->conn) {   /* another request connected meanwhile: keep its connection */
        g_mutex_unlock(&lv->lock);
        virConnectUnregisterCloseCallback(conn, lv_on_close);
        virConnectClose(conn);
        return;
    }
    lv->conn = conn;
    lv->closed = FALSE;
    lv->lost = TRUE;
    g_mutex_unlock(&lv->lock);
}

/* virsh domstate's words. */
static const char *
lv_domain_state(Backend *b, const char *name, GError **error)
{
    virDomainPtr dom = lv_domain(b, name, error);
    int state = VIR_DOMAIN_NOSTATE, reason = 0, rc;

    if (!dom)
        return NULL;
    if ((rc = virDomainGetState(dom, &state, &reason, 0)) < 0)
        lv_error(error, "cannot read the domain's state");
    virDomainFree(dom);
    if (rc < 0)
        return NULL;
    switch (state) {
    case VIR_DOMAIN_RUNNING: return "running";
    case VIR_DOMAIN_BLOCKED: return "idle";
    case VIR_DOMAIN_PAUSED: return "paused";
    case VIR_DOMAIN_SHUTDOWN: return "in shutdown";
    case VIR_DOMAIN_SHUTOFF: return "shut off";
    case VIR_DOMAIN_CRASHED: return "crashed";
    case VIR_DOMAIN_PMSUSPENDED: return "pmsuspended";
    default: return "no state";
    }
}

static char *
lv_live_xml(Backend *b, const char *name, gboolean secure, GError **error)
{
    virDomainPtr dom = lv_domain(b, name, error);
    char *xml, *copy;

    if (!dom)
        return NULL;
    xml = lv_running_xml(dom, secure ? lv_of(b)->secure : 0, error);
    virDomainFree(dom);
    copy = g_strdup(xml);
    free(xml);
    return copy;
}

/* The images are read where snapfs runs: qemu's locks say whether one is written now. */
static gboolean
lv_image_stable(Backend *b, const char *path, GError **error)
{
    return live_image_check(path, LIVE_IMAGE_USED, error);
}

/* The daemon decides what may run and refuses with its own words, except while snapfs
 * itself backs up a shut-off domain: then nothing that changes its images goes ahead (the
 * files backend's rule). */
static gboolean
lv_check(Backend *b, const BackendOp *op, GError **error)
{
    LibvirtBackend *lv = lv_of(b);
    g_autoptr(GMutexLocker) locker = NULL;
    BackupJob *job;

    if (op->op != BACKEND_OP_CREATE && op->op != BACKEND_OP_CREATE_NO_METADATA &&
        op->op != BACKEND_OP_REVERT && op->op != BACKEND_OP_DELETE)
        return TRUE;
    locker = g_mutex_locker_new(&lv->lock);
    job = op->dom ? g_hash_table_lookup(lv->backups, op->dom) : NULL;
    if (job && backup_job_is_running(job)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                    "domain '%s' is busy: another backup job is already running", op->dom);
        return FALSE;
    }
    return TRUE;
}

static virDomainSnapshotPtr
lv_snapshot(virDomainPtr dom, const char *name, GError **error)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);

    if (!snap)
        lv_error(error, "no such snapshot");
    return snap;
}

/* @snap's document (with secrets) and its model, full. */
static SnapshotDef *
lv_snapshot_def(virDomainSnapshotPtr snap, char **xml, GError **error)
{
    SnapshotDef *def;
    char *doc = virDomainSnapshotGetXMLDesc(snap, VIR_DOMAIN_SNAPSHOT_XML_SECURE);

    if (!doc)
        return lv_error(error, "cannot read the snapshot"), NULL;
    def = snapshot_parse(doc, strlen(doc), SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS, error);
    *xml = g_strdup(doc);
    free(doc);
    return def;
}

/* One <domainsnapshot> per document of an import, parents first (as `snapfs` writes
 * them: concatenated documents). */
static gboolean
lv_import(virDomainPtr dom, const char *xml, gsize len, char **result, GError **error)
{
    g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func(g_free);
    const char *p = xml, *end = xml + len;

    while (p < end) {
        const char *close = g_strstr_len(p, end - p, "</domainsnapshot>");
        g_autofree char *doc = NULL;
        virDomainSnapshotPtr snap;

        if (!close)
            break;
        close += strlen("</domainsnapshot>");
        doc = g_strndup(p, close - p);
        p = close;
        if (!(snap = virDomainSnapshotCreateXML(dom, doc, VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE))) {
            lv_error(error, "cannot import");
            /* All or nothing: what this import added goes again, metadata only. */
            for (guint i = added->len; i-- > 0;) {
                virDomainSnapshotPtr s = virDomainSnapshotLookupByName(dom, added->pdata[i], 0);

                if (s) {
                    virDomainSnapshotDelete(s, VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY);
                    virDomainSnapshotFree(s);
                }
            }
            return FALSE;
        }
        g_ptr_array_add(added, g_strdup(virDomainSnapshotGetName(snap)));
        virDomainSnapshotFree(snap);
    }
    *result = g_strdup_printf("%u snapshots imported", added->len);
    return TRUE;
}

/* Deletes the metadata of @snap, no image touched. The test driver knows no METADATA_ONLY and
 * keeps no images: there a plain delete does the same. */
static gboolean
lv_delete_metadata(virDomainSnapshotPtr snap)
{
    virConnectPtr conn = virDomainSnapshotGetConnect(snap);

    if (virDomainSnapshotDelete(snap, VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY) == 0)
        return TRUE;
    return g_strcmp0(virConnectGetType(conn), "TEST") == 0 &&
           virDomainSnapshotDelete(snap, 0) == 0;
}

/* A name no snapshot of @dom has, for a snapshot that lives for one operation. */
static char *
lv_temporary_name(virDomainPtr dom)
{
    for (;;) {
        char *name = g_strdup_printf("snapfs-clear-%08x", g_random_int());
        virDomainSnapshotPtr taken = virDomainSnapshotLookupByName(dom, name, 0);

        if (!taken)
            return name;
        virDomainSnapshotFree(taken);
        g_free(name);
    }
}

/* libvirt has no call that clears the current snapshot, and redefining the current one
 * without CURRENT keeps it current. What leaves none: deleting the current snapshot when it
 * is a root (a snapshot's parent would become current). So a copy of the current snapshot
 * under a new name and without a parent is redefined as current, and its metadata deleted
 * again (no image is touched). When that delete fails, the old current snapshot is made
 * current again. */
static gboolean
lv_clear_current(virDomainPtr dom, char **result, GError **error)
{
    g_autoptr(SnapshotDef) def = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *copy = NULL;
    virDomainSnapshotPtr current, tmp;
    gboolean ok;

    if (virDomainHasCurrentSnapshot(dom, 0) == 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "domain '%s' has no current snapshot", virDomainGetName(dom));
        return FALSE;
    }
    if (!(current = virDomainSnapshotCurrent(dom, 0)))
        return lv_error(error, "cannot find the current snapshot");
    def = lv_snapshot_def(current, &xml, error);
    virDomainSnapshotFree(current);
    if (!def)
        return FALSE;
    g_free(def->name);
    def->name = lv_temporary_name(dom);
    g_clear_pointer(&def->parent, g_free);
    copy = snapshot_format(def, SNAPSHOT_FORMAT_SECURE);
    if (!(tmp = virDomainSnapshotCreateXML(dom, copy, VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE |
                                                          VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT)))
        return lv_error(error, "cannot clear the current snapshot");
    if (!(ok = lv_delete_metadata(tmp))) {
        virDomainSnapshotPtr again;

        lv_error(error, "cannot clear the current snapshot");
        if ((again = virDomainSnapshotCreateXML(dom, xml, VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE |
                                                              VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT)))
            virDomainSnapshotFree(again);
        if (!lv_delete_metadata(tmp))
            g_prefix_error(error, "snapshot '%s' (a copy of the current one without a parent) "
                           "is left: ", def->name);
    }
    virDomainSnapshotFree(tmp);
    if (ok && virDomainHasCurrentSnapshot(dom, 0) != 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "the libvirt daemon kept a current snapshot of domain '%s'",
                    virDomainGetName(dom));
        return FALSE;
    }
    if (ok)
        *result = g_strdup_printf("domain '%s' has no current snapshot now",
                                  virDomainGetName(dom));
    return ok;
}

static gboolean
lv_genid(virDomainPtr dom, const char *value, char **result, GError **error)
{
    g_autoptr(DomainDef) def = NULL;
    g_autofree char *out = NULL;
    guint8 genid[UTIL_UUID_LEN];
    char *xml;
    virDomainPtr defined;

    if (g_strcmp0(value, "new") == 0)
        util_uuid_generate(genid);
    else if (!value || !util_uuid_parse(value, genid))
        return core_error_invalid(error, "invalid genid '%s'", value ? value : "");
    if (!(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE)))
        return lv_error(error, "cannot read the domain's definition");
    def = domain_parse(xml, strlen(xml), DOMAIN_PARSE_INACTIVE, error);
    free(xml);
    if (!def)
        return FALSE;
    domain_set_genid(def, genid);
    out = domain_format(def, DOMAIN_FORMAT_SECURE);
    if (!(defined = virDomainDefineXML(virDomainGetConnect(dom), out)))
        return lv_error(error, "cannot define the domain");
    virDomainFree(defined);
    *result = virDomainIsActive(dom) == 1
                  ? g_strdup("Domain genid changed; it applies at the next start")
                  : g_strdup("Domain genid changed");
    return TRUE;
}

/* Whether a revert of @dom to @def is the one libvirt 9.0 refuses ("revert to external
 * snapshot not supported yet") and snapfs does itself: an external snapshot taken without
 * the guest's memory, of a domain that does not run now. */
static gboolean
lv_revert_is_ours(virDomainPtr dom, const SnapshotDef *def)
{
    return virDomainIsActive(dom) == 0 &&
           (snapshot_is_external(def) || def->state == SNAP_STATE_DISK_SNAPSHOT) &&
           (def->state == SNAP_STATE_SHUTOFF || def->state == SNAP_STATE_DISK_SNAPSHOT ||
            def->state == SNAP_STATE_SHUTDOWN || def->state == SNAP_STATE_CRASHED);
}

/* An external revert of a shut-off domain, the files backend's way through the API: new
 * overlays on the images the snapshot captured (manage_revert_external()), the domain
 * defined on them (virDomainDefineXML), then the snapshot redefined as current
 * (REDEFINE|CURRENT). A step that fails undoes the ones before it: the old definition is
 * defined again, the overlays are removed. */
static gboolean
lv_revert_external(virDomainPtr dom, const SnapshotDef *def, const char *snapxml,
                   GError **error)
{
    g_autoptr(GPtrArray) overlays = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(DomainDef) olddef = NULL;
    g_autoptr(DomainDef) newdom = NULL;
    g_autofree char *newxml = NULL;
    virConnectPtr conn = virDomainGetConnect(dom);
    virDomainPtr defined;
    virDomainSnapshotPtr again;
    char *oldxml;

    if (!(oldxml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE)))
        return lv_error(error, "cannot read the domain's definition");
    olddef = domain_parse(oldxml, strlen(oldxml), DOMAIN_PARSE_INACTIVE, error);
    if (!olddef || !(newdom = manage_revert_external(olddef, def, overlays, error))) {
        free(oldxml);
        return FALSE;
    }
    newxml = domain_format(newdom, DOMAIN_FORMAT_SECURE);
    if (!(defined = virDomainDefineXML(conn, newxml))) {
        lv_error(error, "cannot define the domain");
        goto fail;
    }
    virDomainFree(defined);
    if (!(again = virDomainSnapshotCreateXML(dom, snapxml, VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE |
                                                               VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT))) {
        lv_error(error, "cannot make the snapshot current");
        if (!(defined = virDomainDefineXML(conn, oldxml))) {
            g_autoptr(GError) local = NULL;

            lv_error(&local, "cannot define the domain again");
            g_prefix_error(error, "%s (the domain stays on the new overlays): ", local->message);
            free(oldxml);
            return FALSE;
        }
        virDomainFree(defined);
        goto fail;
    }
    virDomainSnapshotFree(again);
    free(oldxml);
    return TRUE;

fail:
    manage_rollback_images(overlays, NULL, def->name, error);
    free(oldxml);
    return FALSE;
}

static gboolean
lv_revert(virDomainPtr dom, const char *name, char **result, GError **error)
{
    g_autoptr(SnapshotDef) def = NULL;
    g_autofree char *xml = NULL;
    virDomainSnapshotPtr snap;
    gboolean ok;

    if (!(snap = lv_snapshot(dom, name, error)))
        return FALSE;
    if (!(def = lv_snapshot_def(snap, &xml, error))) {
        virDomainSnapshotFree(snap);
        return FALSE;
    }
    if (lv_revert_is_ours(dom, def))
        ok = lv_revert_external(dom, def, xml, error);
    else if (!(ok = virDomainRevertToSnapshot(snap, 0) == 0))
        lv_error(error, "cannot revert");
    virDomainSnapshotFree(snap);
    if (ok)
        *result = g_strdup_printf("Domain snapshot %s reverted", name);
    return ok;
}

/* Where `create NAME --memory` saves the guest's memory: DOMAIN.NAME.mem next to the
 * image of the domain's first disk with one (libvirt names none itself). */
static char *
lv_memory_file(virDomainPtr dom, const char *snap, GError **error)
{
    g_autoptr(DomainDef) def = NULL;
    char *xml = virDomainGetXMLDesc(dom, 0);

    if (!xml)
        return lv_error(error, "cannot read the domain's definition"), NULL;
    def = domain_parse(xml, strlen(xml), DOMAIN_PARSE_LIVE, error);
    free(xml);
    if (!def)
        return NULL;
    for (guint i = 0; i < def->disks->len; i++) {
        const DiskDef *d = def->disks->pdata[i];

        if (d->src && d->src->type == STORAGE_TYPE_FILE && d->src->path) {
            g_autofree char *dir = g_path_get_dirname(d->src->path);
            g_autofree char *file = g_strdup_printf("%s.%s.mem", def->name, snap);

            return g_build_filename(dir, file, NULL);
        }
    }
    return core_error_invalid(error, "domain '%s' has no disk image to save its memory beside",
                              def->name), NULL;
}

static gboolean
lv_apply_domain(Backend *b, virDomainPtr dom, const BackendOp *op, char **result,
                GError **error)
{
    g_autofree char *named = NULL;
    virDomainSnapshotPtr snap = NULL;
    unsigned int flags = 0;
    gboolean ok = TRUE;

    switch (op->op) {
    case BACKEND_OP_CREATE:
    case BACKEND_OP_CREATE_NO_METADATA:
        flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC;
        if (op->op == BACKEND_OP_CREATE_NO_METADATA)
            flags |= VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA;
        if (op->flags & BACKEND_CREATE_QUIESCE)
            flags |= VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE;
        if (op->xml) {
            named = g_strndup(op->xml, op->len);
        } else if (op->flags & BACKEND_CREATE_MEMORY) {
            g_autofree char *mem = lv_memory_file(dom, op->name, error);

            if (!mem)
                return FALSE;
            /* With the memory external, libvirt makes the disks external too. */
            flags &= ~VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY;
            named = g_markup_printf_escaped("<domainsnapshot><name>%s</name>"
                                            "<memory snapshot='external' file='%s'/>"
                                            "</domainsnapshot>", op->name, mem);
        } else {
            named = g_markup_printf_escaped("<domainsnapshot><name>%s</name></domainsnapshot>",
                                            op->name);
        }
        /* An XML document is taken as virsh snapshot-create takes it: its own choices. */
        if (op->xml)
            flags = op->op == BACKEND_OP_CREATE_NO_METADATA
                        ? VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA : 0;
        if (!(snap = virDomainSnapshotCreateXML(dom, named, flags)))
            return lv_error(error, "cannot create the snapshot");
        *result = g_strdup_printf("Domain snapshot %s created%s", virDomainSnapshotGetName(snap),
                                  op->op == BACKEND_OP_CREATE_NO_METADATA
                                      ? " (no metadata kept)" : "");
        break;
    case BACKEND_OP_REDEFINE:
    case BACKEND_OP_REDEFINE_CURRENT:
        named = g_strndup(op->xml, op->len);
        flags = VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE;
        if (op->op == BACKEND_OP_REDEFINE_CURRENT)
            flags |= VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT;
        if (!(snap = virDomainSnapshotCreateXML(dom, named, flags)))
            return lv_error(error, "cannot redefine the snapshot");
        *result = g_strdup_printf("Domain snapshot %s created", virDomainSnapshotGetName(snap));
        break;
    case BACKEND_OP_IMPORT:
        return lv_import(dom, op->xml, op->len, result, error);
    case BACKEND_OP_CURRENT: {
        char *xml;

        if (!op->name)
            return lv_clear_current(dom, result, error);
        if (!(snap = lv_snapshot(dom, op->name, error)))
            return FALSE;
        if (!(xml = virDomainSnapshotGetXMLDesc(snap, VIR_DOMAIN_SNAPSHOT_XML_SECURE))) {
            ok = lv_error(error, "cannot read the snapshot");
        } else {
            virDomainSnapshotPtr again = virDomainSnapshotCreateXML(
                dom, xml, VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT);

            free(xml);
            if (!again)
                ok = lv_error(error, "cannot set the current snapshot");
            else
                virDomainSnapshotFree(again);
        }
        if (ok)
            *result = g_strdup_printf("Snapshot %s set as current", op->name);
        break;
    }
    case BACKEND_OP_REVERT:
        return lv_revert(dom, op->name, result, error);
    case BACKEND_OP_DELETE:
        if (!(snap = lv_snapshot(dom, op->name, error)))
            return FALSE;
        if (op->flags & BACKEND_DELETE_CHILDREN)
            flags |= VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN;
        if (op->flags & BACKEND_DELETE_CHILDREN_ONLY)
            flags |= VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY;
        if (op->flags & BACKEND_DELETE_METADATA_ONLY)
            flags |= VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY;
        if (virDomainSnapshotDelete(snap, flags) < 0)
            ok = lv_error(error, "cannot delete the snapshot");
        else if (op->flags & BACKEND_DELETE_CHILDREN_ONLY)
            *result = g_strdup_printf("Domain snapshot %s children deleted", op->name);
        else
            *result = g_strdup_printf("Domain snapshot %s deleted", op->name);
        break;
    case BACKEND_OP_GENID:
        return lv_genid(dom, op->name, result, error);
    default:
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED, "not a domain operation");
        return FALSE;
    }
    if (snap)
        virDomainSnapshotFree(snap);
    return ok;
}

static gboolean
lv_apply(Backend *b, const BackendOp *op, char **result, GError **error)
{
    virDomainPtr dom;
    gboolean ok;

    if (op->op == BACKEND_OP_DEFINE) {
        g_autofree char *xml = g_strndup(op->xml, op->len);
        virConnectPtr conn = lv_conn(b, error);

        if (!conn)
            return FALSE;
        dom = virDomainDefineXML(conn, xml);
        if (!dom)
            lv_error(error, "cannot define the domain");
        virConnectClose(conn);
        if (!dom)
            return FALSE;
        *result = g_strdup_printf("Domain '%s' defined from ctl/define", virDomainGetName(dom));
        virDomainFree(dom);
        return TRUE;
    }
    if (op->op == BACKEND_OP_UNDEFINE) {
        if (!(dom = lv_domain(b, op->name, error)))
            return FALSE;
        ok = virDomainUndefineFlags(dom, op->flags & BACKEND_UNDEFINE_SNAPSHOTS_METADATA
                                             ? VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA : 0) == 0;
        if (!ok)
            lv_error(error, "cannot undefine the domain");
        else
            *result = g_strdup_printf("Domain '%s' has been undefined", op->name);
        virDomainFree(dom);
        return ok;
    }
    if (!(dom = lv_domain(b, op->dom, error)))
        return FALSE;
    ok = lv_apply_domain(b, dom, op, result, error);
    virDomainFree(dom);
    return ok;
}

/* A backup the daemon runs (virDomainBackupBegin): its state is the daemon's job. Or, for
 * a domain that does not run (libvirt 9.0 backs up running domains only), one snapfs runs
 * itself with the files backend's engine. */
typedef struct {
    Backend *b;
    char *dom;
    char *xml;          /* virDomainBackupGetXMLDesc at the start: the backup.xml file */
    BackupJob *local;   /* snapfs's own job; NULL: the daemon's */
} LvJob;

/* The files backend's backup of shut-off domain @name as the daemon defines it, once no
 * process writes its images (qemu's locks). */
static BackupJob *
lv_job_start_local(Backend *b, const char *name, const char *xml, gsize len,
                   BackupJob *previous, GError **error)
{
    LibvirtBackend *lv = lv_of(b);
    g_autoptr(BackendDomain) bd = lv_load_domain(b, name, error);
    BackupJob *job;

    if (!bd)
        return NULL;
    if (!guard_check_disks(bd->def, LIVE_IMAGE_USED, LIVE_IMAGE_USED, error)) {
        g_prefix_error(error, "domain '%s' is busy: ", name);
        return NULL;
    }
    if (!(job = backup_job_start_loaded(bd, name, xml, len, previous, error)))
        return NULL;
    g_mutex_lock(&lv->lock);
    g_hash_table_insert(lv->backups, g_strdup(name), job);
    g_mutex_unlock(&lv->lock);
    return job;
}

static LvJob *
lv_job_new(Backend *b, const char *name)
{
    LvJob *job = g_new0(LvJob, 1);

    job->b = b;
    job->dom = g_strdup(name);
    return job;
}

static BackendJob *
lv_job_start(Backend *b, const char *name, const char *xml, gsize len, BackendJob *previous,
             GError **error)
{
    virDomainPtr dom = lv_domain(b, name, error);
    g_autofree char *doc = g_strndup(xml, len);
    BackupJob *before = previous ? ((LvJob *)previous)->local : NULL;
    LvJob *job;
    char *desc;
    int active;

    if (!dom)
        return NULL;
    if ((active = virDomainIsActive(dom)) < 0) {
        lv_error(error, "cannot tell whether the domain runs");
        virDomainFree(dom);
        return NULL;
    }
    if (!active) {
        BackupJob *local;

        virDomainFree(dom);
        if (!(local = lv_job_start_local(b, name, xml, len, before, error)))
            return NULL;
        job = lv_job_new(b, name);
        job->local = local;
        return (BackendJob *)job;
    }
    if (!backup_job_check_idle(before, error)) {
        virDomainFree(dom);
        return NULL;
    }
    if (virDomainBackupBegin(dom, doc, NULL, 0) < 0) {
        lv_error(error, "cannot begin the backup");
        virDomainFree(dom);
        return NULL;
    }
    job = lv_job_new(b, name);
    if ((desc = virDomainBackupGetXMLDesc(dom, 0))) {
        job->xml = g_strdup(desc);
        free(desc);
    } else {
        job->xml = g_strdup(doc);
    }
    virDomainFree(dom);
    return (BackendJob *)job;
}

static guint64
lv_param_ull(virTypedParameterPtr params, int n, const char *name)
{
    unsigned long long v = 0;

    virTypedParamsGetULLong(params, n, name, &v);
    return v;
}

/* The daemon's backup job of the domain now (@completed: the last one that ended): its type
 * (VIR_DOMAIN_JOB_*), bytes done and to do, libvirt's error. FALSE: none to tell. */
static gboolean
lv_job_stats(LvJob *job, gboolean completed, int *type, guint64 *done, guint64 *total,
             char **message)
{
    virDomainPtr dom = lv_domain(job->b, job->dom, NULL);
    virTypedParameterPtr params = NULL;
    int n = 0, op = 0;
    const char *msg = NULL;
    gboolean ok;

    if (!dom)
        return FALSE;
    ok = virDomainGetJobStats(dom, type, &params, &n,
                              completed ? VIR_DOMAIN_JOB_STATS_COMPLETED |
                                              VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED : 0) == 0;
    if (ok) {
        virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION, &op);
        ok = *type != VIR_DOMAIN_JOB_NONE && op == VIR_DOMAIN_JOB_OPERATION_BACKUP;
        /* A backup's bytes are the disks' (qemuBackupGetJobInfoStats). */
        *done = MAX(lv_param_ull(params, n, VIR_DOMAIN_JOB_DATA_PROCESSED),
                    lv_param_ull(params, n, VIR_DOMAIN_JOB_DISK_PROCESSED));
        *total = MAX(lv_param_ull(params, n, VIR_DOMAIN_JOB_DATA_TOTAL),
                     lv_param_ull(params, n, VIR_DOMAIN_JOB_DISK_TOTAL));
        if (virTypedParamsGetString(params, n, VIR_DOMAIN_JOB_ERRMSG, &msg) == 1 && msg)
            *message = g_strdelimit(g_strdup(msg), "\r\n", ' ');
    }
    virTypedParamsFree(params, n);
    virDomainFree(dom);
    return ok;
}

static void
lv_job_cancel(BackendJob *bjob)
{
    LvJob *job = (LvJob *)bjob;
    virDomainPtr dom;

    if (job->local) {
        backup_job_cancel(job->local);
        return;
    }
    if ((dom = lv_domain(job->b, job->dom, NULL))) {
        virDomainAbortJob(dom);
        virDomainFree(dom);
    }
}

static gboolean
lv_job_running(BackendJob *bjob)
{
    g_autofree char *msg = NULL;
    guint64 done, total;
    int type;

    if (((LvJob *)bjob)->local)
        return backup_job_is_running(((LvJob *)bjob)->local);
    return lv_job_stats((LvJob *)bjob, FALSE, &type, &done, &total, &msg);
}

/* The `job` file, as the files backend's engine writes it. */
static char *
lv_job_describe(BackendJob *bjob)
{
    g_autofree char *msg = NULL;
    guint64 done = 0, total = 0;
    const char *state;
    int type = VIR_DOMAIN_JOB_NONE;

    if (((LvJob *)bjob)->local)
        return backup_job_describe(((LvJob *)bjob)->local);
    if (lv_job_stats((LvJob *)bjob, FALSE, &type, &done, &total, &msg))
        state = "running";
    else if (!lv_job_stats((LvJob *)bjob, TRUE, &type, &done, &total, &msg))
        return g_strdup("backup unknown: the daemon no longer tells this job\n");
    else
        state = type == VIR_DOMAIN_JOB_COMPLETED ? "completed"
                : type == VIR_DOMAIN_JOB_CANCELLED ? "cancelled" : "failed";
    return g_strdup_printf("backup %s %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT " bytes%s%s\n",
                           state, done, total, msg ? ": " : "", msg ? msg : "");
}

static char *
lv_job_xml(BackendJob *bjob)
{
    LvJob *job = (LvJob *)bjob;

    return job->local ? backup_job_xml(job->local) : g_strdup(job->xml);
}

/* The daemon's job goes on without us: only our record of it goes. Our own job is
 * cancelled and waited for. */
static void
lv_job_free(BackendJob *bjob)
{
    LvJob *job = (LvJob *)bjob;

    if (!job)
        return;
    if (job->local) {
        LibvirtBackend *lv = lv_of(job->b);

        g_mutex_lock(&lv->lock);
        if (g_hash_table_lookup(lv->backups, job->dom) == job->local)
            g_hash_table_remove(lv->backups, job->dom);
        g_mutex_unlock(&lv->lock);
        backup_job_free(job->local);
    }
    g_free(job->dom);
    g_free(job->xml);
    g_free(job);
}

static void
lv_free(Backend *b)
{
    LibvirtBackend *lv = lv_of(b);

    if (lv->conn) {
        virConnectUnregisterCloseCallback(lv->conn, lv_on_close);
        virConnectClose(lv->conn);
    }
    lv_attempt_unref(lv->attempt);   /* one still under way goes on alone, then ends */
    g_atomic_int_set(&lv->stop, 1);
    if (lv->loop)
        g_thread_join(lv->loop);   /* the timer wakes it within LV_TICK_MS */
    if (lv->timer >= 0)
        virEventRemoveTimeout(lv->timer);
    g_hash_table_unref(lv->changed);
    g_hash_table_unref(lv->stamps);
    g_hash_table_unref(lv->backups);
    g_mutex_clear(&lv->lock);
    g_free(lv->uri);
    g_free(lv);
}

static const BackendClass lv_class = {
    .list_domains = lv_list_domains,
    .list_stamp = lv_list_stamp,
    .domain_stamp = lv_domain_stamp,
    .domain_mtime = lv_domain_mtime,
    .load_domain = lv_load_domain,
    .snapshot_full = lv_snapshot_full,
    .snapshot_light = lv_snapshot_light,
    .watch = lv_watch,
    .watch_list = lv_true,
    .watch_domain = lv_watch_domain,
    .watch_forget = lv_watch_forget,
    .watch_drain = lv_watch_drain,
    .watch_check = lv_false,
    .domain_state = lv_domain_state,
    .live_xml = lv_live_xml,
    .image_stable = lv_image_stable,
    .check = lv_check,
    .apply = lv_apply,
    .job_start = lv_job_start,
    .job_cancel = lv_job_cancel,
    .job_running = lv_job_running,
    .job_describe = lv_job_describe,
    .job_xml = lv_job_xml,
    .job_free = lv_job_free,
    .free = lv_free,
};

/* libvirt prints every error on stderr unless told otherwise: the errors are ours to
 * report, once, where they belong (ctl/result, the log). */
static void
lv_quiet(void *data, virErrorPtr err)
{
}

/* The event loop wakes at least this often to see whether it is to stop. */
#define LV_TICK_MS 200

static void
lv_tick(int timer, void *opaque)
{
}

static gpointer
lv_loop(gpointer data)
{
    LibvirtBackend *lv = data;

    while (!g_atomic_int_get(&lv->stop))
        virEventRunDefaultImpl();
    return NULL;
}

Backend *
daemon_backend_new(const char *uri, gboolean read_only, GError **error)
{
    static gsize once;
    g_autoptr(Backend) b = NULL;
    LibvirtBackend *lv;
    virConnectPtr conn;
    g_autoptr(GError) local = NULL;

    if (g_once_init_enter(&once)) {
        virSetErrorFunc(NULL, lv_quiet);
        virEventRegisterDefaultImpl();   /* before the first connection: events, keepalive */
        g_once_init_leave(&once, 1);
    }
    lv = g_new0(LibvirtBackend, 1);
    b = &lv->parent;
    lv->parent.klass = &lv_class;
    lv->parent.read_only = read_only;
    lv->uri = g_strdup(uri);
    lv->secure = read_only ? 0 : VIR_DOMAIN_XML_SECURE;
    g_mutex_init(&lv->lock);
    lv->changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    lv->stamps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    lv->backups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    lv->timer = virEventAddTimeout(LV_TICK_MS, lv_tick, NULL, NULL);
    lv->loop = g_thread_new("libvirt-events", lv_loop, lv);
    if (!(conn = lv_conn(b, &local))) {
        /* At mount, libvirt's own words: the URI is on the command line already. */
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    virConnectClose(conn);
    return g_steal_pointer(&b);
}
