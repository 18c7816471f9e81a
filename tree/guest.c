/* guest.c: the guest's files beside each disk element: partitions.tsv and files/VOL/...,
 * read through core/guest/ outside View.lock, from a bounded cache of open disks. */
#include "cache.h"

#include <string.h>

#include "error.h"
#include "guest.h"
#include "util.h"

/* Disk elements kept open (their images' descriptors, their volumes' filesystems and
 * block caches): the least recently used beyond this is closed when its users are done,
 * so descriptors do not grow with the number of snapshots browsed. */
#define VIEW_GUEST_DISKS 16
/* Directory listings kept per disk element, so that the lookups of a readdirplus (one
 * per entry) do not each scan the directory again. */
#define VIEW_GUEST_DIRS 64
#define VIEW_GUEST_DIR_MAX_ENTRIES 100000

/* A volume's filesystem, opened on first use. */
typedef struct {
    GuestDev vdev;
    gpointer storage[2];
    GuestFs *fs;
} ViewGuestVol;

/* One disk element as its guest sees it, at one version of its layers. */
typedef struct {
    gatomicrefcount ref;
    char *key;
    GMutex img_lock;      /* the Image is not thread-safe */
    Image *img;
    GuestDev dev;
    GPtrArray *vols;      /* GuestVolume * */
    GBytes *tsv;
    struct timespec mtime;
    GMutex lock;          /* guards fss, dirs, dir_lru */
    GHashTable *fss;      /* volume name -> ViewGuestVol * */
    GHashTable *dirs;     /* "VOL/INO" -> ViewGuestDir *: names in that directory */
    GQueue dir_lru;
    GList link;           /* in View.guest_lru while cached */
} ViewGuestDisk;

typedef struct {
    char *key;
    GHashTable *names;    /* name -> guint64 * inode */
    GList link;           /* in ViewGuestDisk.dir_lru, most recent first */
} ViewGuestDir;

struct ViewGuestFile {
    ViewGuestDisk *disk;
    GuestFs *fs;          /* the disk's: lives as long as it */
    guint64 ino;
    guint64 size;
};

static void
view_guest_vol_free(ViewGuestVol *gv)
{
    guest_fs_close(gv->fs);
    g_free(gv);
}

static void
view_guest_dir_free(ViewGuestDir *dir)
{
    g_free(dir->key);
    g_hash_table_unref(dir->names);
    g_free(dir);
}

static void
view_guest_disk_unref(ViewGuestDisk *d)
{
    if (!d || !g_atomic_ref_count_dec(&d->ref))
        return;
    g_hash_table_unref(d->dirs);
    g_hash_table_unref(d->fss);   /* filesystems before the image they read */
    if (d->img)
        image_close(d->img);
    g_clear_pointer(&d->vols, g_ptr_array_unref);
    g_clear_pointer(&d->tsv, g_bytes_unref);
    g_mutex_clear(&d->img_lock);
    g_mutex_clear(&d->lock);
    g_free(d->key);
    g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ViewGuestDisk, view_guest_disk_unref)

static gssize
view_guest_disk_read(gpointer data, void *buf, gsize len, guint64 off, GError **error)
{
    ViewGuestDisk *d = data;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->img_lock);

    return image_pread(d->img, buf, len, off, error);
}

void
view_guest_clear(View *view)
{
    GList *l;

    while ((l = g_queue_pop_head_link(&view->guest_lru))) {
        ViewGuestDisk *d = l->data;

        g_hash_table_remove(view->guest_disks, d->key);
        view_guest_disk_unref(d);
    }
}

/* A key for a disk element at a version: each part length-prefixed. */
static char *
view_guest_key(const ViewNode *node, guint64 version)
{
    return g_strdup_printf("%zu:%s|%zu:%s|%zu:%s|%016" G_GINT64_MODIFIER "x",
                           strlen(node->dom), node->dom, node->snap ? strlen(node->snap) : 0,
                           node->snap ? node->snap : "", strlen(node->disk), node->disk,
                           version);
}

/* The disk element of @node (a new reference): from the cache while its layers are
 * unchanged, else opened and scanned now, without View.lock. */
