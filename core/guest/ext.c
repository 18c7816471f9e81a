/* ext.c: ext2/3/4 read-only through libext2fs, fed by a GuestDev through an io_manager
 * of our own with a block cache (libext2fs asks one block at a time). */
#include "guestint.h"

#include <errno.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>
#include <et/com_err.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "error.h"

/* The cache's unit: every read of metadata or file data below two of these reads whole
 * aligned chunks, so a walk of small blocks costs one read of the image per chunk. */
#define GUEST_CHUNK (64 * 1024)
#define GUEST_CACHE_CHUNKS 128          /* 8 MiB per open filesystem */
#define GUEST_MAX_DIRENTS (1024 * 1024)
#define GUEST_MAX_XATTRS 4096
/* SEEK_DATA/SEEK_HOLE walk a block-mapped (ext2/3) file block by block up to this. */
#define GUEST_MAX_SEEK_BLOCKS (1024 * 1024)

typedef struct {
    guint64 index;
    guint8 *data;
    GList link;        /* in GuestIo.lru, most recent first */
} GuestChunk;

typedef struct {
    GuestDev dev;
    GHashTable *chunks;     /* &index -> GuestChunk */
    GQueue lru;
    char *last_error;       /* the GError message of the last failed read */
} GuestIo;

struct GuestFs {
    GMutex lock;            /* guards everything below: libext2fs is not thread-safe */
    ext2_filsys fs;
    GuestIo *io;            /* the channel's (freed with it) */
};

static struct struct_io_manager guest_io_manager;

static void
guest_chunk_free(GuestChunk *c)
{
    g_free(c->data);
    g_free(c);
}

static GuestChunk *
guest_io_chunk(GuestIo *io, guint64 index, errcode_t *err)
{
    g_autoptr(GError) error = NULL;
    GuestChunk *c = g_hash_table_lookup(io->chunks, &index);

    if (c) {
        g_queue_unlink(&io->lru, &c->link);
        g_queue_push_head_link(&io->lru, &c->link);
        return c;
    }
    if (io->lru.length >= GUEST_CACHE_CHUNKS) {
        GList *old = g_queue_pop_tail_link(&io->lru);

        g_hash_table_remove(io->chunks, &((GuestChunk *)old->data)->index);
    }
    c = g_new0(GuestChunk, 1);
    c->index = index;
    c->data = g_malloc(GUEST_CHUNK);
    c->link.data = c;
    if (!guest_read(&io->dev, c->data, GUEST_CHUNK, index * GUEST_CHUNK, &error)) {
        g_free(io->last_error);
        io->last_error = g_strdup(error->message);
        guest_chunk_free(c);
        *err = EIO;
        return NULL;
    }
    g_hash_table_insert(io->chunks, &c->index, c);
    g_queue_push_head_link(&io->lru, &c->link);
    return c;
}

static errcode_t
guest_io_read(io_channel ch, unsigned long long block, int count, void *data)
{
    GuestIo *io = ch->private_data;
    guint64 off = block * (guint64)ch->block_size;
    gsize len = count < 0 ? (gsize)-count : (gsize)count * ch->block_size;
    gsize done = 0;
    errcode_t err = 0;

    if (len >= 2 * GUEST_CHUNK) {   /* file data in large pieces: past the cache */
        g_autoptr(GError) error = NULL;

        if (!guest_read(&io->dev, data, len, off, &error)) {
            g_free(io->last_error);
            io->last_error = g_strdup(error->message);
            return EIO;
        }
        return 0;
    }
    while (done < len) {
        guint64 pos = off + done;
        GuestChunk *c = guest_io_chunk(io, pos / GUEST_CHUNK, &err);
        gsize in = pos % GUEST_CHUNK;
        gsize n = MIN(len - done, GUEST_CHUNK - in);

        if (!c)
            return err;
        memcpy((char *)data + done, c->data + in, n);
        done += n;
    }
    return 0;
}

static errcode_t
guest_io_read32(io_channel ch, unsigned long block, int count, void *data)
{
    return guest_io_read(ch, block, count, data);
}

static errcode_t
guest_io_write(io_channel ch, unsigned long long block, int count, const void *data)
{
    return EROFS;
}

static errcode_t
guest_io_write32(io_channel ch, unsigned long block, int count, const void *data)
{
    return EROFS;
}

static errcode_t
guest_io_write_byte(io_channel ch, unsigned long offset, int count, const void *data)
{
    return EROFS;
}

