/* node.c: the tree's schema: node kinds and generated files in one table, and what
 * each node is (lookup, listing, attributes, content, link target, a disk's bytes). */
#include "cache.h"

#include <string.h>

#include "error.h"
#include "util.h"

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

static void
view_dirent_add(GPtrArray *ents, const char *name, mode_t type)
{
    ViewDirent *e = g_new0(ViewDirent, 1);

    e->name = g_strdup(name);
    e->type = type;
    g_ptr_array_add(ents, e);
}

/* ---- the schema: one row per node kind, one row per generated file ----------------
 *
 * A node kind's row says what it is (directory, file, link), which children it has
 * (fixed names, the generated files of a file kind, names that depend on the domain),
 * when it exists, and how its content or link target is made. A generated file's row
 * gives its name, how it is made and what sets it apart (secret, changing without a
 * reload, present only with a captured <domain>, a disk's bytes). Adding a file to the
 * tree is one row and one function. Every function runs with View.lock held, on the
 * version of the domain its request took (view_exists() took it). */

typedef enum {
    VIEW_LEAF_SECURE = 1 << 0,     /* mode 0400: secrets, a disk's bytes */
    VIEW_LEAF_LIVE = 1 << 1,       /* changes without a reload of its domain: never kept */
    VIEW_LEAF_NEEDS_DOM = 1 << 2,  /* only when the snapshot captured a <domain> */
    VIEW_LEAF_DATA = 1 << 3,       /* a disk's guest view (view_open_data()), not generated */
    VIEW_LEAF_RUNNING = 1 << 4,    /* only while the domain runs */
    VIEW_LEAF_GUEST = 1 << 5,      /* made from the guest's disk, outside the lock
                                      (tree/guest.c); exists while `data` does */
} ViewLeafFlags;

typedef char *(*ViewMakeFunc)(ViewReq *r, const ViewNode *node, GError **error);

typedef struct {
    const char *name;
    ViewMakeFunc make;
    guint flags;
} ViewLeaf;

/* The definition of domain-level files. */
static const DomainDef *
view_leaf_domain(ViewReq *r)
{
    return r->ver->sd->def;
}

static char *
view_make_domain_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    return domain_format(view_leaf_domain(r), 0);
}

static char *
view_make_domain_secure_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    return domain_format(view_leaf_domain(r), DOMAIN_FORMAT_SECURE);
}

static char *
view_make_uuid(ViewReq *r, const ViewNode *node, GError **error)
{
    char uuid[UTIL_UUID_STRLEN + 1];

    util_uuid_format(view_leaf_domain(r)->uuid, uuid);
    return g_strdup_printf("%s\n", uuid);
}

static char *
view_make_genid(ViewReq *r, const ViewNode *node, GError **error)
{
    const DomainDef *def = view_leaf_domain(r);
    char uuid[UTIL_UUID_STRLEN + 1];

    if (!def->has_genid)
        return g_strdup("");
    util_uuid_format(def->genid, uuid);
    return g_strdup_printf("%s\n", uuid);
}

static char *
view_make_tree(ViewReq *r, const ViewNode *node, GError **error)
{
    /* Plain virsh ends every command's output with one more newline:
     * `virsh snapshot-list NAME --tree` is this file byte for byte. */
    g_autofree char *t = snaptree_render_tree(r->ver->sd->snaps, NULL, FALSE);

    return g_strconcat(t, "\n", NULL);
}

static char *
view_make_tsv(ViewReq *r, const ViewNode *node, GError **error)
{
    return snaptree_render_tsv(r->ver->sd->snaps);
}

static char *
view_make_job(ViewReq *r, const ViewNode *node, GError **error)
{
    BackendJob *job = g_hash_table_lookup(r->view->jobs, node->dom);

    return job ? backend_job_describe(r->view->backend, job) : g_strdup("");
}

static char *
view_make_backup_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    BackendJob *job = g_hash_table_lookup(r->view->jobs, node->dom);

    return job ? backend_job_xml(r->view->backend, job) : g_strdup("");
}

static char *
view_make_domain_state(ViewReq *r, const ViewNode *node, GError **error)
{
    /* Asked at each open: a domain starts and stops without a change of its definition. */
    const char *state = backend_domain_state(r->view->backend, node->dom, error);

    return state ? g_strdup_printf("%s\n", state) : NULL;
}

/* What `virsh dumpxml` prints of a running domain, as its backend gives it. */
static char *
view_make_live_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    g_autoptr(GError) local = NULL;
    char *xml = backend_live_xml(r->view->backend, node->dom,
                                 strcmp(node->leaf, "domain.live.secure.xml") == 0, &local);

    if (!xml && !local)
        view_set_noent(error, node->leaf);   /* stopped since the lookup */
    else if (!xml)
        g_propagate_error(error, g_steal_pointer(&local));
    return xml;
}

