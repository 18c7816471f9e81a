/* ops.c: FUSE low-level callbacks; each sends exactly one reply. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/statvfs.h>

#include "errno.h"

/* Largest request the kernel may send: big reads are what makes cp fast. */
#define FS_MAX_IO (1024 * 1024)

typedef struct {
    GMutex lock;          /* guards img: one Image is not thread-safe */
    Image *img;           /* data files */
    GBytes *content;      /* generated files: fixed at open for a consistent read */
} FsFile;

typedef struct {
    GPtrArray *ents;      /* ViewDirent * */
} FsDir;

static FsState *
fs_state(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static void
fs_file_free(FsFile *f)
{
    if (!f)
        return;
    image_close(f->img);
    g_clear_pointer(&f->content, g_bytes_unref);
    g_mutex_clear(&f->lock);
    g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsFile, fs_file_free)

static ViewNode *
fs_node(FsState *fs, fuse_ino_t ino, GError **error)
{
    ViewNode *node = inode_get(fs->inodes, ino);

    if (!node)
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "stale inode %lu",
                    (unsigned long)ino);
    return node;
}

static void
fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    conn->max_write = FS_MAX_IO;
    conn->max_readahead = FS_MAX_IO;
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    /* Directory and attribute caching are bounded by the 1 s timeouts. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
}

/* Replies: entry, or error. */
static void
fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    g_autoptr(ViewNode) node = NULL;
    struct fuse_entry_param e = { 0 };

    if (!(pnode = fs_node(fs, parent, &error)) ||
        !(node = view_lookup(fs->view, pnode, name, &error)) ||
        !view_stat(fs->view, node, &e.attr, &error)) {
        fs_reply_error(req, error);
        return;
    }
    e.ino = inode_ref(fs->inodes, node);
    e.attr.st_ino = e.ino;
    e.attr_timeout = fs->timeout;
    e.entry_timeout = fs->timeout;
    fuse_reply_entry(req, &e);
}

/* Replies: none. */
static void
fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    inode_forget(fs_state(req)->inodes, ino, nlookup);
    fuse_reply_none(req);
}

/* Replies: none. */
static void
fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        inode_forget(fs_state(req)->inodes, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

/* Replies: attr, or error. */
static void
fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    struct stat st;

    if (!(node = fs_node(fs, ino, &error)) || !view_stat(fs->view, node, &st, &error)) {
        fs_reply_error(req, error);
        return;
    }
    st.st_ino = ino;
    fuse_reply_attr(req, &st, fs->timeout);
}

/* Replies: readlink, or error. */
static void
fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    g_autofree char *target = NULL;

    if (!(node = fs_node(fs, ino, &error)) ||
        !(target = view_readlink(fs->view, node, &error))) {
        fs_reply_error(req, error);
        return;
    }
    fuse_reply_readlink(req, target);
}

/* Replies: open, or error. The entries are fixed at opendir so that a listing
 * in several readdir calls is consistent. */
static void
fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    FsDir *d;
    GPtrArray *ents;

    if (!(node = fs_node(fs, ino, &error)) ||
        !(ents = view_readdir(fs->view, node, &error))) {
        fs_reply_error(req, error);
        return;
    }
    d = g_new0(FsDir, 1);
    d->ents = ents;
    fi->fh = (uint64_t)(uintptr_t)d;
    fi->cache_readdir = 0;
    if (fuse_reply_open(req, fi) != 0) {
        g_ptr_array_unref(d->ents);
        g_free(d);
    }
}

/* Replies: buf, or error. Offsets: 0 = ".", 1 = "..", 2 + i = entry i. */
static void
fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
              struct fuse_file_info *fi)
{
    FsDir *d = (FsDir *)(uintptr_t)fi->fh;
    g_autofree char *buf = g_malloc(size);
    size_t used = 0;