static errcode_t
guest_io_set_blksize(io_channel ch, int blksize)
{
    ch->block_size = blksize;
    return 0;
}

static errcode_t
guest_io_flush(io_channel ch)
{
    return 0;
}

static errcode_t
guest_io_set_option(io_channel ch, const char *option, const char *arg)
{
    return EXT2_ET_INVALID_ARGUMENT;
}

static errcode_t
guest_io_close(io_channel ch)
{
    GuestIo *io = ch->private_data;

    if (--ch->refcount > 0)
        return 0;
    g_hash_table_unref(io->chunks);
    g_free(io->last_error);
    g_free(io);
    g_free(ch->name);
    g_free(ch);
    return 0;
}

/* @name is "guest:ADDRESS" of the GuestDev that guest_fs_open() passes: libext2fs
 * opens by name only. */
static errcode_t
guest_io_open(const char *name, int flags, io_channel *channel)
{
    GuestDev *dev = NULL;
    io_channel ch;
    GuestIo *io;

    if ((flags & IO_FLAG_RW) || sscanf(name, "guest:%p", (void **)&dev) != 1 || !dev)
        return EROFS;
    io = g_new0(GuestIo, 1);
    io->dev = *dev;
    io->chunks = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                       (GDestroyNotify)guest_chunk_free);
    g_queue_init(&io->lru);
    ch = g_new0(struct struct_io_channel, 1);
    ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
    ch->manager = &guest_io_manager;
    ch->name = g_strdup(name);
    ch->block_size = 1024;
    ch->refcount = 1;
    ch->private_data = io;
    *channel = ch;
    return 0;
}

static struct struct_io_manager guest_io_manager = {
    .magic = EXT2_ET_MAGIC_IO_MANAGER,
    .name = "snapfs guest",
    .open = guest_io_open,
    .close = guest_io_close,
    .set_blksize = guest_io_set_blksize,
    .read_blk = guest_io_read32,
    .write_blk = guest_io_write32,
    .flush = guest_io_flush,
    .write_byte = guest_io_write_byte,
    .set_option = guest_io_set_option,
    .read_blk64 = guest_io_read,
    .write_blk64 = guest_io_write,
};

/* A libext2fs error as a GError: errno values keep their meaning, the library's own
 * codes are damaged data (EIO), with the read error behind them when there is one. */
static gboolean
guest_ext_fail(GuestFs *gfs, errcode_t err, GError **error, const char *what, guint64 ino)
{
    const char *why = gfs && gfs->io && gfs->io->last_error && err == EIO ? gfs->io->last_error
                      : error_message(err);

    if (err == EXT2_ET_FILE_NOT_FOUND || err == ENOENT)
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such entry", what);
    else if (err > 0 && err < 4096)
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err),
                    "%s of inode %" G_GUINT64_FORMAT ": %s", what, ino, why);
    else
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                    "%s of inode %" G_GUINT64_FORMAT ": %s", what, ino, why);
    return FALSE;
}

GuestFs *
guest_fs_open(const GuestDev *dev, const char *fstype, GError **error)
{
    g_autofree char *name = NULL;
    GuestFs *gfs;
    errcode_t err;
    ext2_filsys fs = NULL;

    if (!guest_fstype_readable(fstype)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "filesystem type '%s' cannot be read", fstype);
        return NULL;
    }
    initialize_ext2_error_table();
    name = g_strdup_printf("guest:%p", (void *)dev);
    err = ext2fs_open2(name, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_IGNORE_CSUM_ERRORS, 0, 0,
                       &guest_io_manager, &fs);
    if (err) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "cannot open the %s filesystem: %s",
                    fstype, error_message(err));
        return NULL;
    }
    gfs = g_new0(GuestFs, 1);
    g_mutex_init(&gfs->lock);
    gfs->fs = fs;
    gfs->io = fs->io->private_data;
    return gfs;
}

void
guest_fs_close(GuestFs *gfs)
{
    if (!gfs)
        return;
    ext2fs_close_free(&gfs->fs);
    g_mutex_clear(&gfs->lock);
    g_free(gfs);
}

guint64
guest_fs_root(GuestFs *gfs)
{
    return EXT2_ROOT_INO;
}

