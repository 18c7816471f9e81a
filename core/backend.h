/* backend.h: what tree/ asks of a source of truth about domains and their snapshots.
 *
 * The tree shows domains, their snapshots, disks and state, and turns writes into typed
 * operations; where those come from is a backend's business. Today there is one, the
 * files backend (core/files/: libvirt's on-disk store, changed in place with libvirt's
 * rules). A libvirt daemon reached through its API is the next: it performs each
 * operation atomically itself, tells changes by events rather than by stat, and
 * answers errors in its own words. The interface is shaped for both:
 * - loading gives model objects (DomainDef, a SnapTree of SnapshotDefs), light first:
 *   a snapshot without its <domain>s until it is asked for in full;
 * - a stamp per domain and for the domain list says whether what was loaded still
 *   holds; the watch calls only say where to look again (an inotify event, a daemon's
 *   lifecycle event) and a stamp confirms;
 * - an operation is one call with a typed request (BackendOp); the backend decides
 *   whether it may run now (a running VM, a daemon in charge, a backup reading) and
 *   reports refusals and failures as GErrors whose messages go to ctl/result as they are.
 * Every call may block on the outside (disks, a daemon); callers hold no lock that
 * other requests need while they wait. */
#pragma once

#include <glib.h>
#include <time.h>

#include "domain.h"
#include "snaptree.h"

G_BEGIN_DECLS

/* A typed operation, as virsh would ask it. */
typedef enum {
    BACKEND_OP_CREATE,             /* snapshot-create-as DOM NAME --disk-only */
    BACKEND_OP_CREATE_NO_METADATA, /* snapshot-create-as DOM NAME --disk-only --no-metadata */
    BACKEND_OP_REDEFINE,           /* snapshot-create DOM FILE --redefine */
    BACKEND_OP_REDEFINE_CURRENT,   /* snapshot-create DOM FILE --redefine --current */
    BACKEND_OP_IMPORT,             /* snapshot-create DOM FILE --redefine, one per snapshot */
    BACKEND_OP_CURRENT,            /* snapshot-current DOM SNAP */
    BACKEND_OP_REVERT,             /* snapshot-revert DOM SNAP */
    BACKEND_OP_DELETE,             /* snapshot-delete DOM SNAP */
    BACKEND_OP_GENID,              /* edit DOM */
    BACKEND_OP_DEFINE,             /* define FILE */
    BACKEND_OP_UNDEFINE,           /* undefine DOM */
    BACKEND_OP_BACKUP,             /* backup-begin DOM: reads the images, changes no metadata */
} BackendOpKind;

/* Flags of BACKEND_OP_DELETE: virDomainSnapshotDelete's. */
typedef enum {
    BACKEND_DELETE_CHILDREN = 1 << 0,       /* --children */
    BACKEND_DELETE_METADATA_ONLY = 1 << 1,  /* --metadata */
    BACKEND_DELETE_CHILDREN_ONLY = 1 << 2,  /* --children-only */
} BackendDeleteFlags;

/* Flags of BACKEND_OP_CREATE with a bare name (virsh snapshot-create-as's options). */
typedef enum {
    BACKEND_CREATE_QUIESCE = 1 << 0,   /* --quiesce: the guest agent freezes the filesystems */
    BACKEND_CREATE_MEMORY = 1 << 1,    /* --memory: a live snapshot with the guest's memory */
} BackendCreateFlags;

/* Flags of BACKEND_OP_UNDEFINE (virsh undefine's options). */
typedef enum {
    BACKEND_UNDEFINE_SNAPSHOTS_METADATA = 1 << 0,  /* --snapshots-metadata */
} BackendUndefineFlags;

/* One operation: what a write to a control file asks for once parsed, or what mkdir,
 * rmdir, ln -sfn and rm of a link ask for. Borrowed strings. */
typedef struct {
    BackendOpKind op;
    const char *dom;     /* NULL: define, undefine (the top ctl/) */
    const char *name;    /* the snapshot of current (NULL clears it), revert, delete and of
                          * create without @xml (external, disk-only, defaults); the domain
                          * of undefine; the value of genid ("new" or a GUID) */
    const char *xml;     /* the document of create, redefine, import, define and backup */
    gsize len;
    guint flags;         /* BackendDeleteFlags (delete), BackendUndefineFlags (undefine),
                          * BackendCreateFlags (create with a bare name) */
    gboolean cancel;     /* backup: cancel the running one */
} BackendOp;

