/* inode.c: the inode table: stable numbers per tree position, freed by forget. */
#include "inode.h"

#include <string.h>

typedef struct {
    fuse_ino_t ino;
    guint64 nlookup;
    guint64 data_version;
    guint64 reported_size;    /* st_size of the last attributes sent (G_MAXUINT64: none) */
    char *key;
    ViewNode *node;
    /* A generated text's inode stands for one version of it (0: not such an inode),
     * whose bytes and size never change, so the kernel may keep its pages. */
    guint64 text_version;
    guint64 text_size;
    guint cached_opens;       /* opens reading it through the page cache */
    gboolean retired;         /* another version came: read with direct I/O from now on */
    fuse_ino_t parent;        /* where the kernel's entry of it is, to invalidate */
    char *name;
} Inode;

struct InodeTable {
    GMutex lock;              /* guards everything below */
    GHashTable *by_key;       /* key -> Inode * (owned by by_ino) */
    GHashTable *by_ino;       /* &ino -> Inode * */
    fuse_ino_t next;
};

static void
inode_free(Inode *in)
{
    g_free(in->key);
    g_free(in->name);
    view_node_free(in->node);
    g_free(in);
}

/* A unique string for a tree position: each part length-prefixed, so names
 * holding any byte cannot collide. */
static char *
inode_key(const ViewNode *n)
{
    const char *parts[] = { n->dom, n->snap, n->disk, n->leaf };
    GString *k = g_string_new(NULL);

    g_string_append_printf(k, "%d", (int)n->kind);
    for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
        if (parts[i])
            g_string_append_printf(k, "|%zu:%s", strlen(parts[i]), parts[i]);
        else
            g_string_append(k, "|-");
    }
    return g_string_free(k, FALSE);
}

InodeTable *
inode_table_new(void)
{
    InodeTable *t = g_new0(InodeTable, 1);
    Inode *root = g_new0(Inode, 1);

    g_mutex_init(&t->lock);
    root->reported_size = G_MAXUINT64;
    t->by_key = g_hash_table_new(g_str_hash, g_str_equal);
    t->by_ino = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                      (GDestroyNotify)inode_free);
    root->ino = FUSE_ROOT_ID;
    root->nlookup = 1;
    root->node = g_new0(ViewNode, 1);
    root->node->kind = VIEW_ROOT;
    root->key = inode_key(root->node);
    g_hash_table_insert(t->by_key, root->key, root);
    g_hash_table_insert(t->by_ino, &root->ino, root);
    t->next = FUSE_ROOT_ID + 1;
    return t;
}

void
inode_table_free(InodeTable *t)
{
    if (!t)
        return;
    g_hash_table_unref(t->by_key);
    g_hash_table_unref(t->by_ino);
    g_mutex_clear(&t->lock);
    g_free(t);
}

ViewNode *
inode_get(InodeTable *t, fuse_ino_t ino)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);

    return in ? view_node_copy(in->node) : NULL;
}

fuse_ino_t
inode_ref(InodeTable *t, const ViewNode *node)
{
    return inode_ref_entry(t, node, 0, 0, 0, NULL);
}

fuse_ino_t
inode_ref_entry(InodeTable *t, const ViewNode *node, guint64 version, guint64 size,
                fuse_ino_t parent, const char *name)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    g_autofree char *key = inode_key(node);
    Inode *in;

    if (version) {
        char *versioned = g_strdup_printf("%s|v%" G_GUINT64_FORMAT, key, version);

        g_free(key);
        key = versioned;
    }
    if (!(in = g_hash_table_lookup(t->by_key, key))) {
        in = g_new0(Inode, 1);
        in->reported_size = G_MAXUINT64;
        in->ino = t->next++;
        in->key = g_steal_pointer(&key);
        in->node = view_node_copy(node);
        in->text_version = version;
        in->text_size = size;
        g_hash_table_insert(t->by_key, in->key, in);
        g_hash_table_insert(t->by_ino, &in->ino, in);
    }
    if (version && name) {
        in->parent = parent;
        g_free(in->name);
        in->name = g_strdup(name);
    }
    in->nlookup++;
    return in->ino;
}

/* Makes text inode @in read with direct I/O from now on, and unreachable by position:
 * a lookup of the same version again gets a new inode, with no stale size. Lock held. */
static void
inode_retire(InodeTable *t, Inode *in)
{
    if (in->retired)
        return;
    in->retired = TRUE;
    g_hash_table_remove(t->by_key, in->key);
    g_free(in->key);
    in->key = g_strdup_printf("retired|%" G_GUINT64_FORMAT, (guint64)in->ino);
    g_hash_table_insert(t->by_key, in->key, in);
}

