/* users.c: which domains, snapshots and images of the whole store use or are built on an image. */
#include "users.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "chain.h"
#include "qcow.h"
#include "util.h"

#define USERS_DESCRIBE_MAX 10

/* An image file as the scan saw it, by the path that named it. */
typedef struct UsersNode UsersNode;
struct UsersNode {
    char *path;
    gboolean exists;          /* stat succeeded: dev and ino are set */
    dev_t dev;
    ino_t ino;
    gboolean read;            /* backing is known (read once, on first use) */
    UsersNode *backing;       /* the file its header names, resolved; NULL: none or remote */
    guint query;              /* the users_find() call that set @hit */
    gboolean hit;             /* the chain from here holds that call's image */
    gboolean named;           /* on the chain of some domain or snapshot */
};

/* A chain top: a disk of a domain or snapshot (its XML elements, top first), or an
 * external snapshot's overlay. */
typedef struct {
    UsersKind kind;
    const char *domain;       /* interned in UsersScan.strings */
    const char *snapshot;
    const char *disk;
    GPtrArray *elems;         /* UsersNode *, not owned */
} UsersTop;

struct UsersScan {
    GHashTable *nodes;        /* path -> UsersNode * (owned) */
    GPtrArray *tops;          /* UsersTop * (owned) */
    GStringChunk *strings;
    guint query;
};

void
image_user_free(ImageUser *user)
{
    if (!user)
        return;
    g_free(user->domain);
    g_free(user->snapshot);
    g_free(user->disk);
    g_free(user->top);
    g_free(user);
}

static void
users_node_free(UsersNode *node)
{
    g_free(node->path);
    g_free(node);
}

static void
users_top_free(UsersTop *top)
{
    g_ptr_array_unref(top->elems);
    g_free(top);
}

void
users_scan_free(UsersScan *scan)
{
    if (!scan)
        return;
    g_clear_pointer(&scan->nodes, g_hash_table_unref);
    g_clear_pointer(&scan->tops, g_ptr_array_unref);
    if (scan->strings)
        g_string_chunk_free(scan->strings);
    g_free(scan);
}

/* The node of @path (absolute); stat only: the header is read on first use. */
static UsersNode *
users_node(UsersScan *scan, const char *path)
{
    UsersNode *node = g_hash_table_lookup(scan->nodes, path);
    struct stat st;

    if (node)
        return node;
    node = g_new0(UsersNode, 1);
    node->path = g_strdup(path);
    if (util_path_stat(path, FALSE, &st, NULL)) {
        node->exists = TRUE;
        node->dev = st.st_dev;
        node->ino = st.st_ino;
    }
    g_hash_table_insert(scan->nodes, node->path, node);
    return node;
}

/* The backing file name in the header of @path, whatever format it declares: the
 * format is probed on purpose, so that an image qemu would read as qcow2 counts as
 * built on its backing file even when some XML calls it raw. Only regular files and
 * block devices outside the mount are opened (util_image_open: a FIFO never stalls the check). */
static char *
users_header_backing(const char *path)
{
    g_autofree char *fmt = NULL;
    g_auto(CoreFd) fd = -1;
    char *name = NULL;

    if ((fd = util_image_open(path, O_RDONLY, NULL, NULL)) < 0)
        return NULL;
    if (!(fmt = qcow_probe_format_fd(fd, path, NULL)))
        return NULL;
    if (strcmp(fmt, "qcow2") == 0) {
        QcowHeader hdr = { 0 };

        if (!qcow_header_read(fd, path, &hdr, NULL))
            return NULL;
        name = g_steal_pointer(&hdr.backing_name);
        qcow_header_clear(&hdr);
    } else if (strcmp(fmt, "qcow") == 0 || strcmp(fmt, "qed") == 0) {
        if (!qcow_other_backing_name(path, fmt, &name, NULL))
            return NULL;
    }
    return name;
}

/* The node @node's header names as its backing file; NULL for none, a network
 * source (nothing local to change) or an unreadable header. */
static UsersNode *
users_node_backing(UsersScan *scan, UsersNode *node)
{
    g_autofree char *name = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *abs = NULL;

    if (node->read)
        return node->backing;
    node->read = TRUE;
    if (!node->exists || !(name = users_header_backing(node->path)))
        return NULL;
    if (strstr(name, "://") || g_str_has_prefix(name, "json:") || g_str_has_prefix(name, "nbd:") ||
        g_str_has_prefix(name, "rbd:") || g_str_has_prefix(name, "fat:"))
        return NULL;
    dir = g_path_get_dirname(node->path);
    abs = g_canonicalize_filename(name, dir);
    node->backing = users_node(scan, abs);
    return node->backing;
}

