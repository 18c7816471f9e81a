/* test-tree.c: tree/ (view.c, ctl.c) over a backend of this file's own: domains and
 * snapshots made from XML strings in memory, disks on small images in a temporary
 * directory, stamps and events the tests move by hand, and check/apply that record
 * the typed operation they get. Nothing of the files backend runs: what tree/ shows
 * and asks has to come through core/backend.h. */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "ctl.h"
#include "error.h"
#include "testcmd.h"
#include "view.h"
#include "viewpath.h"

static char *imgdir;   /* the disk images, made once */

#define FIX_IMG_SIZE 65536
#define FIX_JOB_TEXT "fixture job: 42 of 100 clusters\n"

/* One domain as the fixture keeps it: documents, not model objects, so each load
 * parses anew as a backend reading its source of truth would. */
typedef struct {
    char *xml;              /* <domain> */
    GPtrArray *snaps;       /* char *: <domainsnapshot> documents */
    char *current;          /* NULL: none */
    guint64 stamp;
    gboolean light;         /* load without the snapshots' <domain>s */
    const char *state;      /* what domain_state() says */
    char *live;             /* the running <domain> (BackendDomain.live), or NULL */
    char *pending_snap;     /* BackendDomain.pending: one entry, or none */
    char *pending_text;
    const char *warning;    /* BackendDomain.warnings: one (logged by the view), or none */
} FixDomain;

/* An operation as check() or apply() got it, strings copied. */
typedef struct {
    BackendOpKind op;
    char *dom;
    char *name;
    char *xml;
    gsize len;
    guint flags;
    gboolean cancel;
} FixOp;

typedef struct {
    char *dom;
    char *xml;
    gboolean running;
} FixJob;

typedef struct {
    Backend parent;
    GHashTable *domains;     /* name -> FixDomain * */
    guint64 list_stamp;
    gboolean watchable;      /* watch() succeeds; events come from @events only */
    gboolean polled;         /* watch_domain() fails: events come, domains are polled */
    GHashTable *events;      /* names watch_drain() hands out next ("" = the list) */
    GPtrArray *forgotten;    /* char *: names given to watch_forget() */
    GPtrArray *checked;      /* FixOp * */
    GPtrArray *applied;      /* FixOp * */
    char *refusal;           /* non-NULL: check() refuses with it (CORE_ERROR_BUSY) */
    GHashTable *busy;        /* image paths image_stable() refuses */
    guint loads;
    guint fulls;
    guint lights;
    guint jobs_started;
    struct timespec mtime;
} FixtureBackend;

static FixtureBackend *
fix_of(Backend *b)
{
    return (FixtureBackend *)b;
}

static void
fix_domain_free(FixDomain *d)
{
    g_free(d->xml);
    g_free(d->live);
    g_ptr_array_unref(d->snaps);
    g_free(d->current);
    g_free(d->pending_snap);
    g_free(d->pending_text);
    g_free(d);
}

static void
fix_op_free(FixOp *op)
{
    g_free(op->dom);
    g_free(op->name);
    g_free(op->xml);
    g_free(op);
}

static FixOp *
fix_op_copy(const BackendOp *op)
{
    FixOp *c = g_new0(FixOp, 1);

    c->op = op->op;
    c->dom = g_strdup(op->dom);
    c->name = g_strdup(op->name);
    c->xml = op->xml ? g_strndup(op->xml, op->len) : NULL;
    c->len = op->len;
    c->flags = op->flags;
    c->cancel = op->cancel;
    return c;
}

static GPtrArray *
fix_list_domains(Backend *b, GError **error)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, fix_of(b)->domains);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(names, g_strdup(k));
    g_ptr_array_sort(names, cmp_names);
    return names;
}

static guint64
fix_list_stamp(Backend *b)
{
    return fix_of(b)->list_stamp;
}

static guint64
fix_domain_stamp(Backend *b, const char *name)
{
    FixDomain *d = g_hash_table_lookup(fix_of(b)->domains, name);

    return d ? d->stamp : 0;
}

static gboolean
fix_domain_mtime(Backend *b, const char *name, struct timespec *mtime)
{
    if (!g_hash_table_contains(fix_of(b)->domains, name))
        return FALSE;
    *mtime = fix_of(b)->mtime;
    return TRUE;
}

/* The document of snapshot @snap of @d, or NULL. */
static const char *
fix_snap_xml(const FixDomain *d, const char *snap)
{
    g_autofree char *tag = g_strdup_printf("<name>%s</name>", snap);

    for (guint i = 0; i < d->snaps->len; i++) {
        const char *xml = d->snaps->pdata[i];
        const char *dom = strstr(xml, "<domain ");

        /* the snapshot's own <name>, not its domain's */
        if (strstr(xml, tag) && (!dom || strstr(xml, tag) < dom))
            return xml;
    }
    return NULL;
}

static SnapshotDef *
fix_snap_parse(const char *xml, GError **error)
{
    return snapshot_parse(xml, strlen(xml), SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS,
                          error);
}

static BackendDomain *
fix_load_domain(Backend *b, const char *name, GError **error)
{
    FixtureBackend *f = fix_of(b);
    FixDomain *d = g_hash_table_lookup(f->domains, name);
    g_autoptr(BackendDomain) bd = g_new0(BackendDomain, 1);

    if (!d) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no domain '%s'", name);
        return NULL;
    }
    f->loads++;
    bd->snaps = snaptree_new();
    bd->warnings = g_ptr_array_new_with_free_func(g_free);
    bd->mtime = f->mtime;
    if (!(bd->def = domain_parse(d->xml, strlen(d->xml), DOMAIN_PARSE_INACTIVE, error)))
        return NULL;
    if (d->live && !(bd->live = domain_parse(d->live, strlen(d->live), DOMAIN_PARSE_LIVE,
                                             error)))
        return NULL;
    for (guint i = 0; i < d->snaps->len; i++) {
        g_autoptr(SnapshotDef) def = fix_snap_parse(d->snaps->pdata[i], error);

        if (!def)
            return NULL;
        if (d->light) {
            g_autofree char *token = g_strdup_printf("fixture:%s/%s@%" G_GUINT64_FORMAT,
                                                     name, def->name, d->stamp);

            snapshot_make_light(def, token);
        }
        if (!snaptree_add(bd->snaps, g_steal_pointer(&def), error))
            return NULL;
    }
    g_assert_true(snaptree_update_relations(bd->snaps));
    if (d->current) {
        bd->snaps->current = snaptree_lookup(bd->snaps, d->current);
        g_assert_nonnull(bd->snaps->current);
    }
    if (d->warning)
        g_ptr_array_add(bd->warnings, g_strdup(d->warning));
    if (d->pending_snap) {
        bd->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(bd->pending, g_strdup(d->pending_snap), g_strdup(d->pending_text));
    }
    return g_steal_pointer(&bd);
}

/* Full again from the document, unless the domain changed since the light load. */
static gboolean
fix_snapshot_full(Backend *b, const char *name, BackendDomain *bd, SnapNode *node,
                  GError **error)
{
    FixtureBackend *f = fix_of(b);
    FixDomain *d = g_hash_table_lookup(f->domains, name);
    const char *at = strrchr(node->def->light_token, '@');
    const char *xml = d ? fix_snap_xml(d, node->def->name) : NULL;
    SnapshotDef *full;

    f->fulls++;
    if (!xml || g_ascii_strtoull(at + 1, NULL, 10) != d->stamp) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "snapshot '%s' of '%s' changed",
                    node->def->name, name);
        return FALSE;
    }
    if (!(full = fix_snap_parse(xml, error)))
        return FALSE;
    snaptree_replace_def(bd->snaps, node, full);
    return TRUE;
}

static void
fix_snapshot_light(Backend *b, SnapNode *node, const char *token)
{
    fix_of(b)->lights++;
    snapshot_make_light(node->def, token);
}

static gboolean
fix_watch(Backend *b, GError **error)
{
    if (!fix_of(b)->watchable) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED, "fixture: no events");
        return FALSE;
    }
    return TRUE;
}

static gboolean
fix_watch_list(Backend *b)
{
    return fix_of(b)->watchable;
}

static gboolean
fix_watch_domain(Backend *b, const char *name)
{
    return fix_of(b)->watchable && !fix_of(b)->polled;
}