static const ViewLeaf view_dom_leaves[] = {
    { "domain.xml", view_make_domain_xml, 0 },
    { "domain.secure.xml", view_make_domain_secure_xml, VIEW_LEAF_SECURE },
    { "uuid", view_make_uuid, 0 },
    { "genid", view_make_genid, 0 },
    { "tree", view_make_tree, 0 },
    { "snapshots.tsv", view_make_tsv, 0 },
    { "job", view_make_job, VIEW_LEAF_LIVE },
    { "backup.xml", view_make_backup_xml, VIEW_LEAF_LIVE },
    { "state", view_make_domain_state, VIEW_LEAF_LIVE },
    { "domain.live.xml", view_make_live_xml, VIEW_LEAF_LIVE | VIEW_LEAF_RUNNING },
    { "domain.live.secure.xml", view_make_live_xml,
      VIEW_LEAF_LIVE | VIEW_LEAF_RUNNING | VIEW_LEAF_SECURE },
    { NULL },
};

/* The full definition of the snapshot of a snapshot-level file. */
static const SnapshotDef *
view_leaf_snapshot(ViewReq *r, const ViewNode *node, GError **error)
{
    SnapNode *sn = snaptree_lookup(r->ver->sd->snaps, node->snap);

    return view_snap_full(r, sn, error) ? sn->def : NULL;
}

static char *
view_make_snapshot_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    const SnapshotDef *def = view_leaf_snapshot(r, node, error);

    return def ? snapshot_format(def, 0) : NULL;
}

static char *
view_make_snapshot_secure_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    const SnapshotDef *def = view_leaf_snapshot(r, node, error);

    return def ? snapshot_format(def, SNAPSHOT_FORMAT_SECURE) : NULL;
}

static char *
view_make_snapshot_domain_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    const SnapshotDef *def = view_leaf_snapshot(r, node, error);

    return def ? domain_format(def->dom, 0) : NULL;
}

static char *
view_make_description(ViewReq *r, const ViewNode *node, GError **error)
{
    const SnapshotDef *def = view_leaf_snapshot(r, node, error);

    if (!def)
        return NULL;
    return def->description ? g_strdup_printf("%s\n", def->description) : g_strdup("");
}

static char *
view_make_snapshot_state(ViewReq *r, const ViewNode *node, GError **error)
{
    const SnapshotDef *def = view_leaf_snapshot(r, node, error);
    const char *pending = view_pending(r->ver->sd, node->snap);

    if (!def)
        return NULL;
    return g_strdup_printf("%s\n%s%s", snapshot_state_to_string(def->state),
                           pending ? pending : "", pending ? "\n" : "");
}

static char *
view_make_creation_time(ViewReq *r, const ViewNode *node, GError **error)
{
    const SnapshotDef *def = view_leaf_snapshot(r, node, error);

    return def ? g_strdup_printf("%" G_GINT64_FORMAT "\n", def->creation_time) : NULL;
}

static const ViewLeaf view_snap_leaves[] = {
    { "snapshot.xml", view_make_snapshot_xml, 0 },
    { "snapshot.secure.xml", view_make_snapshot_secure_xml, VIEW_LEAF_SECURE },
    { "domain.xml", view_make_snapshot_domain_xml, VIEW_LEAF_NEEDS_DOM },
    { "description", view_make_description, 0 },
    { "state", view_make_snapshot_state, 0 },
    { "creationTime", view_make_creation_time, 0 },
    { NULL },
};

static char *
view_make_source(ViewReq *r, const ViewNode *node, GError **error)
{
    ChainLayer *layer = view_layer_get(r->ver, node, error);
    g_autofree char *d = layer ? storage_source_describe(layer->src) : NULL;

    return layer ? g_strdup_printf("%s\n", d) : NULL;
}

static char *
view_make_type(ViewReq *r, const ViewNode *node, GError **error)
{
    ChainLayer *layer = view_layer_get(r->ver, node, error);

    return layer ? g_strdup_printf("%s\n", storage_type_to_string(layer->src->type)) : NULL;
}

static char *
view_make_format(ViewReq *r, const ViewNode *node, GError **error)
{
    ChainLayer *layer = view_layer_get(r->ver, node, error);
    const char *fmt;

    if (!layer)
        return NULL;
    fmt = layer->src->format ? layer->src->format
          : layer->info && layer->info->format ? layer->info->format : "";
    return *fmt ? g_strdup_printf("%s\n", fmt) : g_strdup("");
}