static void
users_add_top(UsersScan *scan, UsersKind kind, const char *domain, const char *snapshot,
              const char *disk, const char *path)
{
    UsersTop *top = g_new0(UsersTop, 1);
    g_autofree char *abs = g_canonicalize_filename(path, "/");

    top->kind = kind;
    top->domain = g_string_chunk_insert_const(scan->strings, domain);
    top->snapshot = snapshot ? g_string_chunk_insert_const(scan->strings, snapshot) : NULL;
    top->disk = disk ? g_string_chunk_insert_const(scan->strings, disk) : NULL;
    top->elems = g_ptr_array_new();
    g_ptr_array_add(top->elems, users_node(scan, abs));
    g_ptr_array_add(scan->tops, top);
}

/* Adds @path as the next XML element of the last top when it is the same disk. */
static void
users_add_elem(UsersScan *scan, const char *path)
{
    UsersTop *top = scan->tops->pdata[scan->tops->len - 1];
    g_autofree char *abs = g_canonicalize_filename(path, "/");

    g_ptr_array_add(top->elems, users_node(scan, abs));
}

/* Pairs of snapshot_image_refs(): a new top at each new target dev. */
static void
users_add_refs(UsersScan *scan, UsersKind kind, const char *domain, const char *snapshot,
               char **refs)
{
    const char *last = NULL;

    for (guint i = 0; refs && refs[i] && refs[i + 1]; i += 2) {
        if (g_strcmp0(last, refs[i]) == 0)
            users_add_elem(scan, refs[i + 1]);
        else
            users_add_top(scan, kind, domain, snapshot, refs[i], refs[i + 1]);
        last = refs[i];
    }
}

static void
users_add_domain(UsersScan *scan, const BackendDomain *sd)
{
    const char *name = sd->def->name;
    g_autoptr(GPtrArray) snaps = snaptree_topological(sd->snaps);
    g_autoptr(GPtrArray) current = g_ptr_array_new_with_free_func(g_free);

    domain_add_image_refs(sd->def, current);
    g_ptr_array_add(current, NULL);
    users_add_refs(scan, USERS_KIND_DOMAIN, name, NULL, (char **)current->pdata);
    for (guint k = 0; k < snaps->len; k++) {
        const SnapshotDef *def = ((SnapNode *)snaps->pdata[k])->def;
        g_auto(GStrv) refs = snapshot_image_refs(def);

        users_add_refs(scan, USERS_KIND_SNAPSHOT, name, def->name, refs);
        for (guint i = 0; i < def->disks->len; i++) {
            const SnapDiskDef *d = def->disks->pdata[i];

            if (d->snapshot == SNAP_LOC_EXTERNAL && d->src->path &&
                (d->src->type == STORAGE_TYPE_FILE || d->src->type == STORAGE_TYPE_BLOCK))
                users_add_top(scan, USERS_KIND_OVERLAY, name, def->name, d->name, d->src->path);
        }
    }
}

UsersScan *
users_scan(Store *store, GError **error)
{
    g_autoptr(UsersScan) scan = g_new0(UsersScan, 1);
    g_autoptr(GPtrArray) names = store_list_domains(store, error);

    if (!names)
        return NULL;
    scan->nodes = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify)users_node_free);
    scan->tops = g_ptr_array_new_with_free_func((GDestroyNotify)users_top_free);
    scan->strings = g_string_chunk_new(4096);
    for (guint i = 0; i < names->len; i++) {
        g_autoptr(GError) local = NULL;
        g_autoptr(BackendDomain) sd = store_load_domain_light(store, names->pdata[i], &local);

        if (!sd) {
            g_debug("image users: domain '%s' left out: %s", (char *)names->pdata[i],
                    local->message);
            continue;
        }
        users_add_domain(scan, sd);
    }
    return g_steal_pointer(&scan);
}

static gboolean
users_node_is(const UsersNode *node, const struct stat *st)
{
    return node->exists && node->dev == st->st_dev && node->ino == st->st_ino;
}

/* Whether the header chain from @node holds the image @st, remembered per query so
 * that each image is followed once however many chains share it. @mark: the nodes
 * passed are on a named chain. */
static gboolean
users_reaches(UsersScan *scan, UsersNode *node, const struct stat *st, gboolean mark)
{
    g_autoptr(GPtrArray) path = g_ptr_array_new();
    gboolean hit = FALSE;

    for (UsersNode *n = node; n && path->len < CHAIN_MAX_DEPTH; n = users_node_backing(scan, n)) {
        if (mark)
            n->named = TRUE;
        if (n->query == scan->query) {
            hit = n->hit;
            break;
        }
        g_ptr_array_add(path, n);
        if (users_node_is(n, st)) {
            hit = TRUE;
            break;
        }
    }
    for (guint i = 0; i < path->len; i++) {
        UsersNode *n = path->pdata[i];

        n->query = scan->query;
        n->hit = hit;
    }
    return hit;
}