static void
fix_watch_forget(Backend *b, const char *name)
{
    g_ptr_array_add(fix_of(b)->forgotten, g_strdup(name));
}

static gboolean
fix_watch_drain(Backend *b, GHashTable *changed)
{
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, fix_of(b)->events);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_hash_table_add(changed, g_strdup(k));
    g_hash_table_remove_all(fix_of(b)->events);
    return FALSE;
}

static gboolean
fix_watch_check(Backend *b)
{
    return FALSE;
}

static const char *
fix_domain_state(Backend *b, const char *name, GError **error)
{
    FixDomain *d = g_hash_table_lookup(fix_of(b)->domains, name);

    return d && d->state ? d->state : "shut off";
}

static gboolean
fix_image_stable(Backend *b, const char *path, GError **error)
{
    if (!g_hash_table_contains(fix_of(b)->busy, path))
        return TRUE;
    g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY, "fixture: '%s' is written by a VM", path);
    return FALSE;
}

static gboolean
fix_check(Backend *b, const BackendOp *op, GError **error)
{
    FixtureBackend *f = fix_of(b);

    g_ptr_array_add(f->checked, fix_op_copy(op));
    if (f->refusal) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_BUSY, f->refusal);
        return FALSE;
    }
    return TRUE;
}

static gboolean
fix_apply(Backend *b, const BackendOp *op, char **result, GError **error)
{
    FixtureBackend *f = fix_of(b);

    g_ptr_array_add(f->applied, fix_op_copy(op));
    *result = g_strdup_printf("fixture applied op %d", (int)op->op);
    return TRUE;
}

static BackendJob *
fix_job_start(Backend *b, const char *dom, const char *xml, gsize len, BackendJob *previous,
              GError **error)
{
    FixJob *job = g_new0(FixJob, 1);

    if (previous)
        g_assert_false(((FixJob *)previous)->running);
    fix_of(b)->jobs_started++;
    job->dom = g_strdup(dom);
    job->xml = g_strndup(xml, len);
    job->running = TRUE;
    return (BackendJob *)job;
}

static void
fix_job_cancel(BackendJob *job)
{
    ((FixJob *)job)->running = FALSE;
}

static gboolean
fix_job_running(BackendJob *job)
{
    return ((FixJob *)job)->running;
}

static char *
fix_job_describe(BackendJob *job)
{
    return g_strdup(FIX_JOB_TEXT);
}

static char *
fix_job_xml(BackendJob *job)
{
    return g_strdup(((FixJob *)job)->xml);
}

static void
fix_job_free(BackendJob *job)
{
    FixJob *j = (FixJob *)job;

    g_free(j->dom);
    g_free(j->xml);
    g_free(j);
}

static void
fix_free(Backend *b)
{
    FixtureBackend *f = fix_of(b);

    g_hash_table_unref(f->domains);
    g_hash_table_unref(f->events);
    g_hash_table_unref(f->busy);
    g_ptr_array_unref(f->forgotten);
    g_ptr_array_unref(f->checked);
    g_ptr_array_unref(f->applied);
    g_free(f->refusal);
    g_free(f);
}

static const BackendClass fix_class = {
    .list_domains = fix_list_domains,
    .list_stamp = fix_list_stamp,
    .domain_stamp = fix_domain_stamp,
    .domain_mtime = fix_domain_mtime,
    .load_domain = fix_load_domain,
    .snapshot_full = fix_snapshot_full,
    .snapshot_light = fix_snapshot_light,
    .watch = fix_watch,
    .watch_list = fix_watch_list,
    .watch_domain = fix_watch_domain,
    .watch_forget = fix_watch_forget,
    .watch_drain = fix_watch_drain,
    .watch_check = fix_watch_check,
    .domain_state = fix_domain_state,
    .image_stable = fix_image_stable,
    .check = fix_check,
    .apply = fix_apply,
    .job_start = fix_job_start,
    .job_cancel = fix_job_cancel,
    .job_running = fix_job_running,
    .job_describe = fix_job_describe,
    .job_xml = fix_job_xml,
    .job_free = fix_job_free,
    .free = fix_free,
};

/* Documents. */

static char *
img(const char *name)
{
    return g_build_filename(imgdir, name, NULL);
}

/* An inactive <domain> with one file disk vda. */
static char *
dom_xml(const char *name, const char *uuid, const char *extra, const char *image,
        const char *format)
{
    g_autofree char *path = img(image);

    return g_strdup_printf("<domain type='kvm'>\n"
                           "  <name>%s</name>\n"
                           "  <uuid>%s</uuid>\n"
                           "%s"
                           "  <memory unit='KiB'>1048576</memory>\n"
                           "  <vcpu placement='static'>1</vcpu>\n"
                           "  <os>\n"
                           "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                           "  </os>\n"
                           "  <devices>\n"
                           "    <disk type='file' device='disk'>\n"
                           "      <driver name='qemu' type='%s'/>\n"
                           "      <source file='%s'/>\n"
                           "      <target dev='vda' bus='virtio'/>\n"
                           "    </disk>\n"
                           "    <graphics type='vnc' port='-1' passwd='secret'/>\n"
                           "  </devices>\n"
                           "</domain>\n",
                           name, uuid, extra ? extra : "", format, path);
}

/* A <domainsnapshot> of @dom (its domain document, or NULL for none). */
static char *
snap_xml(const char *name, const char *parent, gint64 ctime, const char *description,
         const char *dom)
{
    g_autofree char *p = parent ? g_strdup_printf("  <parent>\n    <name>%s</name>\n"
                                                  "  </parent>\n", parent)
                                : g_strdup("");
    g_autofree char *d = description ? g_strdup_printf("  <description>%s</description>\n",
                                                       description)
                                     : g_strdup("");

    return g_strdup_printf("<domainsnapshot>\n"
                           "  <name>%s</name>\n"
                           "%s"
                           "  <state>shutoff</state>\n"
                           "%s"
                           "  <creationTime>%" G_GINT64_FORMAT "</creationTime>\n"
                           "  <memory snapshot='no'/>\n"
                           "%s"
                           "</domainsnapshot>\n",
                           name, d, p, ctime, dom ? dom : "");
}

#define ALPHA_UUID "11111111-2222-3333-4444-555555555555"
#define ALPHA_GENID "a1b2c3d4-0000-4000-8000-00000000000f"
#define BETA_UUID "22222222-2222-3333-4444-555555555555"
#define GAMMA_UUID "33333333-2222-3333-4444-555555555555"

static FixDomain *
fix_domain_new(char *xml, const char *current)
{
    FixDomain *d = g_new0(FixDomain, 1);

    d->xml = xml;
    d->snaps = g_ptr_array_new_with_free_func(g_free);
    d->current = g_strdup(current);
    d->stamp = 1;
    return d;
}

/* alpha: vda a qcow2 overlay on a raw base; s1 -> s2 -> s3 (current), s1 -> s4, whose
 * change is pending; loaded in full. beta: running, no snapshots, its image busy.
 * gamma: g1 -> g2 (current), loaded light. */