static gboolean
guest_ext_inode(GuestFs *gfs, guint64 ino, struct ext2_inode_large *inode, GError **error)
{
    errcode_t err;

    memset(inode, 0, sizeof(*inode));
    if (ino == 0 || ino > gfs->fs->super->s_inodes_count) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "inode %" G_GUINT64_FORMAT
                    " out of range", ino);
        return FALSE;
    }
    err = ext2fs_read_inode_full(gfs->fs, ino, (struct ext2_inode *)inode, sizeof(*inode));
    if (err)
        return guest_ext_fail(gfs, err, error, "reading", ino);
    if (inode->i_links_count == 0 && inode->i_mode == 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "inode %" G_GUINT64_FORMAT
                    " is not in use", ino);
        return FALSE;
    }
    return TRUE;
}

/* A time as the kernel decodes it: 32 signed bits, two epoch bits and nanoseconds in
 * the extra field when the inode is large enough to hold it. */
static struct timespec
guest_ext_time(const struct ext2_inode_large *inode, guint32 t, gsize extra_off,
               const guint32 *extra)
{
    struct timespec ts = { (gint32)t, 0 };

    if (inode->i_extra_isize >= extra_off + sizeof(guint32) - EXT2_GOOD_OLD_INODE_SIZE) {
        ts.tv_sec += (gint64)(*extra & EXT4_EPOCH_MASK) << 32;
        ts.tv_nsec = *extra >> EXT4_EPOCH_BITS;
        if (ts.tv_nsec >= 1000000000)
            ts.tv_nsec = 0;
    }
    return ts;
}

static void
guest_ext_fill(GuestFs *gfs, guint64 ino, struct ext2_inode_large *inode, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = inode->i_mode;
    st->st_nlink = inode->i_links_count;
    st->st_uid = inode_uid(*inode);
    st->st_gid = inode_gid(*inode);
    st->st_size = EXT2_I_SIZE(inode);
    st->st_blksize = gfs->fs->blocksize;
    st->st_blocks = ext2fs_get_stat_i_blocks(gfs->fs, (struct ext2_inode *)inode);
    if (S_ISCHR(inode->i_mode) || S_ISBLK(inode->i_mode)) {
        guint32 old = inode->i_block[0];
        guint32 dev = inode->i_block[1];

        st->st_rdev = old ? makedev((old >> 8) & 0xff, old & 0xff)
                          : makedev((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00));
    }
    st->st_atim = guest_ext_time(inode, inode->i_atime,
                                 G_STRUCT_OFFSET(struct ext2_inode_large, i_atime_extra),
                                 &inode->i_atime_extra);
    st->st_mtim = guest_ext_time(inode, inode->i_mtime,
                                 G_STRUCT_OFFSET(struct ext2_inode_large, i_mtime_extra),
                                 &inode->i_mtime_extra);
    st->st_ctim = guest_ext_time(inode, inode->i_ctime,
                                 G_STRUCT_OFFSET(struct ext2_inode_large, i_ctime_extra),
                                 &inode->i_ctime_extra);
}

gboolean
guest_fs_stat(GuestFs *gfs, guint64 ino, struct stat *st, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    struct ext2_inode_large inode;

    if (!guest_ext_inode(gfs, ino, &inode, error))
        return FALSE;
    guest_ext_fill(gfs, ino, &inode, st);
    return TRUE;
}

/* A name a directory may hold (a hostile filesystem may store anything). */
static gboolean
guest_name_ok(const char *name, gsize len)
{
    return len > 0 && !memchr(name, '/', len) && !memchr(name, 0, len) &&
           !(len == 1 && name[0] == '.') && !(len == 2 && name[0] == '.' && name[1] == '.');
}

static gboolean
guest_ext_isdir(GuestFs *gfs, guint64 dir, GError **error)
{
    struct ext2_inode_large inode;

    if (!guest_ext_inode(gfs, dir, &inode, error))
        return FALSE;
    if (!LINUX_S_ISDIR(inode.i_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "inode %" G_GUINT64_FORMAT
                    " is not a directory", dir);
        return FALSE;
    }
    return TRUE;
}

gboolean
guest_fs_lookup(GuestFs *gfs, guint64 dir, const char *name, guint64 *ino, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    ext2_ino_t found = 0;
    errcode_t err;

    if (!guest_name_ok(name, strlen(name)) || !guest_ext_isdir(gfs, dir, error)) {
        if (error && !*error)
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s: no such entry", name);
        return FALSE;
    }
    err = ext2fs_lookup(gfs->fs, dir, name, strlen(name), NULL, &found);
    if (err)
        return guest_ext_fail(gfs, err, error, name, dir);
    if (found == 0 || found > gfs->fs->super->s_inodes_count) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "entry '%s' of inode %"
                    G_GUINT64_FORMAT " names inode %u", name, dir, found);
        return FALSE;
    }
    *ino = found;
    return TRUE;
}