/* One domain as loaded: its definition and snapshot hierarchy. */
typedef struct {
    DomainDef *def;
    /* The running definition (parsed with DOMAIN_PARSE_LIVE: libvirt's own chain indexes)
     * whose disks NAME/disks/ shows while the domain runs; NULL: it does not run, or the
     * backend cannot tell (disks/ shows @def's). */
    DomainDef *live;
    SnapTree *snaps;
    GPtrArray *warnings;  /* char *: what loading skipped and why (libvirt's log texts);
                           * NULL: nothing */
    /* Snapshot name -> what an unfinished change of images does to it ("deleting
     * (interrupted)", "creating (in progress)"...); NULL when none. */
    GHashTable *pending;
    struct timespec mtime;  /* when the domain's definition last changed */
} BackendDomain;

void backend_domain_free(BackendDomain *bd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BackendDomain, backend_domain_free)

/* A backup running in the background, one per domain at most. Opaque: its backend's. */
typedef struct BackendJob BackendJob;

typedef struct Backend Backend;

typedef struct {
    /* Domain names, sorted. Owned. */
    GPtrArray *(*list_domains)(Backend *b, GError **error);
    /* Changes whenever the domain list may have. */
    guint64 (*list_stamp)(Backend *b);
    /* Changes whenever what load_domain() gives for @name may have (its live definition
     * too). */
    guint64 (*domain_stamp)(Backend *b, const char *name);
    /* Loads @name with every snapshot light (SnapshotDef.light_token set, no domains). */
    BackendDomain *(*load_domain)(Backend *b, const char *name, GError **error);
    /* When @name's definition last changed, without loading it; FALSE: unknown. */
    gboolean (*domain_mtime)(Backend *b, const char *name, struct timespec *mtime);
    /* Makes @node of @bd (loaded from @name) full; fails when it is gone or changed. */
    gboolean (*snapshot_full)(Backend *b, const char *name, BackendDomain *bd, SnapNode *node,
                              GError **error);
    /* Makes @node light again; @token is the light_token it had before snapshot_full(). */
    void (*snapshot_light)(Backend *b, SnapNode *node, const char *token);

    /* Change notification. watch() starts it (FALSE with the reason: callers poll the
     * stamps instead). watch_domain() before loading @name (FALSE: it cannot be watched,
     * poll it); watch_forget() when it is no longer loaded; watch_drain() adds to
     * @changed (a set of names, "" for the list) what may have changed, never blocking,
     * TRUE when events were lost; watch_check() TRUE when everything may have changed. */
    gboolean (*watch)(Backend *b, GError **error);
    gboolean (*watch_list)(Backend *b);
    gboolean (*watch_domain)(Backend *b, const char *name);
    void (*watch_forget)(Backend *b, const char *name);
    gboolean (*watch_drain)(Backend *b, GHashTable *changed);
    gboolean (*watch_check)(Backend *b);

    /* Whether @name runs now, in virsh domstate's words ("running", "shut off"...); NULL
     * with the reason when it cannot be known now. */
    const char *(*domain_state)(Backend *b, const char *name, GError **error);
    /* The running definition of @name as its daemon gives it (virsh dumpxml; @secure: with
     * secrets), owned; NULL without an error when it does not run. May be NULL itself: the
     * backend cannot tell a running definition (the files backend). */
    char *(*live_xml)(Backend *b, const char *name, gboolean secure, GError **error);
    /* Whether the image at @path may be read as a stable guest view: FALSE with
     * CORE_ERROR_BUSY when a running VM writes it. */
    gboolean (*image_stable)(Backend *b, const char *path, GError **error);

    /* Whether @op may run now (a running VM, a daemon in charge, an image in use, a
     * backup reading): FALSE with CORE_ERROR_BUSY and what to use instead. */
    gboolean (*check)(Backend *b, const BackendOp *op, GError **error);
    /* Runs @op (not BACKEND_OP_BACKUP) after check(). @result: the success line for
     * ctl/result. */
    gboolean (*apply)(Backend *b, const BackendOp *op, char **result, GError **error);

    /* Starts a backup of @dom (the <domainbackup> @xml) after check(); @previous: the
     * domain's last job, finished, whose state the new one may reuse. */
    BackendJob *(*job_start)(Backend *b, const char *dom, const char *xml, gsize len,
                             BackendJob *previous, GError **error);
    void (*job_cancel)(BackendJob *job);
    gboolean (*job_running)(BackendJob *job);
    char *(*job_describe)(BackendJob *job);   /* the `job` file */
    char *(*job_xml)(BackendJob *job);        /* the `backup.xml` file */
    void (*job_free)(BackendJob *job);        /* cancels and waits for a running one */

    void (*free)(Backend *b);
} BackendClass;