static ImageUser *
users_user_new(UsersKind kind, const char *domain, const char *snapshot, const char *disk,
               const char *top, gboolean is_top)
{
    ImageUser *user = g_new0(ImageUser, 1);

    user->kind = kind;
    user->domain = g_strdup(domain);
    user->snapshot = g_strdup(snapshot);
    user->disk = g_strdup(disk);
    user->top = g_strdup(top);
    user->is_top = is_top;
    return user;
}

/* The images in @dir that no chain names and that are built on @st. */
static void
users_find_files(UsersScan *scan, const char *dir, const struct stat *st, GPtrArray *out)
{
    g_autoptr(GDir) d = util_path_outside(dir, NULL) ? g_dir_open(dir, 0, NULL) : NULL;
    const char *ent;

    while (d && (ent = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, ent, NULL);
        UsersNode *node = users_node(scan, path);
        UsersNode *below;

        if (node->named || users_node_is(node, st) || !(below = users_node_backing(scan, node)))
            continue;
        if (users_reaches(scan, below, st, FALSE))
            g_ptr_array_add(out, users_user_new(USERS_KIND_FILE, NULL, NULL, NULL, path, FALSE));
    }
}

GPtrArray *
users_find(UsersScan *scan, const char *image, gboolean with_files)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)image_user_free);
    struct stat st;

    if (!util_path_stat(image, FALSE, &st, NULL))
        return out;
    scan->query++;
    for (guint i = 0; i < scan->tops->len; i++) {
        const UsersTop *top = scan->tops->pdata[i];
        UsersNode *first = top->elems->pdata[0];
        gboolean hit = FALSE;

        /* every element: the XML may name a chain the headers do not */
        for (guint j = 0; j < top->elems->len; j++)
            hit = users_reaches(scan, top->elems->pdata[j], &st, TRUE) || hit;
        if (hit)
            g_ptr_array_add(out, users_user_new(top->kind, top->domain, top->snapshot, top->disk,
                                                first->path, users_node_is(first, &st)));
    }
    if (with_files) {
        g_autofree char *dir = g_path_get_dirname(image);

        users_find_files(scan, dir, &st, out);
    }
    return out;
}

static char *
users_describe_one(const ImageUser *u)
{
    g_autofree char *where = u->is_top ? NULL : g_strdup_printf(", image '%s'", u->top);

    switch (u->kind) {
    case USERS_KIND_DOMAIN:
        return g_strdup_printf("domain '%s' (disk %s%s)", u->domain, u->disk,
                               where ? where : "");
    case USERS_KIND_SNAPSHOT:
        return g_strdup_printf("snapshot '%s/%s' (disk %s%s)", u->domain, u->snapshot, u->disk,
                               where ? where : "");
    case USERS_KIND_OVERLAY:
        return g_strdup_printf("snapshot '%s/%s' (overlay '%s' of disk %s)", u->domain,
                               u->snapshot, u->top, u->disk);
    case USERS_KIND_FILE:
    default:
        return g_strdup_printf("image '%s'", u->top);
    }
}

/* An overlay whose snapshot's own disk is listed already says nothing more. */
static gboolean
users_said_before(const GPtrArray *users, guint i)
{
    const ImageUser *u = users->pdata[i];

    for (guint j = 0; u->kind == USERS_KIND_OVERLAY && j < i; j++) {
        const ImageUser *o = users->pdata[j];

        if (o->kind == USERS_KIND_SNAPSHOT && g_strcmp0(o->domain, u->domain) == 0 &&
            g_strcmp0(o->snapshot, u->snapshot) == 0 && g_strcmp0(o->disk, u->disk) == 0)
            return TRUE;
    }
    return FALSE;
}

char *
users_describe(const GPtrArray *users)
{
    g_autoptr(GPtrArray) parts = g_ptr_array_new_with_free_func(g_free);
    GString *out = g_string_new(NULL);
    guint shown;

    for (guint i = 0; i < users->len; i++)
        if (!users_said_before(users, i))
            g_ptr_array_add(parts, users_describe_one(users->pdata[i]));
    shown = MIN(parts->len, USERS_DESCRIBE_MAX);
    for (guint i = 0; i < shown; i++) {
        if (i > 0)
            g_string_append(out, i + 1 == shown && shown == parts->len ? " and " : ", ");
        g_string_append(out, parts->pdata[i]);
    }
    if (shown < parts->len)
        g_string_append_printf(out, " and %u more", parts->len - shown);
    return g_string_free(out, FALSE);
}