static FixtureBackend *
fixture_backend_new(void)
{
    FixtureBackend *f = g_new0(FixtureBackend, 1);
    g_autofree char *s1dom = dom_xml("alpha", ALPHA_UUID, NULL, "base.raw", "raw");
    g_autofree char *alphadom = dom_xml("alpha", ALPHA_UUID,
                                        "  <genid>A1B2C3D4-0000-4000-8000-00000000000F</genid>\n",
                                        "top.qcow2", "qcow2");
    g_autofree char *gdom = dom_xml("gamma", GAMMA_UUID, NULL, "gamma.raw", "raw");
    FixDomain *d;

    f->parent.klass = &fix_class;
    f->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)fix_domain_free);
    f->events = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    f->busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    f->forgotten = g_ptr_array_new_with_free_func(g_free);
    f->checked = g_ptr_array_new_with_free_func((GDestroyNotify)fix_op_free);
    f->applied = g_ptr_array_new_with_free_func((GDestroyNotify)fix_op_free);
    f->list_stamp = 1;
    f->mtime.tv_sec = 1600000000;
    f->mtime.tv_nsec = 5;

    d = fix_domain_new(g_strdup(alphadom), "s3");
    g_ptr_array_add(d->snaps, snap_xml("s1", NULL, 1700000001, "first &amp; best", s1dom));
    g_ptr_array_add(d->snaps, snap_xml("s2", "s1", 1700000002, NULL, alphadom));
    g_ptr_array_add(d->snaps, snap_xml("s3", "s2", 1700000003, NULL, alphadom));
    g_ptr_array_add(d->snaps, snap_xml("s4", "s1", 1700000004, NULL, NULL));
    d->pending_snap = g_strdup("s4");
    d->pending_text = g_strdup("deleting (interrupted)");
    g_hash_table_insert(f->domains, g_strdup("alpha"), d);

    d = fix_domain_new(dom_xml("beta", BETA_UUID, NULL, "beta.raw", "raw"), NULL);
    d->state = "running";
    g_hash_table_add(f->busy, img("beta.raw"));
    g_hash_table_insert(f->domains, g_strdup("beta"), d);

    d = fix_domain_new(g_strdup(gdom), "g2");
    d->light = TRUE;
    d->warning = "fixture: skipped 'g0' (no such parent)";
    g_ptr_array_add(d->snaps, snap_xml("g1", NULL, 1700000011, "gamma one", gdom));
    g_ptr_array_add(d->snaps, snap_xml("g2", "g1", 1700000012, "gamma two", gdom));
    g_hash_table_insert(f->domains, g_strdup("gamma"), d);
    return f;
}

typedef struct {
    FixtureBackend *fix;
    View *view;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer watch)
{
    f->fix = fixture_backend_new();
    f->fix->watchable = watch != NULL;
    f->view = view_new(&f->fix->parent, watch != NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    view_free(f->view);
    backend_free(&f->fix->parent);
}

/* Paths in the tree. */

/* The names in directory @path in the order view_readdir() gives them, with their
 * types ("/" after a directory, "@" after a link). */
static char *
names_at(View *view, const char *path)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ents = view_readdir(view, node, &error);
    GString *out = g_string_new(NULL);

    g_assert_no_error(error);
    for (guint i = 0; i < ents->len; i++) {
        const ViewDirent *e = ents->pdata[i];

        g_string_append_printf(out, "%s%s%s", i ? " " : "", e->name,
                               e->type == S_IFDIR ? "/" : e->type == S_IFLNK ? "@" : "");
    }
    return g_string_free(out, FALSE);
}

/* @path's last element is not found under its parent, with @code. */
static void
assert_lookup_fails(View *view, const char *path, int code)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *name = g_path_get_basename(path);
    g_autoptr(ViewNode) parent = node_at(view, strcmp(dir, ".") == 0 ? "" : dir);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = view_lookup(view, parent, name, &error);

    if (node || !error)
        g_error("'%s': %s", path, node ? "exists" : "no error");
    g_assert_error(error, G_FILE_ERROR, code);
}

/* What the guest reads on the base image (byte i) and on the overlay (its first 512
 * bytes written). */
static guint8
base_byte(gsize i)
{
    return (guint8)(i * 7 + 3);
}

/* Tests. */

static void
test_lookup(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *path;
        ViewKind kind;
    } found[] = {
        { "ctl", VIEW_CTL_DIR },
        { "ctl/define", VIEW_CTL_FILE },
        { "alpha", VIEW_DOM },
        { "alpha/domain.xml", VIEW_DOM_FILE },
        { "alpha/state", VIEW_DOM_FILE },
        { "alpha/current", VIEW_DOM_CURRENT },
        { "alpha/disks", VIEW_DISKS },
        { "alpha/disks/vda", VIEW_DISK_DIR },
        { "alpha/disks/vda[1]", VIEW_DISK_DIR },
        { "alpha/disks/vda/data", VIEW_DISK_FILE },
        { "alpha/disks/vda/backing", VIEW_DISK_BACKING },
        { "alpha/disks/vda.xml", VIEW_DISK_XML },
        { "alpha/snapshots", VIEW_SNAPS },
        { "alpha/snapshots/s2", VIEW_SNAP },
        { "alpha/snapshots/s2/snapshot.xml", VIEW_SNAP_FILE },
        { "alpha/snapshots/s2/domain.xml", VIEW_SNAP_FILE },
        { "alpha/snapshots/s2/parent", VIEW_SNAP_PARENT },
        { "alpha/snapshots/s1/children", VIEW_SNAP_CHILDREN },
        { "alpha/snapshots/s1/children/s4", VIEW_SNAP_CHILD },
        { "alpha/snapshots/s1/disks/vda/info", VIEW_DISK_FILE },
        { "alpha/ctl", VIEW_CTL_DIR },
        { "alpha/ctl/delete", VIEW_CTL_FILE },
        { "gamma/snapshots/g1/domain.xml", VIEW_SNAP_FILE },
    };
    static const struct {
        const char *path;
        int code;
    } missing[] = {
        { "nosuch", G_FILE_ERROR_NOENT },
        { "ctl/create", G_FILE_ERROR_NOENT },          /* a domain's, not the top's */
        { "alpha/nosuch", G_FILE_ERROR_NOENT },
        { "alpha/ctl/define", G_FILE_ERROR_NOENT },
        { "beta/current", G_FILE_ERROR_NOENT },        /* no snapshots */
        { "alpha/snapshots/nosuch", G_FILE_ERROR_NOENT },
        { "alpha/snapshots/s1/parent", G_FILE_ERROR_NOENT },   /* a root */
        { "alpha/snapshots/s1/nosuch", G_FILE_ERROR_NOENT },
        { "alpha/snapshots/s4/domain.xml", G_FILE_ERROR_NOENT },   /* none in its XML */
        { "alpha/snapshots/s4/disks", G_FILE_ERROR_NOENT },
        { "alpha/snapshots/s1/children/s3", G_FILE_ERROR_NOENT },  /* a grandchild */
        { "alpha/snapshots/s1/children/nosuch", G_FILE_ERROR_NOENT },
        { "alpha/disks/vdb", G_FILE_ERROR_NOENT },
        { "alpha/disks/vdb.xml", G_FILE_ERROR_NOENT },
        { "alpha/disks/vda[2]", G_FILE_ERROR_NOENT },  /* the chain has two elements */
        { "alpha/disks/vda[0]", G_FILE_ERROR_NOENT },
        { "alpha/disks/vda[1].xml", G_FILE_ERROR_NOENT },
        { "alpha/disks/vda[1]/backing", G_FILE_ERROR_NOENT },   /* the base */
        { "alpha/disks/vda/nosuch", G_FILE_ERROR_NOENT },
        { "alpha/..", G_FILE_ERROR_NOENT },
        { "alpha/domain.xml/x", G_FILE_ERROR_NOTDIR },
        { "alpha/current/x", G_FILE_ERROR_NOTDIR },
    };

    for (guint i = 0; i < G_N_ELEMENTS(found); i++) {
        g_autoptr(ViewNode) node = node_at(f->view, found[i].path);

        g_assert_cmpint(node->kind, ==, found[i].kind);
    }
    for (guint i = 0; i < G_N_ELEMENTS(missing); i++)
        assert_lookup_fails(f->view, missing[i].path, missing[i].code);
    {
        g_autoptr(ViewNode) dir = node_at(f->view, "alpha/snapshots/s1/children");
        g_autoptr(ViewNode) file = node_at(f->view, "alpha/uuid");
        g_autoptr(GError) error = NULL;

        g_assert_true(view_is_dir(f->view, dir, &error));
        g_assert_no_error(error);
        g_assert_false(view_is_dir(f->view, file, &error));
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR);
    }
}

