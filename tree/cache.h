/* cache.h: what the parts of the tree share (cache.c: domains, versions and requests;
 * node.c: the schema; session.c: ctl results, links, backup jobs). Not for fs/. */
#pragma once

#include "view.h"

G_BEGIN_DECLS

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
    gboolean watched;             /* watched: re-examined after an event only */
    gboolean dirty;               /* an event came since its stamp was taken */
    gboolean reload;              /* a file changed after the load: reload even when the
                                     stamp did not see it */
    gint64 checked_us;            /* not watched: re-examined after recheck_us */
    gint64 recheck_us;            /* interval: 300 ms, longer when a check is costly */
} ViewDomain;

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
    gboolean list_dirty;          /* an event about the list since the listing */
    gboolean list_failed;         /* the last listing failed: retried as when polled */
    uid_t uid;
    gid_t gid;
    GHashTable *domains;          /* name -> ViewDomain * */
    GPtrArray *domain_names;      /* sorted, from the last listing */
    guint64 list_stamp;
    gint64 list_checked_us;
    struct timespec mount_time;
    GMutex guest_lock;            /* guards the guest disks below, not View.lock */
    GHashTable *guest_disks;      /* key -> ViewGuestDisk * (tree/guest.c), open images */
    GQueue guest_lru;             /* of them, most recently used first */
};

/* One request: the version of its domain is taken at the first need and kept to the
 * end, so every step of the request sees the same tree, whatever reloads meanwhile. */
typedef struct {
    View *view;
    ViewVersion *ver;      /* a reference, or NULL until needed */
    gboolean stale;        /* a snapshot changed after the load: worth a retry */
} ViewReq;

/* Tries of a request whose snapshot changed under it: each retry works on a
 * new load, so only a file rewritten again within milliseconds needs another. */
#define VIEW_REQ_TRIES 4

void view_req_clear(ViewReq *r);
const char *view_pending(const BackendDomain *sd, const char *snap);
gboolean view_set_noent(GError **error, const char *what);
gboolean view_name_ok(const char *name);
void view_refresh_list(View *view);
gboolean view_domain_listed(View *view, const char *name);
ViewVersion *view_req_domain(ViewReq *r, const char *dom, GError **error);
gboolean view_req_retry(ViewReq *r, guint attempt, GError **error);
void view_req_prepare(ViewReq *r, const ViewNode *node);
SnapNode *view_snap_get(ViewVersion *ver, const char *snap, GError **error);
gboolean view_snap_has_dom(const SnapNode *sn);
gboolean view_snap_full(ViewReq *r, SnapNode *sn, GError **error);
const DomainDef *view_disks_def(ViewReq *r, const char *snap, GError **error);
Chain *view_chain_get(ViewVersion *ver, const char *snap, const char *target, GError **error);
char *view_label_target(const char *label);
Chain *view_layer_find(ViewVersion *ver, const ViewNode *node, guint *pos, GError **error);
ChainLayer *view_layer_get(ViewVersion *ver, const ViewNode *node, GError **error);
gboolean view_data_ok(ViewVersion *ver, const ViewNode *node);
gboolean view_data_resolve(ViewReq *r, const ViewNode *node, Chain **chain, guint *index,
                           guint64 *version, GError **error);
void view_guest_clear(View *view);

/* tree/guest.c: the nodes under files/ and partitions.tsv, answered outside View.lock. */
ViewNode *view_guest_lookup(View *view, const ViewNode *parent, const char *name,
                            GError **error);
gboolean view_guest_stat(View *view, const ViewNode *node, struct stat *st, GError **error);
GPtrArray *view_guest_readdir(View *view, const ViewNode *node, GError **error);
char *view_guest_readlink(View *view, const ViewNode *node, GError **error);
GBytes *view_guest_content(View *view, const ViewNode *node, GError **error);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ViewReq, view_req_clear)

G_END_DECLS