void
guest_dirent_free(GuestDirent *d)
{
    if (!d)
        return;
    g_free(d->name);
    g_free(d);
}

static mode_t
guest_ext_ftype(int ft)
{
    switch (ft) {
    case EXT2_FT_REG_FILE: return S_IFREG;
    case EXT2_FT_DIR: return S_IFDIR;
    case EXT2_FT_CHRDEV: return S_IFCHR;
    case EXT2_FT_BLKDEV: return S_IFBLK;
    case EXT2_FT_FIFO: return S_IFIFO;
    case EXT2_FT_SOCK: return S_IFSOCK;
    case EXT2_FT_SYMLINK: return S_IFLNK;
    default: return 0;
    }
}

typedef struct {
    GuestFs *gfs;
    GPtrArray *ents;
} GuestDirWalk;

static int
guest_ext_dirent(ext2_ino_t dir, int kind, struct ext2_dir_entry *de, int offset,
                 int blocksize, char *buf, void *data)
{
    GuestDirWalk *w = data;
    int len = ext2fs_dirent_name_len(de);
    GuestDirent *d;

    if (kind == DIRENT_DOT_FILE || kind == DIRENT_DOT_DOT_FILE || de->inode == 0 ||
        !guest_name_ok(de->name, len) || de->inode > w->gfs->fs->super->s_inodes_count)
        return 0;
    if (w->ents->len >= GUEST_MAX_DIRENTS)
        return DIRENT_ABORT;
    d = g_new0(GuestDirent, 1);
    d->name = g_strndup(de->name, len);
    d->ino = de->inode;
    d->type = guest_ext_ftype(ext2fs_dirent_file_type(de));
    g_ptr_array_add(w->ents, d);
    return 0;
}

GPtrArray *
guest_fs_readdir(GuestFs *gfs, guint64 dir, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    g_autoptr(GPtrArray) ents = g_ptr_array_new_with_free_func((GDestroyNotify)guest_dirent_free);
    GuestDirWalk w = { gfs, ents };
    errcode_t err;

    if (!guest_ext_isdir(gfs, dir, error))
        return NULL;
    err = ext2fs_dir_iterate2(gfs->fs, dir, 0, NULL, guest_ext_dirent, &w);
    if (err) {
        guest_ext_fail(gfs, err, error, "listing", dir);
        return NULL;
    }
    /* Without the filetype feature the type is the inode's. */
    for (guint i = 0; i < ents->len; i++) {
        GuestDirent *d = ents->pdata[i];
        struct ext2_inode_large inode;

        if (!d->type)
            d->type = guest_ext_inode(gfs, d->ino, &inode, NULL) ? (inode.i_mode & S_IFMT)
                                                               : S_IFREG;
    }
    return g_steal_pointer(&ents);
}

/* Reads file @ino's bytes (inline data, holes, unwritten extents as zeros). Locked. */
static gssize
guest_ext_read(GuestFs *gfs, guint64 ino, struct ext2_inode_large *inode, void *buf,
               gsize len, guint64 off, GError **error)
{
    ext2_file_t file = NULL;
    guint64 size = EXT2_I_SIZE(inode);
    gsize done = 0;
    errcode_t err;

    if (off >= size || len == 0)
        return 0;
    len = MIN(len, size - off);
    err = ext2fs_file_open2(gfs->fs, ino, (struct ext2_inode *)inode, 0, &file);
    if (!err)
        err = ext2fs_file_llseek(file, off, EXT2_SEEK_SET, NULL);
    while (!err && done < len) {
        unsigned int got = 0;

        err = ext2fs_file_read(file, (char *)buf + done, MIN(len - done, 1u << 30), &got);
        if (!err && got == 0)
            break;
        done += got;
    }
    if (file)
        ext2fs_file_close(file);
    if (err) {
        guest_ext_fail(gfs, err, error, "reading", ino);
        return -1;
    }
    memset((char *)buf + done, 0, len - done);   /* short: a damaged size; zeros */
    return len;
}

/* Reads an extent-mapped file's bytes straight from the device, one read per extent
 * piece (libext2fs's file reader asks for one block at a time): holes and unwritten
 * extents read as zeros. @len is within the file's size. Locked. */
