/* image.c: byte-exact reader of a backing chain (raw and our own qcow2 reader), with SEEK_DATA/HOLE. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "error.h"
#include "qcow2.h"
#include "util.h"

#define L2_CACHE_BYTES (8 * 1024 * 1024)
#define L1_IDLE_BYTES (64 * 1024 * 1024)   /* L1 tables kept for the next open, in all */

typedef struct {
    guint64 offset;         /* host offset of the L2 table; 0 = empty slot */
    guint64 *table;         /* entries in host byte order */
    guint64 used;           /* LRU tick */
} L2Slot;

/* What identifies the L1 table of an unchanged image file: any write to the
 * file changes its size, mtime or ctime. All guint64: no padding to hash. */
typedef struct {
    guint64 dev;
    guint64 ino;
    guint64 size;
    guint64 mtime_sec;
    guint64 mtime_nsec;
    guint64 ctime_sec;
    guint64 ctime_nsec;
    guint64 l1_offset;
    guint64 l1_size;
} L1Key;

/* One L1 table shared by every reader of the same unchanged image (an open
 * file has up to 4 readers, and a file may be open many times): immutable once
 * read, freed with its last reader unless kept among the idle ones. */
typedef struct {
    L1Key key;
    guint64 *entries;       /* host byte order */
    guint refs;             /* readers holding it; under l1_lock */
    GList idle;             /* link in l1_idle while refs == 0 */
} L1Table;

typedef struct {
    char *path;
    int fd;
    gboolean qcow2;
    guint64 size;           /* virtual size, as qemu counts it (whole sectors) */
    guint64 file_size;
    /* qcow2 only */
    Qcow2Map map;           /* geometry, the L1 table and layer_l2() as its loader */
    L1Table *l1;
    char *data_path;        /* external data file: where the data clusters are; NULL = in path */
    int data_fd;
    L2Slot *cache;
    guint ncache;
    guint last_slot;
    guint64 tick;
    guint8 compression_type;
    guint8 *comp_in;
    guint8 *comp_out;
    guint64 comp_key;       /* compressed L2 entry whose data is in comp_out; 0 = none */
    z_stream zs;
    gboolean zs_ready;
    ZSTD_DCtx *zctx;
} Layer;

struct Image {
    Layer *layers;
    guint n;
    guint64 size;
};

static GMutex l1_lock;
static GHashTable *l1_tables;   /* L1Key * -> L1Table *, every table in use or idle */
static GQueue l1_idle;          /* tables no reader holds, least recently used first */
static gsize l1_idle_bytes;

static guint
l1_key_hash(gconstpointer p)
{
    guint64 h = util_hash_fnv1a(UTIL_FNV1A_INIT, p, sizeof(L1Key));

    return (guint)(h ^ (h >> 32));
}

static gboolean
l1_key_equal(gconstpointer a, gconstpointer b)
{
    return memcmp(a, b, sizeof(L1Key)) == 0;
}

static void
l1_table_free(L1Table *t)
{
    g_free(t->entries);
    g_free(t);
}

/* Takes a reference to table @t found in l1_tables. Under l1_lock. */
static L1Table *
l1_table_ref_locked(L1Table *t)
{
    if (t->refs++ == 0) {
        g_queue_unlink(&l1_idle, &t->idle);
        l1_idle_bytes -= t->key.l1_size * 8;
    }
    return t;
}

/* The table of @key if a reader has it or had it lately, else NULL. */
static L1Table *
l1_table_lookup(const L1Key *key)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l1_lock);
    L1Table *t = l1_tables ? g_hash_table_lookup(l1_tables, key) : NULL;

    return t ? l1_table_ref_locked(t) : NULL;
}

/* Shares the table @t just read (one reference, the caller's): returns it, or
 * the same table another reader published meanwhile (@t is freed). */