    for (off_t i = off; i < (off_t)d->ents->len + 2; i++) {
        struct stat st = { 0 };
        const char *name;
        size_t need;

        if (i < 2) {
            name = i == 0 ? "." : "..";
            st.st_mode = S_IFDIR;
        } else {
            ViewDirent *e = d->ents->pdata[i - 2];

            name = e->name;
            st.st_mode = e->type;
        }
        need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
        if (need > size - used)
            break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
}

/* Replies: err 0. */
static void
fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsDir *d = (FsDir *)(uintptr_t)fi->fh;

    g_ptr_array_unref(d->ents);
    g_free(d);
    fuse_reply_err(req, 0);
}

/* Replies: open, or error (EACCES for writes: every file here is read-only). */
static void
fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    g_autoptr(FsFile) f = g_new0(FsFile, 1);

    g_mutex_init(&f->lock);
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, fs->read_only ? EROFS : EACCES);
        return;
    }
    if (!(node = fs_node(fs, ino, &error))) {
        fs_reply_error(req, error);
        return;
    }
    if (node->kind == VIEW_DISK_FILE && strcmp(node->leaf, "data") == 0) {
        guint64 version = 0;

        if (!(f->img = view_open_data(fs->view, node, &version, &error))) {
            fs_reply_error(req, error);
            return;
        }
        /* Unchanged layers: the kernel may keep what it cached last time. */
        fi->keep_cache = inode_data_version_same(fs->inodes, ino, version);
    } else {
        if (!(f->content = view_read_content(fs->view, node, &error))) {
            fs_reply_error(req, error);
            return;
        }
        /* Generated text may change size under a cached attribute (1 s): direct
         * I/O reads what was generated instead of clamping to a stale i_size. */
        fi->direct_io = 1;
        fi->keep_cache = 0;
    }
    fi->fh = (uint64_t)(uintptr_t)f;
    if (fuse_reply_open(req, fi) == 0)
        g_steal_pointer(&f);
}

/* Replies: buf, or error. */
static void
fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    FsFile *f = (FsFile *)(uintptr_t)fi->fh;
    g_autoptr(GError) error = NULL;

    if (f->content) {
        gsize len = 0;
        const char *data = g_bytes_get_data(f->content, &len);

        if ((guint64)off >= len)
            fuse_reply_buf(req, NULL, 0);
        else
            fuse_reply_buf(req, data + off, MIN(size, len - off));
        return;
    }
    {
        g_autofree char *buf = g_malloc(size);
        gssize n;

        g_mutex_lock(&f->lock);
        n = image_pread(f->img, buf, size, off, &error);
        g_mutex_unlock(&f->lock);
        if (n < 0) {
            fs_reply_error(req, error);
            return;
        }
        fuse_reply_buf(req, buf, n);
    }
}

/* Replies: err 0. */
static void
fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_file_free((FsFile *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

/* Replies: lseek, or error. SEEK_DATA/SEEK_HOLE let cp --sparse skip holes. */
static void
fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
    FsFile *f = (FsFile *)(uintptr_t)fi->fh;
    g_autoptr(GError) error = NULL;
    guint64 result = 0;
    guint64 size;
    gboolean ok;

    if (!f->img || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    size = image_size(f->img);
    if (off < 0 || (guint64)off >= size) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    g_mutex_lock(&f->lock);
    ok = image_seek(f->img, off, whence == SEEK_DATA, &result, &error);
    g_mutex_unlock(&f->lock);
    if (!ok) {
        fs_reply_error(req, error);
        return;
    }
    if (whence == SEEK_DATA && result >= size) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    fuse_reply_lseek(req, result);
}

/* Replies: statfs. */
static void
fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    FsState *fs = fs_state(req);
    struct statvfs sv = { 0 };

    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_namemax = 255;
    sv.f_files = inode_count(fs->inodes);
    sv.f_flag = ST_NOSUID | ST_NODEV | (fs->read_only ? ST_RDONLY : 0);
    fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_op_init,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .readlink = fs_op_readlink,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .releasedir = fs_op_releasedir,
    .open = fs_op_open,
    .read = fs_op_read,
    .release = fs_op_release,
    .lseek = fs_op_lseek,
    .statfs = fs_op_statfs,
};