static gboolean
guest_ext_read_extents(GuestFs *gfs, guint64 ino, struct ext2_inode_large *inode, void *buf,
                       gsize len, guint64 off, GError **error)
{
    guint64 bs = gfs->fs->blocksize;
    guint64 end = off + len;
    ext2_extent_handle_t h = NULL;
    struct ext2fs_extent e;
    errcode_t err;
    int op = EXT2_EXTENT_CURRENT;

    memset(buf, 0, len);
    if ((err = ext2fs_extent_open2(gfs->fs, ino, (struct ext2_inode *)inode, &h)))
        return guest_ext_fail(gfs, err, error, "mapping", ino);
    /* At the extent holding @off's block, or the one before the hole holding it. */
    err = ext2fs_extent_goto(h, off / bs);
    if (err == EXT2_ET_EXTENT_NOT_FOUND)
        err = 0;
    while (!err && !(err = ext2fs_extent_get(h, op, &e))) {
        guint64 s = e.e_lblk * bs;
        guint64 eend = s + (guint64)e.e_len * bs;
        guint64 from = MAX(off, s), to = MIN(end, eend);

        op = EXT2_EXTENT_NEXT_LEAF;
        if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF))
            continue;
        if (s >= end)
            break;
        if (from >= to || (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT))
            continue;
        if (e.e_pblk > G_MAXUINT64 / bs - e.e_len) {
            ext2fs_extent_free(h);
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "inode %" G_GUINT64_FORMAT
                        ": extent past the end of the disk", ino);
            return FALSE;
        }
        if (!guest_read(&gfs->io->dev, (char *)buf + (from - off), to - from,
                        e.e_pblk * bs + (from - s), error)) {
            ext2fs_extent_free(h);
            return FALSE;
        }
    }
    ext2fs_extent_free(h);
    if (err && err != EXT2_ET_EXTENT_NO_NEXT && err != EXT2_ET_NO_CURRENT_NODE)
        return guest_ext_fail(gfs, err, error, "mapping", ino);
    return TRUE;
}

gssize
guest_fs_pread(GuestFs *gfs, guint64 ino, void *buf, gsize len, guint64 off, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    struct ext2_inode_large inode;

    if (!guest_ext_inode(gfs, ino, &inode, error))
        return -1;
    if (!LINUX_S_ISREG(inode.i_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "inode %" G_GUINT64_FORMAT
                    " is not a regular file", ino);
        return -1;
    }
    if ((inode.i_flags & EXT4_EXTENTS_FL) && !(inode.i_flags & EXT4_INLINE_DATA_FL)) {
        guint64 size = EXT2_I_SIZE(&inode);

        if (off >= size || len == 0)
            return 0;
        len = MIN(len, size - off);
        return guest_ext_read_extents(gfs, ino, &inode, buf, len, off, error) ? (gssize)len : -1;
    }
    return guest_ext_read(gfs, ino, &inode, buf, len, off, error);
}

char *
guest_fs_readlink(GuestFs *gfs, guint64 ino, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    struct ext2_inode_large inode;
    g_autofree char *target = NULL;
    guint64 size;

    if (!guest_ext_inode(gfs, ino, &inode, error))
        return NULL;
    size = EXT2_I_SIZE(&inode);
    if (!LINUX_S_ISLNK(inode.i_mode) || size == 0 || size >= 65536) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "inode %" G_GUINT64_FORMAT
                    " is not a symbolic link", ino);
        return NULL;
    }
    target = g_malloc0(size + 1);
    if (ext2fs_is_fast_symlink((struct ext2_inode *)&inode)) {
        if (size > sizeof(inode.i_block)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "symbolic link %"
                        G_GUINT64_FORMAT " is too long for its inode", ino);
            return NULL;
        }
        memcpy(target, inode.i_block, size);
    } else if (guest_ext_read(gfs, ino, &inode, target, size, 0, error) < 0) {
        return NULL;
    }
    if (memchr(target, 0, size)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "symbolic link %" G_GUINT64_FORMAT
                    " holds a NUL", ino);
        return NULL;
    }
    return g_steal_pointer(&target);
}

/* Whether logical block @lblk of @ino holds written data. */
static gboolean
guest_ext_mapped(GuestFs *gfs, guint64 ino, struct ext2_inode_large *inode, blk64_t lblk,
                 gboolean *mapped, GError **error)
{
    blk64_t pblk = 0;
    int flags = 0;
    errcode_t err = ext2fs_bmap2(gfs->fs, ino, (struct ext2_inode *)inode, NULL, 0, lblk,
                                 &flags, &pblk);

    if (err)
        return guest_ext_fail(gfs, err, error, "mapping", ino);
    *mapped = pblk != 0 && !(flags & BMAP_RET_UNINIT);
    return TRUE;
}