static L1Table *
l1_table_publish(L1Table *t)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l1_lock);
    L1Table *had;

    if (!l1_tables)
        l1_tables = g_hash_table_new(l1_key_hash, l1_key_equal);
    if ((had = g_hash_table_lookup(l1_tables, &t->key))) {
        l1_table_free(t);
        return l1_table_ref_locked(had);
    }
    t->idle.data = t;
    g_hash_table_insert(l1_tables, &t->key, t);
    return t;
}

/* Drops a reader's reference; the table stays for the next open of the same
 * image while the idle ones take at most L1_IDLE_BYTES. */
static void
l1_table_unref(L1Table *t)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&l1_lock);

    if (--t->refs > 0)
        return;
    g_queue_push_tail_link(&l1_idle, &t->idle);
    l1_idle_bytes += t->key.l1_size * 8;
    while (l1_idle_bytes > L1_IDLE_BYTES) {
        L1Table *old = g_queue_pop_head_link(&l1_idle)->data;

        l1_idle_bytes -= old->key.l1_size * 8;
        g_hash_table_remove(l1_tables, &old->key);
        l1_table_free(old);
    }
}

static void
layer_clear(Layer *l)
{
    guint i;

    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->data_fd >= 0)
        close(l->data_fd);
    l->data_fd = -1;
    g_free(l->path);
    g_free(l->data_path);
    if (l->l1)
        l1_table_unref(l->l1);
    for (i = 0; i < l->ncache; i++)
        g_free(l->cache[i].table);
    g_free(l->cache);
    g_free(l->comp_in);
    g_free(l->comp_out);
    if (l->zs_ready)
        inflateEnd(&l->zs);
    if (l->zctx)
        ZSTD_freeDCtx(l->zctx);
}

void
image_close(Image *img)
{
    guint i;

    if (!img)
        return;
    for (i = 0; i < img->n; i++)
        layer_clear(&img->layers[i]);
    g_free(img->layers);
    g_free(img);
}

guint64
image_size(const Image *img)
{
    return img->size;
}

static gboolean
layer_corrupt(const Layer *l, GError **error, const char *what, guint64 off)
{
    return qcow2_corrupt(l->path, error, what, off);
}

/* pread of exactly @len bytes, or fewer at end of file: the count read, -1 on error. */
static gssize
layer_pread(const Layer *l, void *buf, gsize len, guint64 off, GError **error)
{
    return util_pread_full(l->fd, l->path, buf, len, off, error);
}

/* Reads with zeros past the end of the file, as qemu does. */
static gboolean
pread_zero(int fd, const char *path, void *buf, gsize len, guint64 off, GError **error)
{
    gssize got = util_pread_full(fd, path, buf, len, off, error);

    if (got < 0)
        return FALSE;
    if ((gsize)got < len)
        memset((char *)buf + got, 0, len - got);
    return TRUE;
}

/* Raw layers and metadata. */
static gboolean
layer_pread_zero(const Layer *l, void *buf, gsize len, guint64 off, GError **error)
{
    return pread_zero(l->fd, l->path, buf, len, off, error);
}

/* Data clusters: from the data file when the image has one. */
static gboolean
layer_pread_data(const Layer *l, void *buf, gsize len, guint64 off, GError **error)
{
    if (l->data_path)
        return pread_zero(l->data_fd, l->data_path, buf, len, off, error);
    return pread_zero(l->fd, l->path, buf, len, off, error);
}

/* The L2 table at @l2_off through the layer's cache (a Qcow2L2Load). */
static const guint64 *
layer_l2(gpointer data, guint64 l2_off, GError **error)
{
    Layer *l = data;
    L2Slot *slot = &l->cache[l->last_slot];
    guint victim = 0;
    guint i;

    if (slot->offset == l2_off) {
        slot->used = ++l->tick;
        return slot->table;
    }
    for (i = 0; i < l->ncache; i++) {
        if (l->cache[i].offset == l2_off) {
            l->last_slot = i;
            l->cache[i].used = ++l->tick;
            return l->cache[i].table;
        }
        if (l->cache[i].used < l->cache[victim].used)
            victim = i;
    }
    slot = &l->cache[victim];
    if (!slot->table)
        slot->table = g_malloc(l->map.cluster_size);
    slot->offset = 0;
    /* as qemu: what lies beyond the end of the file reads as zeros (unallocated) */
    if (!layer_pread_zero(l, slot->table, l->map.cluster_size, l2_off, error))
        return NULL;
    for (i = 0; i < l->map.cluster_size / 8; i++)
        slot->table[i] = GUINT64_FROM_BE(slot->table[i]);
    slot->offset = l2_off;
    slot->used = ++l->tick;
    l->last_slot = victim;
    return slot->table;
}