static char *
view_make_info(ViewReq *r, const ViewNode *node, GError **error)
{
    ChainLayer *layer = view_layer_get(r->ver, node, error);
    const char *pending = view_pending(r->ver->sd, node->snap);
    g_autofree char *d = NULL;
    const StorageSource *src;
    QcowInfo *info;
    GString *out;

    if (!layer)
        return NULL;
    src = layer->src;
    info = layer->info;
    d = storage_source_describe(src);
    out = g_string_new(NULL);
    g_string_append_printf(out, "image: %s\n", d);
    if (info) {
        g_string_append_printf(out, "format: %s\n", src->format ? src->format : info->format);
        g_string_append_printf(out, "virtual-size: %" G_GUINT64_FORMAT "\n", info->virtual_size);
        g_string_append_printf(out, "file-size: %" G_GUINT64_FORMAT "\n", info->file_size);
        g_string_append_printf(out, "allocated: %" G_GUINT64_FORMAT "\n", info->allocated);
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
    if (pending)
        g_string_append_printf(out, "snapshot: %s\n", pending);
    return g_string_free(out, FALSE);
}

static const ViewLeaf view_disk_leaves[] = {
    { "source", view_make_source, 0 },
    { "type", view_make_type, 0 },
    { "format", view_make_format, 0 },
    { "info", view_make_info, 0 },
    { "data", NULL, VIEW_LEAF_DATA | VIEW_LEAF_SECURE },
    { "partitions.tsv", NULL, VIEW_LEAF_GUEST },
    { NULL },
};

static char *
view_make_ctl(ViewReq *r, const ViewNode *node, GError **error)
{
    const char *text = g_hash_table_lookup(r->view->results, node->dom ? node->dom : "");

    return g_strdup(view_ctl_is_result(node) && text ? text : "");
}

/* Shows the chain as resolved (XML plus probing) under a copy of the disk. */
static char *
view_make_disk_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    const DomainDef *def = view_disks_def(r, node->snap, error);
    DiskDef *disk = def ? domain_disk_by_name(def, node->disk) : NULL;
    Chain *chain = view_chain_get(r->ver, node->snap, node->disk, error);
    g_autoptr(DomainDef) copy = NULL;
    DiskDef *cdisk;

    if (!disk || !chain)
        return NULL;
    copy = domain_copy(def);
    cdisk = domain_disk_by_name(copy, node->disk);
    domain_disk_set_source(copy, cdisk, chain_to_source(chain), FALSE);
    /* Live formatting keeps the probed (detected) chain members. */
    return domain_disk_format(copy, cdisk, DOMAIN_FORMAT_LIVE);
}

/* Existence checks beyond "its domain is loaded". */

static gboolean
view_exists_current(ViewReq *r, const ViewNode *node, GError **error)
{
    return r->ver->sd->snaps->current ? TRUE : view_set_noent(error, "current");
}

/* A snapshot's disks/ exists when it captured a <domain>: known without reading the
 * snapshot in full, so that listing a snapshot's directory does not read its file. */
static gboolean
view_exists_disks(ViewReq *r, const ViewNode *node, GError **error)
{
    SnapNode *sn;

    if (!node->snap)
        return TRUE;
    if (!(sn = view_snap_get(r->ver, node->snap, error)))
        return FALSE;
    return view_snap_has_dom(sn) ? TRUE : view_set_noent(error, "disks");
}

static const ViewLeaf *view_leaf_find(ViewKind kind, const char *name);

static gboolean
view_exists_layer(ViewReq *r, const ViewNode *node, GError **error)
{
    ChainLayer *layer = view_layer_get(r->ver, node, error);
    const ViewLeaf *leaf;

    if (!layer)
        return FALSE;
    if (node->kind == VIEW_DISK_BACKING) {
        guint pos;
        Chain *chain = view_layer_find(r->ver, node, &pos, error);

        return pos + 1 < chain->layers->len ? TRUE : view_set_noent(error, "backing");
    }
    if (node->kind == VIEW_DISK_FILE && (leaf = view_leaf_find(node->kind, node->leaf)) &&
        (leaf->flags & (VIEW_LEAF_DATA | VIEW_LEAF_GUEST)) && !view_data_ok(r->ver, node))
        return view_set_noent(error, node->leaf);
    if (node->kind == VIEW_GUEST_FILES && !view_data_ok(r->ver, node))
        return view_set_noent(error, "files");
    return TRUE;
}

static gboolean
view_exists_disk_xml(ViewReq *r, const ViewNode *node, GError **error)
{
    return view_chain_get(r->ver, node->snap, node->disk, error) != NULL;
}

static gboolean
view_exists_snap(ViewReq *r, const ViewNode *node, GError **error)
{
    return view_snap_get(r->ver, node->snap, error) != NULL;
}

static gboolean
view_exists_dom_file(ViewReq *r, const ViewNode *node, GError **error)
{
    const ViewLeaf *leaf = view_leaf_find(node->kind, node->leaf);
    g_autofree char *xml = NULL;

    if (!leaf)
        return view_set_noent(error, node->leaf);
    if (!(leaf->flags & VIEW_LEAF_RUNNING))
        return TRUE;
    /* Asked each time: a domain starts and stops without a change of its definition. */
    xml = backend_live_xml(r->view->backend, node->dom, FALSE, NULL);
    return xml ? TRUE : view_set_noent(error, node->leaf);
}

static gboolean
view_exists_snap_file(ViewReq *r, const ViewNode *node, GError **error)
{
    SnapNode *sn = view_snap_get(r->ver, node->snap, error);
    const ViewLeaf *leaf = view_leaf_find(node->kind, node->leaf);

    if (!sn)
        return FALSE;
    if (!leaf || ((leaf->flags & VIEW_LEAF_NEEDS_DOM) && !view_snap_has_dom(sn)))
        return view_set_noent(error, node->leaf);
    return TRUE;
}

static gboolean
view_exists_parent(ViewReq *r, const ViewNode *node, GError **error)
{
    SnapNode *sn = view_snap_get(r->ver, node->snap, error);

    if (!sn)
        return FALSE;
    return sn->parent ? TRUE : view_set_noent(error, "parent");
}

static gboolean
view_exists_child(ViewReq *r, const ViewNode *node, GError **error)
{
    SnapNode *sn = view_snap_get(r->ver, node->snap, error);
    SnapNode *child;

    if (!sn)
        return FALSE;
    child = snaptree_lookup(r->ver->sd->snaps, node->leaf);
    return child && child->parent == sn ? TRUE : view_set_noent(error, node->leaf);
}