static void
test_readdir(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *path;
        const char *names;
    } dirs[] = {
        { "", "ctl/ alpha/ beta/ gamma/" },
        { "ctl", "define undefine result" },
        { "alpha", "ctl/ domain.xml domain.secure.xml uuid genid tree snapshots.tsv job "
                   "backup.xml state current@ disks/ snapshots/" },
        { "beta", "ctl/ domain.xml domain.secure.xml uuid genid tree snapshots.tsv job "
                  "backup.xml state disks/ snapshots/" },
        { "alpha/ctl", "create create-no-metadata redefine redefine-current import revert "
                       "delete genid backup result" },
        { "alpha/snapshots", "s1/ s2/ s3/ s4/" },
        { "alpha/snapshots/s1", "snapshot.xml snapshot.secure.xml domain.xml description "
                                "state creationTime children/ disks/" },
        { "alpha/snapshots/s3", "snapshot.xml snapshot.secure.xml domain.xml description "
                                "state creationTime parent@ children/ disks/" },
        /* no <domain>: no domain.xml, no disks/ */
        { "alpha/snapshots/s4", "snapshot.xml snapshot.secure.xml description state "
                                "creationTime parent@ children/" },
        { "alpha/snapshots/s1/children", "s2@ s4@" },
        { "alpha/snapshots/s3/children", "" },
        { "alpha/disks", "vda/ vda[1]/ vda.xml" },
        { "alpha/disks/vda", "source type format info data partitions.tsv backing@ files/" },
        { "alpha/disks/vda[1]", "source type format info data partitions.tsv files/" },
        { "alpha/snapshots/s1/disks", "vda/ vda.xml" },
        { "beta/snapshots", "" },
        { "beta/disks", "vda/ vda.xml" },
        { "gamma/snapshots", "g1/ g2/" },
        { "gamma/snapshots/g2", "snapshot.xml snapshot.secure.xml domain.xml description "
                                "state creationTime parent@ children/ disks/" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
        g_autofree char *names = names_at(f->view, dirs[i].path);

        g_assert_cmpstr(names, ==, dirs[i].names);
    }
    /* A light load lists without making any snapshot full. */
    g_assert_cmpuint(f->fix->fulls, ==, 0);
}

static void
test_stat(Fixture *f, gconstpointer data)
{
    ViewNode root = { VIEW_ROOT, NULL, NULL, NULL, NULL };
    struct stat st;
    guint files = 0;

    walk_tree(f->view, &root, &files);
    g_assert_cmpuint(files, >, 100);
    st = stat_at(f->view, "");
    g_assert_cmpuint(st.st_nlink, ==, 2 + 1 + 3);
    st = stat_at(f->view, "alpha");
    g_assert_cmpuint(st.st_nlink, ==, 2 + 3);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, f->fix->mtime.tv_sec);
    g_assert_cmpint(st.st_mtim.tv_nsec, ==, f->fix->mtime.tv_nsec);
    st = stat_at(f->view, "alpha/snapshots");
    g_assert_cmpuint(st.st_nlink, ==, 2 + 4);
    st = stat_at(f->view, "alpha/snapshots/s2");
    g_assert_cmpint(st.st_mtim.tv_sec, ==, 1700000002);
    st = stat_at(f->view, "alpha/disks/vda/data");
    g_assert_cmpuint(st.st_size, ==, FIX_IMG_SIZE);
    g_assert_cmpuint(st.st_blocks, >, 0);
    st = stat_at(f->view, "gamma/snapshots/g1/disks/vda/data");
    g_assert_cmpuint(st.st_size, ==, FIX_IMG_SIZE);
}

static void
test_content(Fixture *f, gconstpointer data)
{
    FixDomain *alpha = g_hash_table_lookup(f->fix->domains, "alpha");
    g_autoptr(DomainDef) def = domain_parse(alpha->xml, strlen(alpha->xml), 0, NULL);
    g_autofree char *want_dom = domain_format(def, 0);
    g_autofree char *want_secure = domain_format(def, DOMAIN_FORMAT_SECURE);
    g_autoptr(SnapshotDef) s2 = fix_snap_parse(alpha->snaps->pdata[1], NULL);
    g_autofree char *want_snap = snapshot_format(s2, 0);
    g_autofree char *want_snap_dom = domain_format(s2->dom, 0);
    g_autofree char *top = img("top.qcow2");
    g_autofree char *base = img("base.raw");
    g_autofree char *want_source = g_strdup_printf("%s\n", top);
    g_autofree char *want_base = g_strdup_printf("%s\n", base);
    g_autofree char *want_image = g_strdup_printf("image: %s\nformat: qcow2\n"
                                                  "virtual-size: %d\n", top, FIX_IMG_SIZE);
    static const struct {
        const char *path;
        const char *text;
    } fixed[] = {
        { "alpha/uuid", ALPHA_UUID "\n" },
        { "alpha/genid", ALPHA_GENID "\n" },
        { "beta/genid", "" },
        { "alpha/state", "shut off\n" },
        { "beta/state", "running\n" },
        { "alpha/job", "" },
        { "alpha/backup.xml", "" },
        /* virsh's blanks at the ends of lines included */
        { "alpha/tree", "s1\n  |\n  +- s2\n  |   |\n  |   +- s3\n  |     \n  +- s4\n    \n\n" },
        { "beta/tree", "\n" },
        { "alpha/snapshots.tsv", "s1\t\tshutoff\t1700000001\tno\t0\n"
                                 "s2\ts1\tshutoff\t1700000002\tno\t1\n"
                                 "s3\ts2\tshutoff\t1700000003\tyes\t2\n"
                                 "s4\ts1\tshutoff\t1700000004\tno\t3\n" },
        { "beta/snapshots.tsv", "" },
        { "alpha/snapshots/s1/description", "first & best\n" },
        { "alpha/snapshots/s2/description", "" },
        { "alpha/snapshots/s2/creationTime", "1700000002\n" },
        { "alpha/snapshots/s2/state", "shutoff\n" },
        { "alpha/snapshots/s4/state", "shutoff\ndeleting (interrupted)\n" },
        { "alpha/disks/vda/type", "file\n" },
        { "alpha/disks/vda/format", "qcow2\n" },
        { "alpha/disks/vda[1]/format", "raw\n" },
        { "alpha/snapshots/s1/disks/vda/format", "raw\n" },
        { "alpha/ctl/result", "" },
        { "gamma/snapshots/g1/description", "gamma one\n" },
    };
    g_autofree char *dom = text_at(f->view, "alpha/domain.xml");
    g_autofree char *secure = text_at(f->view, "alpha/domain.secure.xml");
    g_autofree char *snap = text_at(f->view, "alpha/snapshots/s2/snapshot.xml");
    g_autofree char *snap_secure = text_at(f->view, "alpha/snapshots/s2/snapshot.secure.xml");
    g_autofree char *snap_dom = text_at(f->view, "alpha/snapshots/s2/domain.xml");
    g_autofree char *source = text_at(f->view, "alpha/disks/vda/source");
    g_autofree char *source1 = text_at(f->view, "alpha/disks/vda[1]/source");
    g_autofree char *snap_source = text_at(f->view, "alpha/snapshots/s1/disks/vda/source");
    g_autofree char *info = text_at(f->view, "alpha/disks/vda/info");
    g_autofree char *info1 = text_at(f->view, "alpha/disks/vda[1]/info");
    g_autofree char *xml = text_at(f->view, "alpha/disks/vda.xml");
    /* the chain as resolved: the base found by probing, its end known */
    g_autofree char *want_xml = g_strdup_printf("<disk type='file' device='disk'>\n"
                                                "  <driver name='qemu' type='qcow2'/>\n"
                                                "  <source file='%s'/>\n"
                                                "  <backingStore type='file'>\n"
                                                "    <format type='raw'/>\n"
                                                "    <source file='%s'/>\n"
                                                "    <backingStore/>\n"
                                                "  </backingStore>\n"
                                                "  <target dev='vda' bus='virtio'/>\n"
                                                "</disk>\n", top, base);

    for (guint i = 0; i < G_N_ELEMENTS(fixed); i++) {
        g_autofree char *text = text_at(f->view, fixed[i].path);

        g_assert_cmpstr(text, ==, fixed[i].text);
    }
    g_assert_cmpstr(dom, ==, want_dom);
    g_assert_null(strstr(dom, "passwd="));
    g_assert_cmpstr(secure, ==, want_secure);
    g_assert_nonnull(strstr(secure, "passwd='secret'"));
    g_assert_cmpstr(snap, ==, want_snap);
    g_assert_nonnull(strstr(snap, "<name>s2</name>"));
    g_assert_null(strstr(snap, "passwd="));
    g_assert_nonnull(strstr(snap_secure, "passwd='secret'"));
    g_assert_cmpstr(snap_dom, ==, want_snap_dom);
    g_assert_cmpstr(source, ==, want_source);
    g_assert_cmpstr(source1, ==, want_base);
    g_assert_cmpstr(snap_source, ==, want_base);
    g_assert_true(g_str_has_prefix(info, want_image));
    g_assert_nonnull(strstr(info, "backing-file: base.raw\n"));
    g_assert_nonnull(strstr(info, "backing-format: raw\n"));
    g_assert_nonnull(strstr(info, "cluster-size: 512\n"));
    g_assert_null(strstr(info, "error:"));
    g_assert_nonnull(strstr(info1, "format: raw\n"));
    g_assert_null(strstr(info1, "backing-file:"));
    g_assert_cmpstr(xml, ==, want_xml);
    /* alpha is loaded in full: only gamma's g1 had to be made full */
    g_assert_cmpuint(f->fix->fulls, ==, 1);
}