static ViewGuestDisk *
view_guest_disk(View *view, const ViewNode *node, GError **error)
{
    g_auto(ViewReq) r = { view, NULL, FALSE };
    g_autoptr(ViewGuestDisk) d = NULL;
    g_autofree char *key = NULL;
    g_autofree char *tsv = NULL;
    g_autofree char *disk = NULL;
    ViewGuestDisk *found;
    Chain *chain;
    guint index;
    guint64 version;

    if (!view_data_resolve(&r, node, &chain, &index, &version, error))
        return NULL;
    key = view_guest_key(node, version);
    g_mutex_lock(&view->guest_lock);
    if ((found = g_hash_table_lookup(view->guest_disks, key))) {
        g_queue_unlink(&view->guest_lru, &found->link);
        g_queue_push_head_link(&view->guest_lru, &found->link);
        g_atomic_ref_count_inc(&found->ref);
        g_mutex_unlock(&view->guest_lock);
        return found;
    }
    g_mutex_unlock(&view->guest_lock);

    d = g_new0(ViewGuestDisk, 1);
    g_atomic_ref_count_init(&d->ref);
    g_mutex_init(&d->img_lock);
    g_mutex_init(&d->lock);
    d->fss = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                   (GDestroyNotify)view_guest_vol_free);
    d->dirs = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                    (GDestroyNotify)view_guest_dir_free);
    g_queue_init(&d->dir_lru);
    d->key = g_steal_pointer(&key);
    d->link.data = d;
    d->mtime = view->mount_time;
    if (!(d->img = image_open(chain, index, error)))
        return NULL;
    d->dev.read = view_guest_disk_read;
    d->dev.data = d;
    d->dev.size = image_size(d->img);
    disk = view_label_target(node->disk);   /* the guest names vda, whatever element */
    {
        g_autoptr(GError) local = NULL;

        /* A disk whose first sectors cannot be read (a damaged image) has no volumes;
         * partitions.tsv says why, so that listing the tree meets no error. */
        if (!(d->vols = guest_scan(&d->dev, disk, &local))) {
            GString *line = g_string_new(NULL);

            util_tsv_escape(line, disk);
            g_string_append_printf(line, "\t0\t0\t%" G_GUINT64_FORMAT "\t\t\t\t\t", d->dev.size);
            util_tsv_escape(line, local->message);
            g_string_append_c(line, '\n');
            d->vols = g_ptr_array_new_with_free_func((GDestroyNotify)guest_volume_free);
            d->tsv = g_bytes_new_take(line->str, line->len);
            g_string_free(line, FALSE);
        }
    }
    tsv = d->tsv ? NULL : guest_partitions_tsv(d->vols);
    if (tsv)
        d->tsv = g_bytes_new(tsv, strlen(tsv));
    {
        ChainLayer *layer = chain->layers->pdata[index];
        struct stat st;

        /* partitions.tsv and files/ change with the element's top image: its time. */
        if (layer->src->path && util_path_stat(layer->src->path, FALSE, &st, NULL))
            d->mtime = st.st_mtim;
    }

    g_mutex_lock(&view->guest_lock);
    if ((found = g_hash_table_lookup(view->guest_disks, d->key))) {
        /* Another request opened it meanwhile: theirs is the one kept. */
        g_atomic_ref_count_inc(&found->ref);
        g_mutex_unlock(&view->guest_lock);
        return found;
    }
    g_atomic_ref_count_inc(&d->ref);   /* the cache's */
    g_hash_table_insert(view->guest_disks, d->key, d);
    g_queue_push_head_link(&view->guest_lru, &d->link);
    while (view->guest_lru.length > VIEW_GUEST_DISKS) {
        ViewGuestDisk *old = g_queue_pop_tail_link(&view->guest_lru)->data;

        g_hash_table_remove(view->guest_disks, old->key);
        view_guest_disk_unref(old);   /* closed once its last user is done */
    }
    g_mutex_unlock(&view->guest_lock);
    return g_steal_pointer(&d);
}

/* The filesystem of volume @name of @d, opened on first use. Borrowed: it lives as
 * long as @d. */
static GuestFs *
view_guest_fs(ViewGuestDisk *d, const char *name, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->lock);
    ViewGuestVol *gv = g_hash_table_lookup(d->fss, name);
    const GuestVolume *vol;

    if (gv)
        return gv->fs;
    if (!(vol = guest_volume_find(d->vols, name))) {
        view_set_noent(error, name);
        return NULL;
    }
    gv = g_new0(ViewGuestVol, 1);
    guest_volume_dev(vol, &d->dev, &gv->vdev, gv->storage);
    if (!(gv->fs = guest_fs_open(&gv->vdev, vol->fstype, error))) {
        g_prefix_error(error, "%s: ", name);
        g_free(gv);
        return NULL;
    }
    g_hash_table_insert(d->fss, g_strdup(name), gv);
    return gv->fs;
}

/* The volume and inode an entry node stands for: leaf "VOL/INO". */
static gboolean
view_guest_parse(const ViewNode *node, char **vol, guint64 *ino, GError **error)
{
    const char *slash = node->leaf ? strrchr(node->leaf, '/') : NULL;

    if (!slash || !g_ascii_string_to_unsigned(slash + 1, 10, 1, G_MAXUINT64, ino, NULL)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "no such guest entry");
        return FALSE;
    }
    *vol = g_strndup(node->leaf, slash - node->leaf);
    return TRUE;
}