/* Link targets. */

static char *
view_link_current(ViewReq *r, const ViewNode *node, GError **error)
{
    return g_strdup_printf("snapshots/%s", r->ver->sd->snaps->current->def->name);
}

static char *
view_link_parent(ViewReq *r, const ViewNode *node, GError **error)
{
    SnapNode *sn = snaptree_lookup(r->ver->sd->snaps, node->snap);

    return g_strdup_printf("../%s", sn->parent->def->name);
}

static char *
view_link_child(ViewReq *r, const ViewNode *node, GError **error)
{
    return g_strdup_printf("../../%s", node->leaf);
}

static char *
view_link_temp(ViewReq *r, const ViewNode *node, GError **error)
{
    g_autofree char *key = g_strdup_printf("%s/%s", node->dom, node->leaf);

    return g_strdup(g_hash_table_lookup(r->view->templinks, key));
}

static char *
view_link_backing(ViewReq *r, const ViewNode *node, GError **error)
{
    guint pos;
    Chain *chain = view_layer_find(r->ver, node, &pos, error);

    return g_strdup_printf("../%s", ((ChainLayer *)chain->layers->pdata[pos + 1])->label);
}

/* Children whose names depend on the domain: the node for @name (not checked) or NULL,
 * and every such child that exists, in order. */

static ViewNode *
view_named_root(View *view, const ViewNode *parent, const char *name)
{
    ViewNode *n = g_new0(ViewNode, 1);

    n->kind = VIEW_DOM;
    n->dom = g_strdup(name);
    return n;
}