static void
test_readlink(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *path;
        const char *target;
    } links[] = {
        { "alpha/current", "snapshots/s3" },
        { "gamma/current", "snapshots/g2" },
        { "alpha/snapshots/s3/parent", "../s2" },
        { "alpha/snapshots/s4/parent", "../s1" },
        { "alpha/snapshots/s1/children/s2", "../../s2" },
        { "alpha/snapshots/s1/children/s4", "../../s4" },
        { "alpha/disks/vda/backing", "../vda[1]" },
    };
    g_autoptr(ViewNode) file = node_at(f->view, "alpha/domain.xml");
    g_autoptr(GError) error = NULL;
    g_autofree char *none = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(links); i++) {
        g_autofree char *target = link_at(f->view, links[i].path);

        g_assert_cmpstr(target, ==, links[i].target);
    }
    none = view_readlink(f->view, file, &error);
    g_assert_null(none);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    g_clear_error(&error);

    /* ln -sfn's temporary link: in the domain directory until taken */
    g_assert_true(view_templink_add(f->view, "alpha", "current.tmp", "snapshots/s4", &error));
    g_assert_no_error(error);
    {
        g_autofree char *names = names_at(f->view, "alpha");
        g_autofree char *target = link_at(f->view, "alpha/current.tmp");
        g_autoptr(ViewNode) node = node_at(f->view, "alpha/current.tmp");
        g_autofree char *taken = NULL;

        g_assert_cmpint(node->kind, ==, VIEW_TEMP_LINK);
        g_assert_nonnull(strstr(names, " current.tmp@ "));
        g_assert_cmpstr(target, ==, "snapshots/s4");
        taken = view_templink_take(f->view, "alpha", "current.tmp");
        g_assert_cmpstr(taken, ==, "snapshots/s4");
        assert_lookup_fails(f->view, "alpha/current.tmp", G_FILE_ERROR_NOENT);
    }
}

/* The bytes of data file @path: all of it, read in odd pieces. */
static guint8 *
data_at(View *view, const char *path, gsize *len, GError **error)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(Image) image = NULL;
    g_autofree guint8 *buf = NULL;
    guint64 version = 0;
    guint64 off = 0;

    if (!(image = view_open_data(view, node, &version, error)))
        return NULL;
    g_assert_cmpuint(version, !=, 0);
    *len = image_size(image);
    buf = g_malloc(*len);
    while (off < *len) {
        gssize n = image_pread(image, buf + off, MIN(1000, *len - off), off, error);

        if (n <= 0)
            return NULL;
        off += n;
    }
    return g_steal_pointer(&buf);
}