/* Decompresses the compressed cluster described by L2 @entry into l->comp_out. */
static gboolean
layer_decompress(Layer *l, guint64 entry, GError **error)
{
    guint64 coff;
    guint64 clen;
    gssize got;

    if (l->comp_key == entry)
        return TRUE;
    l->comp_key = 0;
    qcow2_compressed_extent(&l->map, entry, &coff, &clen);
    if (coff >= l->file_size)
        return layer_corrupt(l, error, "compressed cluster lies beyond the end of the file", coff);
    clen = MIN(clen, l->file_size - coff);
    if (!l->comp_in) {
        l->comp_in = g_malloc(2 * l->map.cluster_size + 512);
        l->comp_out = g_malloc(l->map.cluster_size);
    }
    if ((got = layer_pread(l, l->comp_in, clen, coff, error)) < 0)
        return FALSE;
    if (l->compression_type == 0) {
        int ret;

        if (!l->zs_ready) {
            memset(&l->zs, 0, sizeof(l->zs));
            if (inflateInit2(&l->zs, -12) != Z_OK)
                return layer_corrupt(l, error, "cannot initialize zlib", coff);
            l->zs_ready = TRUE;
        } else if (inflateReset(&l->zs) != Z_OK) {
            return layer_corrupt(l, error, "cannot reset zlib", coff);
        }
        l->zs.next_in = l->comp_in;
        l->zs.avail_in = got;
        l->zs.next_out = l->comp_out;
        l->zs.avail_out = l->map.cluster_size;
        ret = inflate(&l->zs, Z_FINISH);
        /* as qemu: the stream may end early only if the cluster is full */
        if (!((ret == Z_STREAM_END || ret == Z_BUF_ERROR) && l->zs.avail_out == 0))
            return layer_corrupt(l, error, "compressed cluster does not decompress", coff);
    } else {
        ZSTD_inBuffer in = { l->comp_in, got, 0 };
        ZSTD_outBuffer out = { l->comp_out, l->map.cluster_size, 0 };

        if (!l->zctx && !(l->zctx = ZSTD_createDCtx()))
            return layer_corrupt(l, error, "cannot initialize zstd", coff);
        ZSTD_DCtx_reset(l->zctx, ZSTD_reset_session_only);
        while (out.pos < out.size) {
            gsize last_in = in.pos;
            gsize last_out = out.pos;
            size_t ret = ZSTD_decompressStream(l->zctx, &out, &in);
            if (ZSTD_isError(ret) || (last_in >= in.pos && last_out >= out.pos))
                return layer_corrupt(l, error, "compressed cluster does not decompress", coff);
        }
    }
    l->comp_key = entry;
    return TRUE;
}