InodeText
inode_text_access(InodeTable *t, fuse_ino_t ino, guint64 version, gboolean open,
                  guint64 *size, guint64 *own)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);

    if (!in || !in->text_version)
        return INODE_TEXT_NONE;
    if (!in->retired && (in->text_version == version || in->cached_opens > 0)) {
        /* Its pages and size are its own version's, which page-cache readers read
         * (and, while one does, the version it stands for). */
        if (open)
            in->cached_opens++;
        *size = in->text_size;
        *own = in->text_version;
        return in->text_version == version ? INODE_TEXT_SAME : INODE_TEXT_HELD;
    }
    inode_retire(t, in);
    return INODE_TEXT_RETIRED;
}

void
inode_text_close(InodeTable *t, fuse_ino_t ino)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);

    if (in && in->cached_opens)
        in->cached_opens--;
}

void
inode_entry_free(InodeEntry *e)
{
    if (!e)
        return;
    g_free(e->name);
    g_free(e);
}

GPtrArray *
inode_list_texts(InodeTable *t, const char *dom)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)inode_entry_free);
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, t->by_ino);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Inode *in = v;
        InodeEntry *e;

        if (!in->text_version || in->retired || !in->name || in->node->kind == VIEW_DOM_FILE ||
            (dom && g_strcmp0(in->node->dom, dom) != 0))
            continue;
        e = g_new0(InodeEntry, 1);
        e->parent = in->parent;
        e->name = g_strdup(in->name);
        g_ptr_array_add(out, e);
    }
    return out;
}

fuse_ino_t
inode_peek(InodeTable *t, const ViewNode *node)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    g_autofree char *key = inode_key(node);
    Inode *in = g_hash_table_lookup(t->by_key, key);

    return in ? in->ino : 0;
}

void
inode_forget(InodeTable *t, fuse_ino_t ino, guint64 nlookup)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);

    if (!in || ino == FUSE_ROOT_ID)
        return;
    in->nlookup = nlookup >= in->nlookup ? 0 : in->nlookup - nlookup;
    if (in->nlookup == 0) {
        g_hash_table_remove(t->by_key, in->key);
        g_hash_table_remove(t->by_ino, &key);
    }
}

gboolean
inode_data_version_same(InodeTable *t, fuse_ino_t ino, guint64 version)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);
    gboolean same;

    if (!in)
        return FALSE;
    /* 0: never opened since the kernel learnt of this inode, so it holds no pages. */
    same = in->data_version == version || in->data_version == 0;
    in->data_version = version;
    return same;
}

void
inode_note_size(InodeTable *t, fuse_ino_t ino, guint64 size)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);

    if (in)
        in->reported_size = size;
}

gboolean
inode_size_reported(InodeTable *t, fuse_ino_t ino, guint64 size)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    guint64 key = ino;
    Inode *in = g_hash_table_lookup(t->by_ino, &key);

    return in && in->reported_size == size;
}

guint
inode_count(InodeTable *t)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);

    return g_hash_table_size(t->by_ino);
}

GArray *
inode_list_domain(InodeTable *t, const char *dom)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    GArray *out = g_array_new(FALSE, FALSE, sizeof(guint64));
    GHashTableIter it;
    gpointer v;

    g_hash_table_iter_init(&it, t->by_ino);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Inode *in = v;
        guint64 ino = in->ino;

        if (in->node->kind == VIEW_CTL_FILE || in->node->kind == VIEW_CTL_DIR)
            continue;
        if (in->text_version && !in->retired)
            continue;
        if (dom && g_strcmp0(in->node->dom, dom) != 0 && in->ino != FUSE_ROOT_ID)
            continue;
        g_array_append_val(out, ino);
    }
    return out;
}

void
inode_retarget(InodeTable *t, const ViewNode *from, const ViewNode *to)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&t->lock);
    g_autofree char *from_key = inode_key(from);
    g_autofree char *to_key = inode_key(to);
    Inode *in = g_hash_table_lookup(t->by_key, from_key);
    Inode *old = g_hash_table_lookup(t->by_key, to_key);

    if (!in)
        return;
    g_hash_table_remove(t->by_key, from_key);
    if (old) {
        /* Unreachable by position; its key must differ from every live one. */
        g_hash_table_remove(t->by_key, to_key);
        g_free(old->key);
        old->key = g_strdup_printf("replaced|%" G_GUINT64_FORMAT, (guint64)old->ino);
        g_hash_table_insert(t->by_key, old->key, old);
    }
    g_free(in->key);
    in->key = g_steal_pointer(&to_key);
    view_node_free(in->node);
    in->node = view_node_copy(to);
    g_hash_table_insert(t->by_key, in->key, in);
}