/* The disk, filesystem and inode of entry @node. */
static GuestFs *
view_guest_entry(View *view, const ViewNode *node, ViewGuestDisk **disk, guint64 *ino,
                 GError **error)
{
    g_autofree char *vol = NULL;
    g_autoptr(ViewGuestDisk) d = NULL;
    GuestFs *fs;

    if (!view_guest_parse(node, &vol, ino, error) || !(d = view_guest_disk(view, node, error)) ||
        !(fs = view_guest_fs(d, vol, error)))
        return NULL;
    *disk = g_steal_pointer(&d);
    return fs;
}

static ViewNode *
view_guest_node(const ViewNode *parent, const char *vol, guint64 ino)
{
    ViewNode *n = g_new0(ViewNode, 1);

    n->kind = VIEW_GUEST_ENTRY;
    n->dom = g_strdup(parent->dom);
    n->snap = g_strdup(parent->snap);
    n->disk = g_strdup(parent->disk);
    n->leaf = g_strdup_printf("%s/%" G_GUINT64_FORMAT, vol, ino);
    return n;
}

ViewNode *
view_guest_lookup(View *view, const ViewNode *parent, const char *name, GError **error)
{
    g_autoptr(ViewGuestDisk) d = NULL;
    g_autofree char *vol = NULL;
    GuestFs *fs;
    guint64 dir, ino;

    if (!view_name_ok(name)) {
        view_set_noent(error, name);
        return NULL;
    }
    if (parent->kind == VIEW_GUEST_FILES) {
        if (!(d = view_guest_disk(view, parent, error)) || !(fs = view_guest_fs(d, name, error)))
            return NULL;
        return view_guest_node(parent, name, guest_fs_root(fs));
    }
    if (!view_guest_parse(parent, &vol, &dir, error) || !(d = view_guest_disk(view, parent, error)))
        return NULL;
    {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->lock);
        ViewGuestDir *listed = g_hash_table_lookup(d->dirs, parent->leaf);

        if (listed) {   /* the element is unchanged while @d is: the listing holds */
            guint64 *found = g_hash_table_lookup(listed->names, name);

            if (!found) {
                view_set_noent(error, name);
                return NULL;
            }
            return view_guest_node(parent, vol, *found);
        }
    }
    if (!(fs = view_guest_fs(d, vol, error)) || !guest_fs_lookup(fs, dir, name, &ino, error))
        return NULL;
    return view_guest_node(parent, vol, ino);
}

/* Keeps the names of directory @key (VOL/INO) of @d for the lookups that follow. */
static void
view_guest_dir_keep(ViewGuestDisk *d, const char *key, GPtrArray *gents)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->lock);
    ViewGuestDir *dir;

    if (gents->len > VIEW_GUEST_DIR_MAX_ENTRIES || g_hash_table_contains(d->dirs, key))
        return;
    dir = g_new0(ViewGuestDir, 1);
    dir->key = g_strdup(key);
    dir->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    dir->link.data = dir;
    for (guint i = 0; i < gents->len; i++) {
        GuestDirent *g = gents->pdata[i];

        g_hash_table_replace(dir->names, g_strdup(g->name), g_memdup2(&g->ino, sizeof(g->ino)));
    }
    g_hash_table_insert(d->dirs, dir->key, dir);
    g_queue_push_head_link(&d->dir_lru, &dir->link);
    while (d->dir_lru.length > VIEW_GUEST_DIRS) {
        ViewGuestDir *old = g_queue_pop_tail_link(&d->dir_lru)->data;

        g_hash_table_remove(d->dirs, old->key);
    }
}

static guint
view_guest_readable(ViewGuestDisk *d)
{
    guint n = 0;

    for (guint i = 0; i < d->vols->len; i++) {
        const GuestVolume *v = d->vols->pdata[i];

        if (guest_volume_find(d->vols, v->name) == v)
            n++;
    }
    return n;
}