static gboolean
image_read_layer(Image *img, guint i, guint8 *buf, guint64 len, guint64 off, GError **error)
{
    Layer *l;

    if (i >= img->n) {
        memset(buf, 0, len);
        return TRUE;
    }
    l = &img->layers[i];
    if (off >= l->size) {
        memset(buf, 0, len);
        return TRUE;
    }
    if (len > l->size - off) {   /* a backing layer shorter than the one above */
        memset(buf + (l->size - off), 0, len - (l->size - off));
        len = l->size - off;
    }
    if (!l->qcow2)
        return layer_pread_zero(l, buf, len, off, error);

    while (len > 0) {
        guint64 unit = 1ULL << l->map.sub_bits;
        guint64 co;
        guint64 chunk;
        Qcow2ClusterType type;
        guint64 host;
        guint64 span;

        if (!qcow2_map_unit(&l->map, off, &type, &host, &span, error))
            return FALSE;
        if (type == QCOW2_CLUSTER_COMPRESSED)
            unit = l->map.cluster_size;
        co = off & (unit - 1);
        chunk = MIN(len, unit - co);
        if (span > chunk)        /* a whole unallocated L2 range */
            chunk = MIN(len, span);
        /* batch following units of the same kind (contiguous on the host for data) */
        while (chunk < len && type != QCOW2_CLUSTER_COMPRESSED) {
            Qcow2ClusterType t2;
            guint64 h2;
            guint64 s2;

            if (!qcow2_map_unit(&l->map, off + chunk, &t2, &h2, &s2, error))
                return FALSE;
            if (t2 != type || (type == QCOW2_CLUSTER_DATA && h2 != host + co + chunk))
                break;
            chunk += MIN(len - chunk, MAX(s2, unit));
        }
        switch (type) {
        case QCOW2_CLUSTER_UNALLOCATED:
            if (!image_read_layer(img, i + 1, buf, chunk, off, error))
                return FALSE;
            break;
        case QCOW2_CLUSTER_ZERO:
            memset(buf, 0, chunk);
            break;
        case QCOW2_CLUSTER_DATA:
            if (!layer_pread_data(l, buf, chunk, host + co, error))
                return FALSE;
            break;
        case QCOW2_CLUSTER_COMPRESSED:
            if (!layer_decompress(l, host, error))
                return FALSE;
            memcpy(buf, l->comp_out + (off & (l->map.cluster_size - 1)), chunk);
            break;
        }
        buf += chunk;
        off += chunk;
        len -= chunk;
    }
    return TRUE;
}

gssize
image_pread(Image *img, void *buf, gsize len, guint64 offset, GError **error)
{
    if (offset >= img->size)
        return 0;
    len = MIN(len, img->size - offset);
    if (len > G_MAXSSIZE)
        len = G_MAXSSIZE;
    if (!image_read_layer(img, 0, buf, len, offset, error))
        return -1;
    return len;
}

/* Status of layer @i from @off: data or hole, for *@run bytes (at most @max). */
static gboolean
image_status_layer(Image *img, guint i, guint64 off, guint64 max, gboolean *data,
                   guint64 *run, GError **error)
{
    Layer *l;
    guint64 unit;
    guint64 co;
    guint64 chunk;
    Qcow2ClusterType type;
    guint64 host;
    guint64 span;

    *data = FALSE;
    *run = max;
    if (i >= img->n)
        return TRUE;
    l = &img->layers[i];
    if (off >= l->size)
        return TRUE;
    max = MIN(max, l->size - off);
    *run = max;
    if (!l->qcow2) {
        off_t d = lseek(l->fd, off, SEEK_DATA);
        off_t h;

        if (d < 0) {
            if (errno == ENXIO) {            /* no data up to the end of the file */
                if (off < l->file_size)
                    *run = MIN(max, l->file_size - off);
                return TRUE;
            }
            *data = TRUE;                    /* no SEEK_DATA here: all data */
            return TRUE;
        }
        if ((guint64)d > off) {
            *run = MIN(max, (guint64)d - off);
            return TRUE;
        }
        *data = TRUE;
        h = lseek(l->fd, off, SEEK_HOLE);
        if (h > (off_t)off)
            *run = MIN(max, (guint64)h - off);
        return TRUE;
    }
    if (!qcow2_map_unit(&l->map, off, &type, &host, &span, error))
        return FALSE;
    unit = type == QCOW2_CLUSTER_COMPRESSED ? l->map.cluster_size : 1ULL << l->map.sub_bits;
    co = off & (unit - 1);
    chunk = MIN(max, unit - co);
    if (span > chunk)
        chunk = MIN(max, span);
    while (chunk < max) {
        Qcow2ClusterType t2;
        guint64 s2;

        if (!qcow2_map_unit(&l->map, off + chunk, &t2, &host, &s2, error))
            return FALSE;
        if ((t2 == QCOW2_CLUSTER_COMPRESSED ? QCOW2_CLUSTER_DATA : t2) !=
            (type == QCOW2_CLUSTER_COMPRESSED ? QCOW2_CLUSTER_DATA : type))
            break;
        chunk += MIN(max - chunk, MAX(s2, 1ULL << l->map.sub_bits));
    }
    *run = chunk;
    switch (type) {
    case QCOW2_CLUSTER_UNALLOCATED:
        return image_status_layer(img, i + 1, off, chunk, data, run, error);
    case QCOW2_CLUSTER_ZERO:
        return TRUE;
    case QCOW2_CLUSTER_DATA:
    case QCOW2_CLUSTER_COMPRESSED:
        *data = TRUE;
        return TRUE;
    }
    return TRUE;
}