static void
test_data(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *want_base = g_malloc(FIX_IMG_SIZE);
    g_autofree guint8 *want_top = NULL;
    g_autofree guint8 *top = NULL;
    g_autofree guint8 *base = NULL;
    g_autofree guint8 *snap = NULL;
    g_autofree guint8 *gamma = NULL;
    g_autofree guint8 *busy = NULL;
    gsize len = 0;

    for (gsize i = 0; i < FIX_IMG_SIZE; i++)
        want_base[i] = base_byte(i);
    want_top = g_memdup2(want_base, FIX_IMG_SIZE);
    memset(want_top, 0x5a, 512);

    top = data_at(f->view, "alpha/disks/vda/data", &len, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(top, len, want_top, FIX_IMG_SIZE);
    base = data_at(f->view, "alpha/disks/vda[1]/data", &len, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(base, len, want_base, FIX_IMG_SIZE);
    snap = data_at(f->view, "alpha/snapshots/s1/disks/vda/data", &len, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(snap, len, want_base, FIX_IMG_SIZE);
    /* light: the snapshot's domain is read in full for its disks */
    gamma = data_at(f->view, "gamma/snapshots/g1/disks/vda/data", &len, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(len, ==, FIX_IMG_SIZE);
    g_assert_cmpuint(gamma[0], ==, 'g');
    g_assert_cmpuint(f->fix->fulls, ==, 1);
    /* A running VM writes beta's image: the backend says no, in its words. */
    busy = data_at(f->view, "beta/disks/vda/data", &len, &error);
    g_assert_null(busy);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "written by a VM"));
}

/* A light load: snapshots made full one at a time, on demand, from the backend; a
 * snapshot that changed since the load makes the request retry on a new load. */
static void
test_light(Fixture *f, gconstpointer data)
{
    FixDomain *gamma = g_hash_table_lookup(f->fix->domains, "gamma");
    g_autoptr(SnapshotDef) g1 = fix_snap_parse(gamma->snaps->pdata[0], NULL);
    g_autofree char *want = snapshot_format(g1, 0);
    g_autofree char *names = names_at(f->view, "gamma/snapshots/g1");
    g_autofree char *xml = NULL;
    g_autofree char *again = NULL;
    g_autofree char *desc = NULL;
    g_autofree char *dom = NULL;
    guint loads;
    guint fulls;

    g_assert_cmpuint(f->fix->fulls, ==, 0);
    g_assert_nonnull(strstr(names, "domain.xml"));   /* known from the light load */
    xml = text_at(f->view, "gamma/snapshots/g1/snapshot.xml");
    g_assert_cmpstr(xml, ==, want);
    g_assert_cmpuint(f->fix->fulls, ==, 1);
    again = text_at(f->view, "gamma/snapshots/g1/snapshot.xml");
    g_assert_cmpstr(again, ==, want);
    g_assert_cmpuint(f->fix->fulls, ==, 1);   /* kept full */
    dom = text_at(f->view, "gamma/snapshots/g1/domain.xml");
    g_assert_nonnull(strstr(dom, "<name>gamma</name>"));

    /* g2 changes after the load with no event yet (the view is watching): the view
     * keeps its load until the backend fails to make g2 full from it. */
    loads = f->fix->loads;
    g_ptr_array_remove_index(gamma->snaps, 1);
    {
        g_autofree char *gdom = dom_xml("gamma", GAMMA_UUID, NULL, "gamma.raw", "raw");

        g_ptr_array_add(gamma->snaps, snap_xml("g2", "g1", 1700000012, "changed", gdom));
    }
    gamma->stamp++;
    fulls = f->fix->fulls;
    desc = text_at(f->view, "gamma/snapshots/g2/description");
    g_assert_cmpstr(desc, ==, "changed\n");
    g_assert_cmpuint(f->fix->loads, ==, loads + 1);
    g_assert_cmpuint(f->fix->fulls, ==, fulls + 2);   /* refused on the old load, then made */
}

/* Snapshots read in full beyond the view's bound go light again, with the token they
 * had, and are made full again from it when asked. */
static void
test_light_evicted(Fixture *f, gconstpointer data)
{
    FixDomain *gamma = g_hash_table_lookup(f->fix->domains, "gamma");
    g_autofree char *gdom = dom_xml("gamma", GAMMA_UUID, NULL, "gamma.raw", "raw");
    g_autofree char *first = NULL;
    g_autofree char *again = NULL;
    const guint extra = 70;   /* more than the view keeps full */
    guint fulls;

    for (guint i = 0; i < extra; i++) {
        g_autofree char *name = g_strdup_printf("h%02u", i);

        g_ptr_array_add(gamma->snaps, snap_xml(name, "g1", 1700000100 + i, name, gdom));
    }
    first = text_at(f->view, "gamma/snapshots/g1/domain.xml");
    for (guint i = 0; i < extra; i++) {
        g_autofree char *path = g_strdup_printf("gamma/snapshots/h%02u/description", i);
        g_autofree char *want = g_strdup_printf("h%02u\n", i);
        g_autofree char *text = text_at(f->view, path);

        g_assert_cmpstr(text, ==, want);
    }
    g_assert_cmpuint(f->fix->fulls, ==, 1 + extra);
    g_assert_cmpuint(f->fix->lights, >, 0);
    g_assert_cmpuint(f->fix->lights, <, 1 + extra);
    /* g1 went light first: made full again, the same */
    fulls = f->fix->fulls;
    again = text_at(f->view, "gamma/snapshots/g1/domain.xml");
    g_assert_cmpstr(again, ==, first);
    g_assert_cmpuint(f->fix->fulls, ==, fulls + 1);
    g_assert_cmpuint(f->fix->loads, ==, 1);
}

/* Writes @payload to control file @path in pieces of @piece bytes (0: at once), then
 * closes it (the last close). */
static gboolean
ctl_write(View *view, const char *path, const char *payload, gsize piece, GError **error)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(CtlWriter) w = ctl_writer_new(node);
    gsize len = strlen(payload);
    gsize off = 0;
    gboolean changed = FALSE;

    if (!piece)
        piece = MAX(len, 1);
    while (off < len) {
        gsize n = MIN(piece, len - off);

        if (!ctl_writer_write(w, view, payload + off, n, off, &changed, error))
            return FALSE;
        off += n;
    }
    return ctl_writer_flush(w, view, TRUE, &changed, error);
}

static const FixOp *
last_op(GPtrArray *ops)
{
    g_assert_cmpuint(ops->len, >, 0);
    return ops->pdata[ops->len - 1];
}

static void
test_ctl_ops(Fixture *f, gconstpointer data)
{
    g_autofree char *doc = snap_xml("n1", "s3", 1700000100, NULL, NULL);
    g_autofree char *domdoc = dom_xml("delta", "44444444-2222-3333-4444-555555555555", NULL,
                                      "base.raw", "raw");
    g_autofree char *two = g_strconcat(doc, doc, NULL);
    static const struct {
        const char *path;
        const char *payload;
        BackendOpKind op;
        const char *dom;
        const char *name;
        guint flags;
    } cases[] = {
        { "alpha/ctl/create", "n1\n", BACKEND_OP_CREATE, "alpha", "n1", 0 },
        { "alpha/ctl/create", "n2", BACKEND_OP_CREATE, "alpha", "n2", 0 },   /* at close */
        { "alpha/ctl/create-no-metadata", "n3\n", BACKEND_OP_CREATE_NO_METADATA, "alpha", "n3",
          0 },
        { "alpha/ctl/create", "q1 --quiesce\n", BACKEND_OP_CREATE, "alpha", "q1",
          BACKEND_CREATE_QUIESCE },
        { "alpha/ctl/create", "m 1 --memory --quiesce\n", BACKEND_OP_CREATE, "alpha", "m 1",
          BACKEND_CREATE_MEMORY | BACKEND_CREATE_QUIESCE },
        { "alpha/ctl/revert", "s1\n", BACKEND_OP_REVERT, "alpha", "s1", 0 },
        { "alpha/ctl/delete", "s2 --children\n", BACKEND_OP_DELETE, "alpha", "s2",
          BACKEND_DELETE_CHILDREN },
        { "alpha/ctl/delete", "--metadata --children-only\nname with  blanks\n",
          BACKEND_OP_DELETE, "alpha", "name with  blanks",
          BACKEND_DELETE_METADATA_ONLY | BACKEND_DELETE_CHILDREN_ONLY },
        { "alpha/ctl/genid", "new\n", BACKEND_OP_GENID, "alpha", "new", 0 },
        { "ctl/undefine", "beta --snapshots-metadata\n", BACKEND_OP_UNDEFINE, NULL, "beta",
          BACKEND_UNDEFINE_SNAPSHOTS_METADATA },
        { "ctl/undefine", "gamma\n", BACKEND_OP_UNDEFINE, NULL, "gamma", 0 },
    };
    static const struct {
        const char *path;
        BackendOpKind op;
        const char *dom;
    } docs[] = {
        { "alpha/ctl/create", BACKEND_OP_CREATE, "alpha" },
        { "alpha/ctl/redefine", BACKEND_OP_REDEFINE, "alpha" },
        { "alpha/ctl/redefine-current", BACKEND_OP_REDEFINE_CURRENT, "alpha" },
        { "ctl/define", BACKEND_OP_DEFINE, NULL },
    };
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        guint before = f->fix->applied->len;
        g_autofree char *dir = g_path_get_dirname(cases[i].path);
        g_autofree char *result_path = g_build_filename(dir, "result", NULL);
        g_autofree char *result = NULL;
        g_autofree char *want = NULL;
        const FixOp *op;

        g_assert_true(ctl_write(f->view, cases[i].path, cases[i].payload, 1, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(f->fix->applied->len, ==, before + 1);
        op = last_op(f->fix->applied);
        g_assert_cmpint(op->op, ==, cases[i].op);
        g_assert_cmpstr(op->dom, ==, cases[i].dom);
        g_assert_cmpstr(op->name, ==, cases[i].name);
        g_assert_null(op->xml);
        g_assert_cmpuint(op->flags, ==, cases[i].flags);
        /* checked before applied, the same request */
        g_assert_cmpint(last_op(f->fix->checked)->op, ==, cases[i].op);
        result = text_at(f->view, result_path);
        want = g_strdup_printf("fixture applied op %d\n", (int)cases[i].op);
        g_assert_cmpstr(result, ==, want);
    }
    for (guint i = 0; i < G_N_ELEMENTS(docs); i++) {
        const char *payload = docs[i].op == BACKEND_OP_DEFINE ? domdoc : doc;
        const FixOp *op;

        /* applied when its root closes: written in pieces of 7 bytes */
        g_assert_true(ctl_write(f->view, docs[i].path, payload, 7, &error));
        g_assert_no_error(error);
        op = last_op(f->fix->applied);
        g_assert_cmpint(op->op, ==, docs[i].op);
        g_assert_cmpstr(op->dom, ==, docs[i].dom);
        g_assert_null(op->name);
        g_assert_cmpuint(op->len, ==, strlen(payload) - 1);   /* up to its root's end */
        g_assert_cmpmem(op->xml, op->len, payload, strlen(payload) - 1);
    }
    /* import: every document of the stream at the close, in one operation */
    g_assert_true(ctl_write(f->view, "alpha/ctl/import", two, 100, &error));
    g_assert_no_error(error);
    g_assert_cmpint(last_op(f->fix->applied)->op, ==, BACKEND_OP_IMPORT);
    g_assert_cmpstr(last_op(f->fix->applied)->xml, ==, two);
    /* ln -sfn onto current: ctl_run with the typed request */
    {
        BackendOp req = { .op = BACKEND_OP_CURRENT, .dom = "alpha", .name = "s2" };

        g_assert_true(ctl_run(f->view, &req, &error));
        g_assert_no_error(error);
        g_assert_cmpint(last_op(f->fix->applied)->op, ==, BACKEND_OP_CURRENT);
        g_assert_cmpstr(last_op(f->fix->applied)->name, ==, "s2");
    }
    g_assert_cmpuint(f->fix->applied->len, ==,
                     G_N_ELEMENTS(cases) + G_N_ELEMENTS(docs) + 2);
    g_assert_cmpuint(f->fix->checked->len, ==, f->fix->applied->len);
}

/* A refusal of check() goes to ctl/result with its text; nothing is applied. */
static void
test_ctl_refused(Fixture *f, gconstpointer data)
{
    const char *why = "Requested operation is not valid: domain is running; use virsh";
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *want = g_strdup_printf("error: %s\n", why);
    g_autofree char *top = NULL;

    f->fix->refusal = g_strdup(why);
    g_assert_false(ctl_write(f->view, "alpha/ctl/delete", "s2 --children\n", 0, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_assert_cmpstr(error->message, ==, why);
    result = text_at(f->view, "alpha/ctl/result");
    g_assert_cmpstr(result, ==, want);
    g_assert_cmpuint(f->fix->applied->len, ==, 0);
    g_assert_cmpuint(f->fix->checked->len, ==, 1);
    g_assert_cmpint(last_op(f->fix->checked)->flags, ==, BACKEND_DELETE_CHILDREN);
    g_clear_error(&error);

    /* the backend refuses first, even a request that is invalid as written */
    g_assert_false(ctl_write(f->view, "ctl/undefine", "beta --bogus\n", 0, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    top = text_at(f->view, "ctl/result");
    g_assert_cmpstr(top, ==, want);
    g_clear_error(&error);

    /* once the backend agrees, the invalid request is refused for what it is */
    g_clear_pointer(&f->fix->refusal, g_free);
    g_assert_false(ctl_write(f->view, "ctl/undefine", "beta --bogus\n", 0, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpuint(f->fix->applied->len, ==, 0);
    g_assert_cmpuint(f->fix->checked->len, ==, 3);
}

static void
test_ctl_read_only(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;

    f->fix->parent.read_only = TRUE;
    g_assert_false(ctl_write(f->view, "alpha/ctl/revert", "s1\n", 0, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ROFS);
    g_assert_cmpstr(error->message, ==, "read-only mount");
    result = text_at(f->view, "alpha/ctl/result");
    g_assert_cmpstr(result, ==, "error: read-only mount\n");
    g_clear_error(&error);
    g_assert_false(ctl_write(f->view, "alpha/ctl/backup", "<domainbackup/>", 0, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ROFS);
    g_clear_error(&error);
    {
        BackendOp req = { .op = BACKEND_OP_CURRENT, .dom = "alpha", .name = "s2" };

        g_assert_false(ctl_run(f->view, &req, &error));
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ROFS);
    }
    /* not even asked */
    g_assert_cmpuint(f->fix->checked->len, ==, 0);
    g_assert_cmpuint(f->fix->applied->len, ==, 0);
    g_assert_cmpuint(f->fix->jobs_started, ==, 0);
}

/* A backup: the backend's job, shown in job and backup.xml, cancelled by a write. */
static void
test_backup(Fixture *f, gconstpointer data)
{
    const char *doc = "<domainbackup mode='push'/>";
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *job = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *cancelled = NULL;
    struct stat st;

    g_assert_true(ctl_write(f->view, "alpha/ctl/backup", doc, 5, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(f->fix->jobs_started, ==, 1);
    g_assert_cmpuint(f->fix->applied->len, ==, 0);   /* a job, not an operation */
    result = text_at(f->view, "alpha/ctl/result");
    g_assert_cmpstr(result, ==, "Backup started; progress in alpha/job\n");
    job = text_at(f->view, "alpha/job");
    g_assert_cmpstr(job, ==, FIX_JOB_TEXT);
    st = stat_at(f->view, "alpha/job");
    g_assert_cmpuint(st.st_size, ==, strlen(FIX_JOB_TEXT));
    xml = text_at(f->view, "alpha/backup.xml");
    g_assert_cmpstr(xml, ==, doc);

    g_assert_true(ctl_write(f->view, "alpha/ctl/backup", "cancel\n", 0, &error));
    g_assert_no_error(error);
    cancelled = text_at(f->view, "alpha/ctl/result");
    g_assert_cmpstr(cancelled, ==, "Backup of domain 'alpha' cancelled\n");
    g_assert_false(ctl_write(f->view, "alpha/ctl/backup", "cancel\n", 0, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* a second one gets the finished first as its previous */
    g_assert_true(ctl_write(f->view, "alpha/ctl/backup", doc, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(f->fix->jobs_started, ==, 2);
}

/* Replaces alpha's snapshots by s1 -> s5 (current) and bumps its stamp. */
static void
change_alpha(FixtureBackend *fix)
{
    FixDomain *alpha = g_hash_table_lookup(fix->domains, "alpha");

    g_ptr_array_set_size(alpha->snaps, 0);
    g_ptr_array_add(alpha->snaps, snap_xml("s1", NULL, 1700000001, NULL, NULL));
    g_ptr_array_add(alpha->snaps, snap_xml("s5", "s1", 1700000005, NULL, NULL));
    g_free(alpha->current);
    alpha->current = g_strdup("s5");
    g_clear_pointer(&alpha->pending_snap, g_free);
    alpha->stamp++;
}

static gboolean
has_name(GPtrArray *names, const char *name)
{
    for (guint i = 0; i < names->len; i++)
        if (strcmp(names->pdata[i], name) == 0)
            return TRUE;
    return FALSE;
}

/* view_poll() until it reports @name (a polled domain is re-examined every 300-900 ms). */
static void
poll_until(View *view, const char *name)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;

    for (;;) {
        g_autoptr(GPtrArray) changed = view_poll(view);

        if (has_name(changed, name))
            return;
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(20 * G_TIME_SPAN_MILLISECOND);
    }
}

static void
assert_changed_alpha(View *view)
{
    g_autofree char *snaps = names_at(view, "alpha/snapshots");
    g_autofree char *current = link_at(view, "alpha/current");
    g_autofree char *tsv = text_at(view, "alpha/snapshots.tsv");
    g_autoptr(ViewNode) s5 = node_at(view, "alpha/snapshots/s5");

    g_assert_cmpstr(snaps, ==, "s1/ s5/");
    g_assert_cmpstr(current, ==, "snapshots/s5");
    g_assert_cmpstr(tsv, ==, "s1\t\tshutoff\t1700000001\tno\t0\n"
                             "s5\ts1\tshutoff\t1700000005\tyes\t1\n");
    assert_lookup_fails(view, "alpha/snapshots/s3", G_FILE_ERROR_NOENT);
}

/* Polled: a changed stamp is found by view_poll(), and so is a changed domain list. */
static void
test_change_polled(Fixture *f, gconstpointer data)
{
    g_autofree char *before = names_at(f->view, "alpha/snapshots");
    g_autofree char *top = NULL;

    g_assert_cmpstr(before, ==, "s1/ s2/ s3/ s4/");
    change_alpha(f->fix);
    poll_until(f->view, "alpha");
    assert_changed_alpha(f->view);

    g_hash_table_remove(f->fix->domains, "beta");
    f->fix->list_stamp++;
    poll_until(f->view, "");
    top = names_at(f->view, "");
    g_assert_cmpstr(top, ==, "ctl/ alpha/ gamma/");
    assert_lookup_fails(f->view, "beta", G_FILE_ERROR_NOENT);
}

/* Watched: a stamp is taken again only after an event names the domain. */
static void
test_change_watched(Fixture *f, gconstpointer data)
{
    g_autofree char *before = names_at(f->view, "alpha/snapshots");
    guint loads = f->fix->loads;

    change_alpha(f->fix);
    g_usleep(400 * G_TIME_SPAN_MILLISECOND);   /* past the polling interval */
    {
        g_autoptr(GPtrArray) changed = view_poll(f->view);
        g_autofree char *still = names_at(f->view, "alpha/snapshots");

        g_assert_cmpuint(changed->len, ==, 0);
        g_assert_cmpstr(still, ==, before);
        g_assert_cmpuint(f->fix->loads, ==, loads);
    }
    g_hash_table_add(f->fix->events, g_strdup("alpha"));
    {
        g_autoptr(GPtrArray) changed = view_poll(f->view);

        g_assert_cmpuint(changed->len, ==, 1);
        g_assert_cmpstr(changed->pdata[0], ==, "alpha");
    }
    g_assert_true(has_name(f->fix->forgotten, "alpha"));   /* dropped until its next access */
    assert_changed_alpha(f->view);
    g_assert_cmpuint(f->fix->loads, ==, loads + 1);
}

/* beta runs on top.qcow2 over base.raw, numbered as libvirt numbers a running chain. */
static char *
beta_live_xml(void)
{
    g_autofree char *top = img("top.qcow2");
    g_autofree char *base = img("base.raw");
    g_autofree char *source = g_strdup_printf("<source file='%s'/>", top);
    g_autofree char *chain = g_strdup_printf("<source file='%s' index='7'/>\n"
                                             "      <backingStore type='file' index='3'>\n"
                                             "        <format type='raw'/>\n"
                                             "        <source file='%s'/>\n"
                                             "        <backingStore/>\n"
                                             "      </backingStore>", top, base);
    g_autofree char *inactive = dom_xml("beta", BETA_UUID, NULL, "top.qcow2", "qcow2");
    GString *xml = g_string_new(inactive);

    g_string_replace(xml, "<domain type='kvm'>", "<domain type='kvm' id='4'>", 1);
    g_assert_cmpuint(g_string_replace(xml, source, chain, 1), ==, 1);
    return g_string_free(xml, FALSE);
}

/* A running domain's disks/ is its live chain, labelled with libvirt's indexes; its
 * domain.xml stays the inactive definition; stopped, disks/ is the inactive one again.
 * Every element a data file reads is asked whether a qemu writes it. */
static void
test_live_disks(Fixture *f, gconstpointer data)
{
    FixDomain *beta = g_hash_table_lookup(f->fix->domains, "beta");
    g_autofree char *top = img("top.qcow2");
    g_autofree char *base = img("base.raw");
    g_autofree char *want_top = g_strdup_printf("%s\n", top);
    g_autofree char *want_base = g_strdup_printf("%s\n", base);
    g_autofree char *want_beta = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;

    beta->live = beta_live_xml();
    g_hash_table_remove_all(f->fix->busy);
    {
        g_autofree char *names = names_at(f->view, "beta/disks");
        g_autofree char *names1 = names_at(f->view, "beta/disks/vda[3]");
        g_autofree char *source = text_at(f->view, "beta/disks/vda/source");
        g_autofree char *source3 = text_at(f->view, "beta/disks/vda[3]/source");
        g_autofree char *backing = link_at(f->view, "beta/disks/vda/backing");
        g_autofree char *xml = text_at(f->view, "beta/disks/vda.xml");
        g_autofree char *dom = text_at(f->view, "beta/domain.xml");
        g_autofree guint8 *bytes = data_at(f->view, "beta/disks/vda[3]/data", &len, &error);

        g_assert_cmpstr(names, ==, "vda/ vda[3]/ vda.xml");
        g_assert_cmpstr(names1, ==, "source type format info data partitions.tsv files/");
        g_assert_cmpstr(source, ==, want_top);
        g_assert_cmpstr(source3, ==, want_base);
        g_assert_cmpstr(backing, ==, "../vda[3]");
        g_assert_nonnull(strstr(xml, "<backingStore type='file' index='3'>"));
        g_assert_nonnull(strstr(dom, "beta.raw"));   /* the inactive definition */
        g_assert_null(strstr(dom, "index="));
        g_assert_no_error(error);
        g_assert_cmpuint(len, ==, FIX_IMG_SIZE);
        g_assert_cmpuint(bytes[0], ==, base_byte(0));
    }
    assert_lookup_fails(f->view, "beta/disks/vda[1]", G_FILE_ERROR_NOENT);  /* not the depth */
    assert_lookup_fails(f->view, "beta/disks/vda[03]", G_FILE_ERROR_NOENT);
    assert_lookup_fails(f->view, "beta/disks/vda[7]", G_FILE_ERROR_NOENT);  /* the top is vda */
    assert_lookup_fails(f->view, "beta/disks/vda[3]/backing", G_FILE_ERROR_NOENT);
    /* A qemu writing an element below (a block commit into the base): every data file
     * that reads it is busy, snapshots' too; what reads above it only is not. */
    g_hash_table_add(f->fix->busy, g_strdup(base));
    {
        g_autofree guint8 *t = data_at(f->view, "beta/disks/vda/data", &len, &error);

        g_assert_null(t);
        g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
        g_clear_error(&error);
    }
    {
        g_autofree guint8 *s = data_at(f->view, "alpha/snapshots/s1/disks/vda/data", &len,
                                       &error);

        g_assert_null(s);
        g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
        g_clear_error(&error);
    }
    {
        g_autofree guint8 *g = data_at(f->view, "gamma/disks/vda/data", &len, &error);

        g_assert_no_error(error);
        g_assert_nonnull(g);
    }
    /* Stopped: the inactive definition again, its chain numbered by depth. */
    g_clear_pointer(&beta->live, g_free);
    beta->state = "shut off";
    beta->stamp++;
    poll_until(f->view, "beta");
    {
        g_autofree char *names = names_at(f->view, "beta/disks");
        g_autofree char *source = text_at(f->view, "beta/disks/vda/source");

        want_beta = img("beta.raw");
        g_assert_cmpstr(names, ==, "vda/ vda.xml");
        g_assert_true(g_str_has_prefix(source, want_beta));
    }
    assert_lookup_fails(f->view, "beta/disks/vda[3]", G_FILE_ERROR_NOENT);
}

/* An event about a domain the backend cannot watch, only poll (a daemon's lifecycle
 * event): its next access looks again at once, not after the polling interval. */
static void
test_change_event_polled(Fixture *f, gconstpointer data)
{
    g_autofree char *before = NULL;

    f->fix->polled = TRUE;
    before = names_at(f->view, "alpha/snapshots");
    g_assert_cmpstr(before, ==, "s1/ s2/ s3/ s4/");
    change_alpha(f->fix);
    g_hash_table_add(f->fix->events, g_strdup("alpha"));
    assert_changed_alpha(f->view);
}

int
main(int argc, char **argv)
{
    g_autofree char *base = NULL;
    g_autofree char *top = NULL;
    g_autofree char *beta = NULL;
    g_autofree char *gamma = NULL;
    g_autofree char *cmd = NULL;
    g_autofree guint8 *bytes = g_malloc(FIX_IMG_SIZE);
    int rc;

    g_test_init(&argc, &argv, NULL);
    imgdir = g_dir_make_tmp("snapfs-tree-XXXXXX", NULL);
    g_assert_nonnull(imgdir);
    base = img("base.raw");
    top = img("top.qcow2");
    beta = img("beta.raw");
    gamma = img("gamma.raw");
    for (gsize i = 0; i < FIX_IMG_SIZE; i++)
        bytes[i] = base_byte(i);
    g_assert_true(g_file_set_contents(base, (const char *)bytes, FIX_IMG_SIZE, NULL));
    memset(bytes, 'b', FIX_IMG_SIZE);
    g_assert_true(g_file_set_contents(beta, (const char *)bytes, FIX_IMG_SIZE, NULL));
    memset(bytes, 'g', FIX_IMG_SIZE);
    g_assert_true(g_file_set_contents(gamma, (const char *)bytes, FIX_IMG_SIZE, NULL));
    /* relative backing name, as qemu-img keeps it; 512-byte clusters keep it tiny */
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw "
                          "'%s' %d", top, FIX_IMG_SIZE);
    test_cmd(cmd);
    g_free(cmd);
    cmd = g_strdup_printf("qemu-io -f qcow2 -c 'write -q -P 0x5a 0 512' '%s'", top);
    test_cmd(cmd);

#define ADD(name, fn, watch) \
    g_test_add(name, Fixture, watch, fixture_setup, fn, fixture_teardown)
    ADD("/tree/lookup", test_lookup, NULL);
    ADD("/tree/readdir", test_readdir, NULL);
    ADD("/tree/stat", test_stat, NULL);
    ADD("/tree/content", test_content, NULL);
    ADD("/tree/readlink", test_readlink, NULL);
    ADD("/tree/data", test_data, NULL);
    ADD("/tree/light", test_light, "watched");
    ADD("/tree/light-evicted", test_light_evicted, "watched");
    ADD("/tree/ctl-ops", test_ctl_ops, NULL);
    ADD("/tree/ctl-refused", test_ctl_refused, NULL);
    ADD("/tree/ctl-read-only", test_ctl_read_only, NULL);
    ADD("/tree/backup", test_backup, NULL);
    ADD("/tree/change-polled", test_change_polled, NULL);
    ADD("/tree/change-watched", test_change_watched, "watched");
    ADD("/tree/live-disks", test_live_disks, NULL);
    ADD("/tree/change-event-polled", test_change_event_polled, "watched");
    rc = g_test_run();

    {
        const char *names[] = { "base.raw", "top.qcow2", "beta.raw", "gamma.raw" };

        for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
            g_autofree char *p = img(names[i]);

            g_unlink(p);
        }
        g_rmdir(imgdir);
    }
    g_free(imgdir);
    return rc;
}