struct Backend {
    const BackendClass *klass;
    gboolean read_only;   /* the mount asks no change: every operation fails with EROFS */
};

static inline GPtrArray *backend_list_domains(Backend *b, GError **error)
{ return b->klass->list_domains(b, error); }
static inline guint64 backend_list_stamp(Backend *b)
{ return b->klass->list_stamp(b); }
static inline guint64 backend_domain_stamp(Backend *b, const char *name)
{ return b->klass->domain_stamp(b, name); }
static inline BackendDomain *backend_load_domain(Backend *b, const char *name, GError **error)
{ return b->klass->load_domain(b, name, error); }
static inline gboolean backend_domain_mtime(Backend *b, const char *name,
                                            struct timespec *mtime)
{ return b->klass->domain_mtime(b, name, mtime); }
static inline gboolean backend_snapshot_full(Backend *b, const char *name, BackendDomain *bd,
                                             SnapNode *node, GError **error)
{ return b->klass->snapshot_full(b, name, bd, node, error); }
static inline void backend_snapshot_light(Backend *b, SnapNode *node, const char *token)
{ b->klass->snapshot_light(b, node, token); }
static inline gboolean backend_watch(Backend *b, GError **error)
{ return b->klass->watch(b, error); }
static inline gboolean backend_watch_list(Backend *b)
{ return b->klass->watch_list(b); }
static inline gboolean backend_watch_domain(Backend *b, const char *name)
{ return b->klass->watch_domain(b, name); }
static inline void backend_watch_forget(Backend *b, const char *name)
{ b->klass->watch_forget(b, name); }
static inline gboolean backend_watch_drain(Backend *b, GHashTable *changed)
{ return b->klass->watch_drain(b, changed); }
static inline gboolean backend_watch_check(Backend *b)
{ return b->klass->watch_check(b); }
static inline const char *backend_domain_state(Backend *b, const char *name, GError **error)
{ return b->klass->domain_state(b, name, error); }
static inline char *backend_live_xml(Backend *b, const char *name, gboolean secure,
                                     GError **error)
{ return b->klass->live_xml ? b->klass->live_xml(b, name, secure, error) : NULL; }
static inline gboolean backend_image_stable(Backend *b, const char *path, GError **error)
{ return b->klass->image_stable(b, path, error); }
static inline BackendJob *backend_job_start(Backend *b, const char *dom, const char *xml,
                                            gsize len, BackendJob *previous, GError **error)
{ return b->klass->job_start(b, dom, xml, len, previous, error); }
static inline void backend_job_cancel(Backend *b, BackendJob *job)
{ b->klass->job_cancel(job); }
static inline gboolean backend_job_running(Backend *b, BackendJob *job)
{ return b->klass->job_running(job); }
static inline char *backend_job_describe(Backend *b, BackendJob *job)
{ return b->klass->job_describe(job); }
static inline char *backend_job_xml(Backend *b, BackendJob *job)
{ return b->klass->job_xml(job); }
static inline void backend_job_free(Backend *b, BackendJob *job)
{ b->klass->job_free(job); }

static inline gboolean backend_check(Backend *b, const BackendOp *op, GError **error)
{ return b->klass->check(b, op, error); }

/* Runs @op: EROFS on a read-only mount, else the backend's check() and apply(). */
gboolean backend_apply(Backend *b, const BackendOp *op, char **result, GError **error);

void backend_free(Backend *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Backend, backend_free)

G_END_DECLS