gboolean
view_guest_stat(View *view, const ViewNode *node, struct stat *st, GError **error)
{
    g_autoptr(ViewGuestDisk) d = NULL;
    GuestFs *fs;
    guint64 ino;

    if (node->kind == VIEW_GUEST_ENTRY) {
        if (!(fs = view_guest_entry(view, node, &d, &ino, error)) ||
            !guest_fs_stat(fs, ino, st, error))
            return FALSE;
        return TRUE;
    }
    {
        g_autoptr(GError) local = NULL;

        /* files/ and partitions.tsv exist with `data`. When the disk cannot be read now (an
         * image a running VM writes, a damaged one), they still stat, as `data` does, and
         * opening or listing them says why: `ls -lR` of the tree meets no error. */
        if (!(d = view_guest_disk(view, node, &local)) &&
            g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
    }
    memset(st, 0, sizeof(*st));
    st->st_uid = view->uid;
    st->st_gid = view->gid;
    st->st_blksize = 65536;
    st->st_atim = st->st_mtim = st->st_ctim = d ? d->mtime : view->mount_time;
    if (node->kind == VIEW_GUEST_FILES) {
        /* The guest's modes are its own: only the mount's owner enters. */
        st->st_mode = S_IFDIR | 0700;
        st->st_nlink = 2 + (d ? view_guest_readable(d) : 0);
        st->st_size = 4096;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = d ? g_bytes_get_size(d->tsv) : 0;
        st->st_blocks = (st->st_size + 511) / 512;
    }
    return TRUE;
}

GPtrArray *
view_guest_readdir(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(GPtrArray) ents = g_ptr_array_new_with_free_func((GDestroyNotify)view_dirent_free);
    g_autoptr(ViewGuestDisk) d = NULL;
    g_autoptr(GPtrArray) gents = NULL;
    GuestFs *fs;
    guint64 ino;

    if (node->kind == VIEW_GUEST_FILES) {
        if (!(d = view_guest_disk(view, node, error)))
            return NULL;
        for (guint i = 0; i < d->vols->len; i++) {
            const GuestVolume *v = d->vols->pdata[i];

            if (guest_volume_find(d->vols, v->name) == v && view_name_ok(v->name)) {
                ViewDirent *e = g_new0(ViewDirent, 1);

                e->name = g_strdup(v->name);
                e->type = S_IFDIR;
                g_ptr_array_add(ents, e);
            }
        }
        return g_steal_pointer(&ents);
    }
    if (node->kind != VIEW_GUEST_ENTRY) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "not a directory");
        return NULL;
    }
    if (!(fs = view_guest_entry(view, node, &d, &ino, error)) ||
        !(gents = guest_fs_readdir(fs, ino, error)))
        return NULL;
    view_guest_dir_keep(d, node->leaf, gents);
    for (guint i = 0; i < gents->len; i++) {
        GuestDirent *g = gents->pdata[i];
        ViewDirent *e = g_new0(ViewDirent, 1);

        e->name = g_steal_pointer(&g->name);
        e->type = g->type;
        g_ptr_array_add(ents, e);
    }
    return g_steal_pointer(&ents);
}

char *
view_guest_readlink(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(ViewGuestDisk) d = NULL;
    GuestFs *fs;
    guint64 ino;

    if (node->kind != VIEW_GUEST_ENTRY) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a symbolic link");
        return NULL;
    }
    if (!(fs = view_guest_entry(view, node, &d, &ino, error)))
        return NULL;
    return guest_fs_readlink(fs, ino, error);
}

GBytes *
view_guest_content(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(ViewGuestDisk) d = NULL;

    if (node->kind != VIEW_DISK_FILE) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a generated file");
        return NULL;
    }
    if (!(d = view_guest_disk(view, node, error)))
        return NULL;
    return g_bytes_ref(d->tsv);
}

GPtrArray *
view_xattrs(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(ViewGuestDisk) d = NULL;
    GuestFs *fs;
    guint64 ino;

    if (node->kind != VIEW_GUEST_ENTRY)
        return g_ptr_array_new_with_free_func((GDestroyNotify)guest_xattr_free);
    if (!(fs = view_guest_entry(view, node, &d, &ino, error)))
        return NULL;
    return guest_fs_xattrs(fs, ino, error);
}

ViewGuestFile *
view_guest_open(View *view, const ViewNode *node, GError **error)
{
    g_autoptr(ViewGuestFile) f = g_new0(ViewGuestFile, 1);
    struct stat st;

    if (node->kind != VIEW_GUEST_ENTRY) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "not a guest file");
        return NULL;
    }
    if (!(f->fs = view_guest_entry(view, node, &f->disk, &f->ino, error)) ||
        !guest_fs_stat(f->fs, f->ino, &st, error))
        return NULL;
    if (!S_ISREG(st.st_mode)) {
        /* Device nodes and FIFOs are attributes only: never the host's devices. */
        g_set_error(error, G_FILE_ERROR, S_ISDIR(st.st_mode) ? G_FILE_ERROR_ISDIR
                    : G_FILE_ERROR_PERM, "not a regular file");
        return NULL;
    }
    f->size = st.st_size;
    return g_steal_pointer(&f);
}

void
view_guest_close(ViewGuestFile *f)
{
    if (!f)
        return;
    view_guest_disk_unref(f->disk);
    g_free(f);
}

guint64
view_guest_size(ViewGuestFile *f)
{
    return f->size;
}

gssize
view_guest_pread(ViewGuestFile *f, void *buf, gsize len, guint64 off, GError **error)
{
    return guest_fs_pread(f->fs, f->ino, buf, len, off, error);
}

gboolean
view_guest_seek(ViewGuestFile *f, guint64 off, gboolean data, guint64 *result, GError **error)
{
    return guest_fs_seek(f->fs, f->ino, off, data, result, error);
}