/* SEEK_DATA/SEEK_HOLE from the extent tree (unwritten extents are holes, as the
 * kernel shows them on a read-only mount), block by block for block-mapped files. */
gboolean
guest_fs_seek(GuestFs *gfs, guint64 ino, guint64 off, gboolean data, guint64 *result,
              GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    struct ext2_inode_large inode;
    guint64 size, bs = gfs->fs->blocksize;
    guint64 pos;

    if (!guest_ext_inode(gfs, ino, &inode, error))
        return FALSE;
    size = EXT2_I_SIZE(&inode);
    *result = data ? off : size;
    if (off >= size) {
        *result = size;
        return TRUE;
    }
    if (inode.i_flags & EXT4_INLINE_DATA_FL)
        return TRUE;
    if (inode.i_flags & EXT4_EXTENTS_FL) {
        ext2_extent_handle_t h = NULL;
        struct ext2fs_extent e;
        errcode_t err = ext2fs_extent_open2(gfs->fs, ino, (struct ext2_inode *)&inode, &h);
        int op = EXT2_EXTENT_ROOT;

        if (err)
            return guest_ext_fail(gfs, err, error, "mapping", ino);
        pos = off;
        *result = data ? size : MIN(pos, size);
        while (!(err = ext2fs_extent_get(h, op, &e))) {
            guint64 s = e.e_lblk * bs, end = (e.e_lblk + (guint64)e.e_len) * bs;

            op = EXT2_EXTENT_NEXT_LEAF;
            if (!(e.e_flags & EXT2_EXTENT_FLAGS_LEAF) || (e.e_flags & EXT2_EXTENT_FLAGS_UNINIT))
                continue;
            if (end <= pos)
                continue;
            if (data) {
                *result = MAX(pos, s);
                break;
            }
            if (s > pos)
                break;
            pos = end;
        }
        if (!data)
            *result = MIN(pos, size);
        ext2fs_extent_free(h);
        if (err && err != EXT2_ET_EXTENT_NO_NEXT && err != EXT2_ET_EXTENT_NO_DOWN)
            return guest_ext_fail(gfs, err, error, "mapping", ino);
        return TRUE;
    }
    pos = off / bs;
    for (guint n = 0; n < GUEST_MAX_SEEK_BLOCKS && pos * bs < size; n++, pos++) {
        gboolean mapped = FALSE;

        if (!guest_ext_mapped(gfs, ino, &inode, pos, &mapped, error))
            return FALSE;
        if (mapped == data) {
            *result = MAX(off, pos * bs);
            return TRUE;
        }
    }
    /* The end, or where the walk stopped: data from there on (reads as it is). */
    *result = pos * bs >= size || !data ? size : MAX(off, pos * bs);
    return TRUE;
}

void
guest_xattr_free(GuestXattr *x)
{
    if (!x)
        return;
    g_free(x->name);
    g_bytes_unref(x->value);
    g_free(x);
}

static int
guest_ext_xattr(char *name, char *value, size_t len, void *data)
{
    GPtrArray *out = data;
    GuestXattr *x;

    /* system.data holds inline file data: the kernel does not show it. */
    if (strcmp(name, "system.data") == 0)
        return 0;
    if (out->len >= GUEST_MAX_XATTRS)
        return XATTR_ABORT;
    x = g_new0(GuestXattr, 1);
    x->name = g_strdup(name);
    x->value = g_bytes_new(value, len);
    g_ptr_array_add(out, x);
    return 0;
}

GPtrArray *
guest_fs_xattrs(GuestFs *gfs, guint64 ino, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&gfs->lock);
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)guest_xattr_free);
    struct ext2_xattr_handle *h = NULL;
    struct ext2_inode_large inode;
    errcode_t err;

    if (!guest_ext_inode(gfs, ino, &inode, error))
        return NULL;
    if (!ext2fs_has_feature_xattr(gfs->fs->super))
        return g_steal_pointer(&out);
    err = ext2fs_xattrs_open(gfs->fs, ino, &h);
    if (!err)
        err = ext2fs_xattrs_read(h);
    if (!err)
        err = ext2fs_xattrs_iterate(h, guest_ext_xattr, out);
    if (h)
        ext2fs_xattrs_close(&h);
    if (err) {
        guest_ext_fail(gfs, err, error, "reading the attributes", ino);
        return NULL;
    }
    return g_steal_pointer(&out);
}