static void
view_list_root(ViewReq *r, const ViewNode *node, GPtrArray *ents)
{
    View *view = r->view;

    view_refresh_list(view);
    for (guint i = 0; i < view->domain_names->len; i++)
        if (strcmp(view->domain_names->pdata[i], "ctl") != 0)
            view_dirent_add(ents, view->domain_names->pdata[i], S_IFDIR);
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
view_named_ctl(View *view, const ViewNode *parent, const char *name)
{
    if (!view_in_list(view_ctl_names(!parent->dom), name))
        return NULL;
    return view_child_new(parent, VIEW_CTL_FILE, NULL, NULL, name);
}

static void
view_list_ctl(ViewReq *r, const ViewNode *node, GPtrArray *ents)
{
    const char *const *names = view_ctl_names(!node->dom);

    for (guint i = 0; names[i]; i++)
        view_dirent_add(ents, names[i], S_IFREG);
}

static ViewNode *
view_named_dom(View *view, const ViewNode *parent, const char *name)
{
    g_autofree char *key = g_strdup_printf("%s/%s", parent->dom, name);

    if (!g_hash_table_contains(view->templinks, key))
        return NULL;
    return view_child_new(parent, VIEW_TEMP_LINK, NULL, NULL, name);
}

static void
view_list_dom(ViewReq *r, const ViewNode *node, GPtrArray *ents)
{
    g_autofree char *prefix = g_strdup_printf("%s/", node->dom);
    GHashTableIter it;
    gpointer k;

    g_hash_table_iter_init(&it, r->view->templinks);
    while (g_hash_table_iter_next(&it, &k, NULL))
        if (g_str_has_prefix(k, prefix))
            view_dirent_add(ents, (const char *)k + strlen(prefix), S_IFLNK);
}

static ViewNode *
view_named_snaps(View *view, const ViewNode *parent, const char *name)
{
    return view_child_new(parent, VIEW_SNAP, name, NULL, NULL);
}

static void
view_list_snaps(ViewReq *r, const ViewNode *node, GPtrArray *ents)
{
    g_autoptr(GPtrArray) all = snaptree_topological(r->ver->sd->snaps);

    for (guint i = 0; i < all->len; i++) {
        SnapNode *s = all->pdata[i];

        if (view_name_ok(s->def->name))
            view_dirent_add(ents, s->def->name, S_IFDIR);
    }
}

static ViewNode *
view_named_children(View *view, const ViewNode *parent, const char *name)
{
    return view_child_new(parent, VIEW_SNAP_CHILD, parent->snap, NULL, name);
}

static void
view_list_children(ViewReq *r, const ViewNode *node, GPtrArray *ents)
{
    SnapNode *sn = snaptree_lookup(r->ver->sd->snaps, node->snap);

    for (guint i = 0; i < sn->children->len; i++) {
        SnapNode *c = sn->children->pdata[i];

        if (view_name_ok(c->def->name))
            view_dirent_add(ents, c->def->name, S_IFLNK);
    }
}

static ViewNode *
view_named_disks(View *view, const ViewNode *parent, const char *name)
{
    g_autofree char *target = NULL;

    if (!g_str_has_suffix(name, ".xml") || strlen(name) <= 4)
        return view_child_new(parent, VIEW_DISK_DIR, parent->snap, name, NULL);
    target = g_strndup(name, strlen(name) - 4);
    if (strchr(target, '['))
        return NULL;
    return view_child_new(parent, VIEW_DISK_XML, parent->snap, target, NULL);
}

/* Chain labels of every disk with media, and its XML. */
static void
view_list_disks(ViewReq *r, const ViewNode *node, GPtrArray *ents)
{
    const DomainDef *def = view_disks_def(r, node->snap, NULL);

    for (guint i = 0; def && i < def->disks->len; i++) {
        DiskDef *d = def->disks->pdata[i];
        Chain *chain;
        g_autofree char *xml = NULL;

        if (!d->dst || !view_name_ok(d->dst))
            continue;
        if (!(chain = view_chain_get(r->ver, node->snap, d->dst, NULL)))
            continue;
        for (guint j = 0; j < chain->layers->len; j++)
            view_dirent_add(ents, ((ChainLayer *)chain->layers->pdata[j])->label, S_IFDIR);
        xml = g_strdup_printf("%s.xml", d->dst);
        view_dirent_add(ents, xml, S_IFREG);
    }
}

/* A directory's children, in listing order: a fixed name, the generated files of a file
 * kind, or the names that depend on the domain (the kind's named/list functions). */
typedef enum {
    VIEW_ROW_END,
    VIEW_ROW_FIXED,
    VIEW_ROW_LEAVES,
    VIEW_ROW_NAMED,
} ViewRowType;

typedef struct {
    ViewRowType type;
    const char *name;   /* VIEW_ROW_FIXED */
    ViewKind kind;      /* VIEW_ROW_FIXED: the child's; VIEW_ROW_LEAVES: the file kind */
} ViewRow;

typedef struct {
    mode_t type;                 /* S_IFDIR, S_IFREG or S_IFLNK */
    const ViewLeaf *leaves;      /* a file kind's generated files, by node->leaf */
    const ViewRow *rows;         /* a directory's children */
    /* Existence beyond a loaded domain (NULL: it exists when its domain does). */
    gboolean (*exists)(ViewReq *r, const ViewNode *node, GError **error);
    ViewNode *(*named)(View *view, const ViewNode *parent, const char *name);
    void (*list)(ViewReq *r, const ViewNode *node, GPtrArray *ents);
    ViewMakeFunc make;           /* a file kind without leaves */
    ViewMakeFunc link;           /* a link's target */
} ViewKindRow;

static const ViewRow view_root_rows[] = {
    { VIEW_ROW_FIXED, "ctl", VIEW_CTL_DIR }, { VIEW_ROW_NAMED }, { VIEW_ROW_END },
};
static const ViewRow view_named_rows[] = { { VIEW_ROW_NAMED }, { VIEW_ROW_END } };
static const ViewRow view_dom_rows[] = {
    { VIEW_ROW_FIXED, "ctl", VIEW_CTL_DIR },
    { VIEW_ROW_NAMED },
    { VIEW_ROW_LEAVES, NULL, VIEW_DOM_FILE },
    { VIEW_ROW_FIXED, "current", VIEW_DOM_CURRENT },
    { VIEW_ROW_FIXED, "disks", VIEW_DISKS },
    { VIEW_ROW_FIXED, "snapshots", VIEW_SNAPS },
    { VIEW_ROW_END },
};
static const ViewRow view_snap_rows[] = {
    { VIEW_ROW_LEAVES, NULL, VIEW_SNAP_FILE },
    { VIEW_ROW_FIXED, "parent", VIEW_SNAP_PARENT },
    { VIEW_ROW_FIXED, "children", VIEW_SNAP_CHILDREN },
    { VIEW_ROW_FIXED, "disks", VIEW_DISKS },
    { VIEW_ROW_END },
};
static const ViewRow view_disk_rows[] = {
    { VIEW_ROW_LEAVES, NULL, VIEW_DISK_FILE },
    { VIEW_ROW_FIXED, "backing", VIEW_DISK_BACKING },
    { VIEW_ROW_FIXED, "files", VIEW_GUEST_FILES },
    { VIEW_ROW_END },
};

static const ViewKindRow view_kinds[] = {
    [VIEW_ROOT] = { S_IFDIR, .rows = view_root_rows, .named = view_named_root,
                    .list = view_list_root },
    [VIEW_DOM] = { S_IFDIR, .rows = view_dom_rows, .named = view_named_dom,
                   .list = view_list_dom },
    [VIEW_DOM_FILE] = { S_IFREG, .leaves = view_dom_leaves, .exists = view_exists_dom_file },
    [VIEW_DOM_CURRENT] = { S_IFLNK, .exists = view_exists_current, .link = view_link_current },
    [VIEW_DISKS] = { S_IFDIR, .rows = view_named_rows, .exists = view_exists_disks,
                     .named = view_named_disks, .list = view_list_disks },
    [VIEW_DISK_DIR] = { S_IFDIR, .rows = view_disk_rows, .exists = view_exists_layer },
    [VIEW_DISK_FILE] = { S_IFREG, .leaves = view_disk_leaves, .exists = view_exists_layer },
    [VIEW_DISK_BACKING] = { S_IFLNK, .exists = view_exists_layer, .link = view_link_backing },
    [VIEW_DISK_XML] = { S_IFREG, .exists = view_exists_disk_xml, .make = view_make_disk_xml },
    [VIEW_SNAPS] = { S_IFDIR, .rows = view_named_rows, .named = view_named_snaps,
                     .list = view_list_snaps },
    [VIEW_SNAP] = { S_IFDIR, .rows = view_snap_rows, .exists = view_exists_snap },
    [VIEW_SNAP_FILE] = { S_IFREG, .leaves = view_snap_leaves, .exists = view_exists_snap_file },
    [VIEW_SNAP_PARENT] = { S_IFLNK, .exists = view_exists_parent, .link = view_link_parent },
    [VIEW_SNAP_CHILDREN] = { S_IFDIR, .rows = view_named_rows, .exists = view_exists_snap,
                             .named = view_named_children, .list = view_list_children },
    [VIEW_SNAP_CHILD] = { S_IFLNK, .exists = view_exists_child, .link = view_link_child },
    [VIEW_CTL_DIR] = { S_IFDIR, .rows = view_named_rows, .named = view_named_ctl,
                       .list = view_list_ctl },
    [VIEW_CTL_FILE] = { S_IFREG, .make = view_make_ctl },
    [VIEW_TEMP_LINK] = { S_IFLNK, .link = view_link_temp },
    /* Answered by tree/guest.c: the rows say only that they exist with their disk. */
    [VIEW_GUEST_FILES] = { S_IFDIR, .rows = view_named_rows, .exists = view_exists_layer },
    [VIEW_GUEST_ENTRY] = { S_IFREG, .exists = view_exists_layer },
};

gboolean
view_node_is_guest(const ViewNode *node)
{
    const ViewLeaf *leaf;

    if (node->kind == VIEW_GUEST_FILES || node->kind == VIEW_GUEST_ENTRY)
        return TRUE;
    return node->kind == VIEW_DISK_FILE && (leaf = view_leaf_find(node->kind, node->leaf)) &&
           (leaf->flags & VIEW_LEAF_GUEST);
}

static const ViewLeaf *
view_leaf_find(ViewKind kind, const char *name)
{
    const ViewLeaf *leaves = view_kinds[kind].leaves;

    for (guint i = 0; leaves && name && leaves[i].name; i++)
        if (strcmp(leaves[i].name, name) == 0)
            return &leaves[i];
    return NULL;
}

/* The generated file's row of @node, or NULL for a kind without leaves. */
static const ViewLeaf *
view_leaf_of(const ViewNode *node)
{
    return view_leaf_find(node->kind, node->leaf);
}

/* Checks that @node exists in @r's version of its domain. Lock held. */
static gboolean
view_exists(ViewReq *r, const ViewNode *node, GError **error)
{
    View *view = r->view;
    const ViewKindRow *row = &view_kinds[node->kind];
    ViewVersion *vd;

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
    return row->exists ? row->exists(r, node, error) : TRUE;
}

/* The child node @name of @parent, not checked. NULL with an error when @parent
 * cannot have it. Lock held (templinks). */
static ViewNode *
view_child_of(View *view, const ViewNode *parent, const char *name, GError **error)
{
    const ViewKindRow *prow = &view_kinds[parent->kind];
    ViewNode *n = NULL;

    if (!view_name_ok(name))
        return view_set_noent(error, name), NULL;
    if (prow->type != S_IFDIR) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "not a directory");
        return NULL;
    }
    for (const ViewRow *row = prow->rows; !n && row->type != VIEW_ROW_END; row++) {
        switch (row->type) {
        case VIEW_ROW_FIXED:
            if (strcmp(row->name, name) == 0)
                n = view_child_new(parent, row->kind, parent->snap, parent->disk, NULL);
            break;
        case VIEW_ROW_LEAVES:
            if (view_leaf_find(row->kind, name))
                n = view_child_new(parent, row->kind, parent->snap, parent->disk, name);
            break;
        case VIEW_ROW_NAMED:
            n = prow->named(view, parent, name);
            break;
        case VIEW_ROW_END:
            break;
        }
    }
    if (!n)
        view_set_noent(error, name);
    return n;
}