gboolean
image_seek(Image *img, guint64 offset, gboolean data, guint64 *result, GError **error)
{
    guint64 p = offset;

    while (p < img->size) {
        gboolean is_data;
        guint64 run;

        if (!image_status_layer(img, 0, p, img->size - p, &is_data, &run, error))
            return FALSE;
        if (is_data == data) {
            *result = p;
            return TRUE;
        }
        g_assert(run > 0);
        p += run;
    }
    *result = img->size;
    return TRUE;
}

gboolean
image_layer_allocated(Image *img, guint layer, Qcow2RangeFunc fn, gpointer data,
                      GError **error)
{
    const Layer *l;

    g_return_val_if_fail(layer < img->n, FALSE);
    l = &img->layers[layer];
    if (!l->qcow2)
        return img->size == 0 || fn(data, 0, img->size, error);
    if (!qcow2_map_walk(&l->map, img->size, fn, data, error))
        return FALSE;
    /* beyond a shorter layer the guest reads zeros, whatever lies below */
    return l->size >= img->size || fn(data, l->size, img->size - l->size, error);
}

/* Opens the external data file @name of layer @l with the care a backing file
 * gets: read-only, never waiting on a FIFO, only a regular file or block device. */
static gboolean
layer_open_data_file(Layer *l, const char *name, GError **error)
{
    l->data_path = qcow_data_file_path(l->path, name);
    if ((l->data_fd = util_image_open(l->data_path, O_RDONLY, NULL, error)) < 0) {
        g_prefix_error(error, "data file of qcow2 image '%s': ", l->path);
        return FALSE;
    }
    return TRUE;
}

/* The L1 table of layer @l (file @st, header @hdr): shared with the other
 * readers of the same unchanged file, read when none has it. */
static gboolean
layer_load_l1(Layer *l, const struct stat *st, const QcowHeader *hdr, GError **error)
{
    L1Key key = {
        .dev = st->st_dev, .ino = st->st_ino, .size = st->st_size,
        .mtime_sec = st->st_mtim.tv_sec, .mtime_nsec = st->st_mtim.tv_nsec,
        .ctime_sec = st->st_ctim.tv_sec, .ctime_nsec = st->st_ctim.tv_nsec,
        .l1_offset = hdr->l1_offset, .l1_size = hdr->l1_size,
    };
    g_autofree L1Table *t = NULL;
    g_autofree guint64 *entries = NULL;
    gssize got;

    if ((l->l1 = l1_table_lookup(&key)))
        return TRUE;
    entries = g_new0(guint64, MAX(hdr->l1_size, 1));
    if (hdr->l1_size > 0) {   /* qcow_header_read() checked it lies inside the file */
        got = layer_pread(l, entries, (gsize)hdr->l1_size * 8, hdr->l1_offset, error);
        if (got < 0)
            return FALSE;
        if (got != (gssize)hdr->l1_size * 8)
            return layer_corrupt(l, error, "L1 table is truncated", hdr->l1_offset);
        for (guint32 i = 0; i < hdr->l1_size; i++)
            entries[i] = GUINT64_FROM_BE(entries[i]);
    }
    t = g_new0(L1Table, 1);
    t->key = key;
    t->refs = 1;
    t->entries = g_steal_pointer(&entries);
    l->l1 = l1_table_publish(g_steal_pointer(&t));
    return TRUE;
}