ViewNode *
view_lookup(View *view, const ViewNode *parent, const char *name, GError **error)
{
    g_autoptr(GMutexLocker) locker = NULL;
    g_autoptr(ViewNode) n = NULL;

    if (parent->kind == VIEW_GUEST_FILES || parent->kind == VIEW_GUEST_ENTRY)
        return view_guest_lookup(view, parent, name, error);
    locker = g_mutex_locker_new(&view->lock);
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
    const ViewLeaf *leaf = view_leaf_of(node);
    ViewMakeFunc make = leaf ? leaf->make : view_kinds[node->kind].make;
    char *s;

    if (!view_exists(r, node, error))
        return NULL;
    if (!make) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a generated file");
        return NULL;
    }
    if (!(s = make(r, node, error)))
        return NULL;
    return g_bytes_new_take(s, strlen(s));
}

static guint64 view_content_hash(GBytes *content);

GBytes *
view_read_content(View *view, const ViewNode *node, guint64 *version, GError **error)
{
    g_autoptr(GMutexLocker) locker = NULL;

    if (view_node_is_guest(node)) {
        GBytes *content = view_guest_content(view, node, error);

        if (content && version)
            *version = view_content_hash(content);
        return content;
    }
    locker = g_mutex_locker_new(&view->lock);
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
    ViewMakeFunc link = view_kinds[node->kind].link;

    if (!view_exists(r, node, error))
        return NULL;
    if (!link) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a symbolic link");
        return NULL;
    }
    return link(r, node, error);
}