static gboolean
layer_open_qcow2(Layer *l, const struct stat *st, GError **error)
{
    QcowHeader hdr;
    g_autofree char *data_file = NULL;

    if (!qcow_header_read(l->fd, l->path, &hdr, error))
        return FALSE;
    data_file = g_steal_pointer(&hdr.data_file);
    qcow_header_clear(&hdr);
    if (hdr.crypt_method != 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "qcow2 image '%s' is encrypted: reading encrypted images is not supported",
                    l->path);
        return FALSE;
    }
    if (hdr.incompatible & ~(QCOW_INCOMPAT_DIRTY | QCOW_INCOMPAT_CORRUPT |
                             QCOW_INCOMPAT_DATA_FILE | QCOW_INCOMPAT_COMPRESSION |
                             QCOW_INCOMPAT_EXTL2)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "qcow2 image '%s' uses unsupported features (incompatible bits 0x%"
                    G_GINT64_MODIFIER "x)", l->path, hdr.incompatible);
        return FALSE;
    }
    if (hdr.compression_type > 1) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "qcow2 image '%s' uses unknown compression type %u", l->path,
                    hdr.compression_type);
        return FALSE;
    }
    l->qcow2 = TRUE;
    if (!qcow2_map_init(&l->map, &hdr, l->path, error))
        return FALSE;
    l->size = l->map.size;
    l->file_size = hdr.file_size;
    l->compression_type = hdr.compression_type;
    if (data_file && !layer_open_data_file(l, data_file, error))
        return FALSE;
    if (!layer_load_l1(l, st, &hdr, error))
        return FALSE;
    l->map.l1 = l->l1->entries;
    l->map.l1_size = hdr.l1_size;
    l->map.load = layer_l2;
    l->map.load_data = l;
    l->ncache = CLAMP(L2_CACHE_BYTES >> hdr.cluster_bits, 4, 64);
    l->cache = g_new0(L2Slot, l->ncache);
    return TRUE;
}

Image *
image_open(const Chain *chain, guint from, GError **error)
{
    g_autoptr(Image) img = g_new0(Image, 1);
    guint i;

    if (from >= chain->layers->len) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "backing chain has no element %u", from);
        return NULL;
    }
    img->layers = g_new0(Layer, chain->layers->len - from);
    for (i = from; i < chain->layers->len; i++) {
        const ChainLayer *cl = g_ptr_array_index(chain->layers, i);
        const StorageSource *src = cl->src;
        const char *format = src->format ? src->format : "raw";
        Layer *l = &img->layers[img->n];
        struct stat st;

        l->fd = -1;
        l->data_fd = -1;
        img->n++;
        l->path = g_strdup(src->path);
        if (cl->error) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                        "backing chain element '%s' cannot be read: %s", cl->label, cl->error);
            return NULL;
        }
        if ((src->type != STORAGE_TYPE_FILE && src->type != STORAGE_TYPE_BLOCK) || !src->path) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "backing chain element '%s' is not a local image", cl->label);
            return NULL;
        }
        if (!g_str_equal(format, "raw") && !g_str_equal(format, "qcow2")) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "image '%s': reading format '%s' is not supported", src->path, format);
            return NULL;
        }
        if ((l->fd = util_image_open(src->path, O_RDONLY, &st, error)) < 0)
            return NULL;
        if (g_str_equal(format, "qcow2")) {
            if (!layer_open_qcow2(l, &st, error))
                return NULL;
        } else {
            off_t end = lseek(l->fd, 0, SEEK_END);
            l->file_size = end < 0 ? (guint64)st.st_size : (guint64)end;
            l->size = QCOW_SECTORS_UP(l->file_size);   /* the tail reads as zeros */
        }
    }
    img->size = img->layers[0].size;
    return g_steal_pointer(&img);
}