char *
view_readlink(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GMutexLocker) locker = NULL;

    if (view_node_is_guest(node))
        return view_guest_readlink(view, node, error);
    locker = g_mutex_locker_new(&view->lock);
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

/* Adds child @kind (@leaf for a generated file) of @node when it exists. */
static void
view_list_child(ViewReq *r, const ViewNode *node, ViewKind kind, const char *name,
                const char *leaf, GPtrArray *ents)
{
    g_autoptr(ViewNode) c = view_child_new(node, kind, node->snap, node->disk, leaf);

    if (view_exists(r, c, NULL))
        view_dirent_add(ents, name, view_kinds[kind].type);
}

static GPtrArray *
view_readdir_locked(ViewReq *r, const ViewNode *node, GError **error)
{
    const ViewKindRow *krow = &view_kinds[node->kind];
    g_autoptr(GPtrArray) ents = g_ptr_array_new_with_free_func((GDestroyNotify)view_dirent_free);

    if (!view_exists(r, node, error))
        return NULL;
    if (krow->type != S_IFDIR) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "not a directory");
        return NULL;
    }
    if (node->kind == VIEW_DOM) {
        ViewVersion *vd = view_req_domain(r, node->dom, error);

        if (!vd)
            return NULL;
        if (!vd->sd)
            return g_steal_pointer(&ents);   /* a domain that fails to load: empty */
    }
    for (const ViewRow *row = krow->rows; row->type != VIEW_ROW_END; row++) {
        switch (row->type) {
        case VIEW_ROW_FIXED:
            view_list_child(r, node, row->kind, row->name, NULL, ents);
            break;
        case VIEW_ROW_LEAVES:
            for (const ViewLeaf *leaf = view_kinds[row->kind].leaves; leaf->name; leaf++)
                view_list_child(r, node, row->kind, leaf->name, leaf->name, ents);
            break;
        case VIEW_ROW_NAMED:
            krow->list(r, node, ents);
            break;
        case VIEW_ROW_END:
            break;
        }
    }
    return g_steal_pointer(&ents);
}

GPtrArray *
view_readdir(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GMutexLocker) locker = NULL;

    if (view_node_is_guest(node))
        return view_guest_readdir(view, node, error);
    locker = g_mutex_locker_new(&view->lock);
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

gboolean
view_is_dir(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GMutexLocker) locker = NULL;

    if (view_node_is_guest(node)) {
        struct stat st;

        if (!view_guest_stat(view, node, &st, error))
            return FALSE;
        if (S_ISDIR(st.st_mode))
            return TRUE;
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "not a directory");
        return FALSE;
    }
    locker = g_mutex_locker_new(&view->lock);
    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };

        view_req_prepare(&r, node);
        if (view_exists(&r, node, error))
            break;
        if (!view_req_retry(&r, attempt, error))
            return FALSE;
    }
    if (view_kinds[node->kind].type == S_IFDIR)
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

gboolean
view_content_fixed(const ViewNode *node)
{
    const ViewLeaf *leaf = view_leaf_of(node);

    return node->dom && view_kinds[node->kind].type == S_IFREG && node->kind != VIEW_CTL_FILE &&
           !(leaf && (leaf->flags & (VIEW_LEAF_LIVE | VIEW_LEAF_DATA)));
}

/* Size and version (hash) of generated file @node in @r's version of its domain. Fixed
 * for one load of the domain, so formatted once per load; control files and the files
 * that change without a reload (VIEW_LEAF_LIVE) are never kept. @made (optional)
 * receives the content when it had to be made now, else NULL. */
static gboolean
view_content_meta_locked(ViewReq *r, const ViewNode *node, guint64 *version, guint64 *size,
                         GBytes **made, GError **error)
{
    ViewVersion *vd = r->ver;
    const ViewLeaf *leaf = view_leaf_of(node);
    g_autofree char *key = NULL;
    g_autoptr(GBytes) content = NULL;
    ViewContentMeta *meta;

    if (vd && node->kind != VIEW_CTL_FILE && !(leaf && (leaf->flags & VIEW_LEAF_LIVE))) {
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
    g_autoptr(GMutexLocker) locker = NULL;

    if (view_node_is_guest(node)) {
        g_autoptr(GBytes) content = view_guest_content(view, node, error);

        if (!content)
            return FALSE;
        *version = view_content_hash(content);
        *size = g_bytes_get_size(content);
        if (made)
            *made = g_steal_pointer(&content);
        return TRUE;
    }
    locker = g_mutex_locker_new(&view->lock);
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
                 guint64 *version, GError **error)
{
    View *view = r->view;
    const ViewLeaf *leaf = view_leaf_of(node);
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
    switch (view_kinds[node->kind].type) {
    case S_IFDIR: {
        g_autoptr(GPtrArray) ents = view_readdir_locked(r, node, error);

        if (!ents)
            return FALSE;
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2 + view_count_dirs(ents);
        st->st_size = 4096;
        break;
    }
    case S_IFLNK: {
        g_autofree char *target = view_readlink_locked(r, node, error);

        if (!target)
            return FALSE;
        st->st_mode = S_IFLNK | 0777;
        st->st_size = strlen(target);
        break;
    }
    default: {
        guint64 text_version;
        guint64 size;

        st->st_mode = S_IFREG | (leaf && (leaf->flags & VIEW_LEAF_SECURE) ? 0400 : 0444);
        if (node->kind == VIEW_CTL_FILE && !view_ctl_is_result(node)) {
            /* Write-only; EROFS comes from the read-only mount itself. */
            st->st_mode = S_IFREG | 0200;
        } else if (leaf && (leaf->flags & VIEW_LEAF_DATA)) {
            ChainLayer *layer = view_layer_get(vd, node, error);

            st->st_size = layer->info->virtual_size;
            st->st_blocks = layer->info->allocated / 512;
            *image = g_strdup(layer->src->path);
        } else {
            if (!view_content_meta_locked(r, node, &text_version, &size, NULL, error))
                return FALSE;
            st->st_size = (off_t)size;
            if (version && view_content_fixed(node))
                *version = text_version;
        }
        break;
    }
    }
    if (S_ISREG(st->st_mode) && st->st_blocks == 0)
        st->st_blocks = (st->st_size + 511) / 512;
    st->st_atim = st->st_mtim = st->st_ctim = t;
    return TRUE;
}

gboolean
view_stat(View *view, const ViewNode *node, struct stat *st, GError **error)
{
    return view_stat_version(view, node, st, NULL, error);
}

gboolean
view_stat_version(View *view, const ViewNode *node, struct stat *st, guint64 *version,
                  GError **error)
{
    g_autofree char *image = NULL;
    struct stat ist;

    if (view_node_is_guest(node))
        return view_guest_stat(view, node, st, error);
    g_mutex_lock(&view->lock);
    for (guint attempt = 0;; attempt++) {
        g_auto(ViewReq) r = { view, NULL, FALSE };

        if (version)
            *version = 0;
        view_req_prepare(&r, node);
        if (view_stat_locked(&r, node, st, &image, version, error))
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

/* The chain and element position of the data file of @node's disk element (the data
 * file itself, or anything beside it) in @r's version. Lock held. */
static Chain *
view_data_chain(ViewReq *r, const ViewNode *node, guint *index, GError **error)
{
    ViewNode data = { VIEW_DISK_FILE, node->dom, node->snap, node->disk, (char *)"data" };

    if (!node->disk || (node->kind == VIEW_DISK_FILE && strcmp(node->leaf, "data") != 0 &&
                        !view_node_is_guest(node))) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a data file");
        return NULL;
    }
    if (!view_exists(r, &data, error))
        return NULL;
    return view_layer_find(r->ver, node, index, error);
}

/* The chain and element of the data file beside @node (@r keeps the version that holds
 * them), and @version, a fingerprint of its layers (identity, size, times), so that a
 * caller can keep what it read while they are unchanged. Refuses a domain's own disk
 * whose image a running qemu writes. Takes and releases View.lock. */
gboolean
view_data_resolve(ViewReq *r, const ViewNode *node, Chain **chain, guint *index,
                  guint64 *version, GError **error)
{
    View *view = r->view;
    guint64 v = UTIL_FNV1A_INIT;

    *index = 0;
    g_mutex_lock(&view->lock);
    for (guint attempt = 0;; attempt++) {
        view_req_prepare(r, node);
        if ((*chain = view_data_chain(r, node, index, error)))
            break;
        if (!view_req_retry(r, attempt, error)) {
            g_mutex_unlock(&view->lock);
            return FALSE;
        }
    }
    g_mutex_unlock(&view->lock);
    /* Opening and stat'ing images can wait on the outside: without the lock. The
     * chain stays valid while @r holds its version. */
    for (guint i = *index; i < (*chain)->layers->len; i++) {
        ChainLayer *layer = (*chain)->layers->pdata[i];
        struct stat st;

        if (layer->src->path && util_path_stat(layer->src->path, FALSE, &st, NULL)) {
            guint64 parts[] = { st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                                st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec };

            v = util_hash_fnv1a(v, parts, sizeof(parts));
        }
    }
    /* An image a running qemu writes changes under the reader: the top of a running
     * domain, the base a block commit writes into. Its locks say so, for every element
     * the data reads; what qemu only reads (the chain under the top, every snapshot's
     * disks as a rule) reads as usual. */
    for (guint i = *index; i < (*chain)->layers->len; i++) {
        ChainLayer *layer = (*chain)->layers->pdata[i];

        if ((layer->src->type == STORAGE_TYPE_FILE || layer->src->type == STORAGE_TYPE_BLOCK) &&
            layer->src->path && !backend_image_stable(view->backend, layer->src->path, error))
            return FALSE;
    }
    *version = v;
    return TRUE;
}

Image *
view_open_data(View *view, const ViewNode *node, guint64 *version, GError **error)
{
    g_auto(ViewReq) r = { view, NULL, FALSE };
    Chain *chain;
    guint index;

    if (node->kind != VIEW_DISK_FILE || strcmp(node->leaf, "data") != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a data file");
        return NULL;
    }
    if (!view_data_resolve(&r, node, &chain, &index, version, error))
        return NULL;
    return image_open(chain, index, error);
}
