/* qcow2w.c: a small streaming qcow2 writer (v3, no compression): data first, metadata at the end. */
#include "qcow2w.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "qcow2.h"
#include "util.h"

#define QCOW2W_REFCOUNT_ORDER 4            /* 16-bit refcounts, as qemu-img */

struct Qcow2Writer {
    int fd;
    char *path;
    guint64 size;             /* virtual size */
    guint cluster_bits;
    guint64 cs;               /* cluster size */
    guint64 l2_entries;       /* entries per L2 table */
    guint64 nclusters;        /* guest clusters */
    guint64 l1_size;          /* L1 entries */
    guint64 **l2;             /* l1_size tables of host-order entries, allocated on first use */
    guint64 next_host;        /* host offset of the next data cluster */
    guint64 data_bytes;
    char *backing_name;
    char *backing_format;
    GMutex lock;              /* guards l2, next_host, data_bytes: writes may come from
                               * several threads */
    gboolean finished;
};

void
qcow2w_free(Qcow2Writer *w)
{
    if (!w)
        return;
    if (w->l2) {
        for (guint64 i = 0; i < w->l1_size; i++)
            g_free(w->l2[i]);
        g_free(w->l2);
    }
    g_free(w->path);
    g_free(w->backing_name);
    g_free(w->backing_format);
    g_mutex_clear(&w->lock);
    g_free(w);
}

guint32
qcow2w_cluster_size(const Qcow2Writer *w)
{
    return (guint32)w->cs;
}

guint64
qcow2w_data_bytes(const Qcow2Writer *w)
{
    return w->data_bytes;
}

static gsize
qcow2w_ext_len(gsize len)
{
    return 8 + ((len + 7) & ~(gsize)7);
}

Qcow2Writer *
qcow2w_new(int fd, const char *path, guint64 virtual_size, guint32 cluster_size,
           const char *backing_name, const char *backing_format, GError **error)
{
    g_autoptr(Qcow2Writer) w = g_new0(Qcow2Writer, 1);
    gsize hdr_need;

    g_mutex_init(&w->lock);
    if (cluster_size == 0)
        cluster_size = QCOW2W_DEFAULT_CLUSTER_SIZE;
    if (cluster_size < 512 || cluster_size > 2 * 1024 * 1024 ||
        (cluster_size & (cluster_size - 1)) != 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "qcow2 cluster size %u is not a power of two between 512 and 2M",
                    cluster_size);
        return NULL;
    }
    if (backing_format && !backing_name) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "a backing format needs a backing file");
        return NULL;
    }
    if (backing_name && (strlen(backing_name) == 0 ||
                         strlen(backing_name) > QCOW2_MAX_BACKING)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "backing file name '%s' is empty or too long", backing_name);
        return NULL;
    }
    /* header, backing format extension, end extension, backing name: cluster 0 */
    hdr_need = QCOW2_HEADER_LEN_V3 + 8 +
               (backing_format ? qcow2w_ext_len(strlen(backing_format)) : 0) +
               (backing_name ? strlen(backing_name) : 0);
    if (hdr_need > cluster_size) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "backing file name '%s' does not fit in a %u byte qcow2 header",
                    backing_name, cluster_size);
        return NULL;
    }
    /* 2^61 bytes keeps every offset inside QCOW2_OFFSET_MASK with room to spare */
    if (virtual_size > (1ULL << 61)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "virtual size %" G_GUINT64_FORMAT " is too large for qcow2", virtual_size);
        return NULL;
    }
    w->fd = fd;
    w->path = g_strdup(path);
    w->size = virtual_size;
    w->cluster_bits = g_bit_nth_lsf(cluster_size, -1);
    w->cs = cluster_size;
    w->l2_entries = w->cs / 8;
    w->nclusters = (virtual_size + w->cs - 1) >> w->cluster_bits;
    w->l1_size = (w->nclusters + w->l2_entries - 1) / w->l2_entries;
    if (w->l1_size * 8 > QCOW2_MAX_L1_BYTES) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "virtual size %" G_GUINT64_FORMAT " needs too large an L1 table "
                    "with %u byte clusters", virtual_size, cluster_size);
        return NULL;
    }
    w->l2 = g_new0(guint64 *, MAX(w->l1_size, 1));
    w->next_host = w->cs;        /* cluster 0: the header, written last */
    w->backing_name = g_strdup(backing_name);
    w->backing_format = g_strdup(backing_format);
    return g_steal_pointer(&w);
}

static gboolean
qcow2w_pwrite(Qcow2Writer *w, const void *buf, gsize len, guint64 off, GError **error)
{
    return util_pwrite_full(w->fd, w->path, buf, len, off, error);
}


static guint64 *
qcow2w_entry(Qcow2Writer *w, guint64 cluster)
{
    guint64 l1 = cluster / w->l2_entries;

    g_assert(cluster < w->nclusters);
    if (!w->l2[l1])
        w->l2[l1] = g_new0(guint64, w->l2_entries);
    return &w->l2[l1][cluster % w->l2_entries];
}

void
qcow2w_write_zeros(Qcow2Writer *w, guint64 offset, guint64 len)
{
    g_assert(!w->finished && offset % w->cs == 0);
    g_mutex_lock(&w->lock);
    for (guint64 c = offset >> w->cluster_bits; c < w->nclusters && (c << w->cluster_bits) <
         offset + len; c++) {
        guint64 *e = qcow2w_entry(w, c);

        g_assert(*e == 0);
        *e = QCOW2_OFLAG_ZERO;
    }
    g_mutex_unlock(&w->lock);
}

/* Appends @n clusters of data for guest clusters @first.. and maps them: the
 * space is reserved under the lock, the data written outside it. */
static gboolean
qcow2w_append(Qcow2Writer *w, guint64 first, const guint8 *buf, guint64 n, GError **error)
{
    guint64 host;

    g_mutex_lock(&w->lock);
    host = w->next_host;
    w->next_host += n * w->cs;
    w->data_bytes += n * w->cs;
    for (guint64 i = 0; i < n; i++) {
        guint64 *e = qcow2w_entry(w, first + i);

        g_assert(*e == 0);
        *e = (host + i * w->cs) | QCOW2_OFLAG_COPIED;
    }
    g_mutex_unlock(&w->lock);
    /* on failure the image is abandoned anyway: the mapping may point at garbage */
    if (!qcow2w_pwrite(w, buf, n * w->cs, host, error))
        return FALSE;
    /* Start writeback now, so the final fsync finds little left to write. */
    sync_file_range(w->fd, (off_t)host, (off_t)(n * w->cs), SYNC_FILE_RANGE_WRITE);
    return TRUE;
}

gboolean
qcow2w_write(Qcow2Writer *w, guint64 offset, const void *buf, gsize len,
             gboolean zero_clusters, GError **error)
{
    const guint8 *p = buf;
    guint64 first = offset >> w->cluster_bits;
    guint64 n = 0;          /* clusters in the current run of data */
    guint64 c;

    g_assert(!w->finished);
    g_assert(offset % w->cs == 0);
    g_assert(len % w->cs == 0 || offset + len == w->size);
    g_assert(offset + len <= w->size);
    for (c = first; (c << w->cluster_bits) < offset + len; c++) {
        const guint8 *cp = p + ((c - first) << w->cluster_bits);
        gsize clen = MIN(w->cs, offset + len - (c << w->cluster_bits));
        gboolean zero = util_is_zero(cp, clen);

        if (zero || clen < w->cs) {
            /* flush the run before this cluster */
            if (n > 0 && !qcow2w_append(w, c - n, p + ((c - n - first) << w->cluster_bits), n,
                                        error))
                return FALSE;
            n = 0;
            if (zero) {
                if (zero_clusters)
                    qcow2w_write_zeros(w, c << w->cluster_bits, w->cs);
                continue;
            }
            /* the partial last cluster of the disk: padded */
            {
                g_autofree guint8 *pad = g_malloc0(w->cs);

                memcpy(pad, cp, clen);
                if (!qcow2w_append(w, c, pad, 1, error))
                    return FALSE;
            }
            continue;
        }
        n++;
    }
    if (n > 0 && !qcow2w_append(w, c - n, p + ((c - n - first) << w->cluster_bits), n, error))
        return FALSE;
    return TRUE;
}

static void
qcow2w_put32(guint8 *p, guint32 v)
{
    v = GUINT32_TO_BE(v);
    memcpy(p, &v, 4);
}

static void
qcow2w_put64(guint8 *p, guint64 v)
{
    v = GUINT64_TO_BE(v);
    memcpy(p, &v, 8);
}

gboolean
qcow2w_finish(Qcow2Writer *w, GError **error)
{
    g_autofree guint8 *table = g_malloc(w->cs);
    g_autofree guint8 *meta = NULL;
    g_autofree guint8 *hdr = g_malloc0(w->cs);
    g_autofree guint64 *l1 = g_new0(guint64, MAX(w->l1_size, 1));
    guint64 host = w->next_host;
    guint64 l1_clusters = MAX((w->l1_size * 8 + w->cs - 1) / w->cs, 1);
    guint64 per_block = w->cs * 8 / (1 << QCOW2W_REFCOUNT_ORDER);
    guint64 used;
    guint64 rb = 0;
    guint64 rt = 0;
    guint64 total;
    guint64 l1_off;
    guint64 rb_off;
    guint64 rt_off;
    gsize pos;

    g_assert(!w->finished);
    w->finished = TRUE;

    /* L2 tables right after the data */
    for (guint64 i = 0; i < w->l1_size; i++) {
        if (!w->l2[i])
            continue;
        for (guint64 j = 0; j < w->l2_entries; j++)
            qcow2w_put64(table + j * 8, w->l2[i][j]);
        if (!qcow2w_pwrite(w, table, w->cs, host, error))
            return FALSE;
        l1[i] = host | QCOW2_OFLAG_COPIED;
        host += w->cs;
    }
    l1_off = host;
    used = (l1_off >> w->cluster_bits) + l1_clusters;
    /* refcount blocks and table cover every cluster, themselves included */
    for (;;) {
        guint64 nrb;
        guint64 nrt;

        total = used + rb + rt;
        nrb = (total + per_block - 1) / per_block;
        nrt = (nrb * 8 + w->cs - 1) / w->cs;
        if (nrb == rb && nrt == rt)
            break;
        rb = nrb;
        rt = nrt;
    }
    rb_off = l1_off + l1_clusters * w->cs;
    rt_off = rb_off + rb * w->cs;
    meta = g_malloc0((l1_clusters + rb + rt) * w->cs);
    for (guint64 i = 0; i < w->l1_size; i++)
        qcow2w_put64(meta + i * 8, l1[i]);
    pos = l1_clusters * w->cs;
    for (guint64 i = 0; i < total; i++) {
        guint16 one = GUINT16_TO_BE(1);

        memcpy(meta + pos + i * 2, &one, 2);
    }
    pos += rb * w->cs;
    for (guint64 i = 0; i < rb; i++)
        qcow2w_put64(meta + pos + i * 8, rb_off + i * w->cs);
    if (!qcow2w_pwrite(w, meta, (l1_clusters + rb + rt) * w->cs, l1_off, error))
        return FALSE;

    /* the header, last: until now the file has no valid qcow2 header at all */
    qcow2w_put32(hdr + 0, QCOW2_MAGIC);
    qcow2w_put32(hdr + 4, 3);
    qcow2w_put32(hdr + 20, w->cluster_bits);
    qcow2w_put64(hdr + 24, w->size);
    qcow2w_put32(hdr + 32, 0);                   /* no encryption */
    qcow2w_put32(hdr + 36, (guint32)w->l1_size);
    qcow2w_put64(hdr + 40, l1_off);
    qcow2w_put64(hdr + 48, rt_off);
    qcow2w_put32(hdr + 56, (guint32)rt);
    /* 60 nb_snapshots, 64 snapshots_offset, 72.. feature bits: all zero */
    qcow2w_put32(hdr + 96, QCOW2W_REFCOUNT_ORDER);
    qcow2w_put32(hdr + 100, QCOW2_HEADER_LEN_V3);
    pos = QCOW2_HEADER_LEN_V3;
    if (w->backing_format) {
        gsize flen = strlen(w->backing_format);

        qcow2w_put32(hdr + pos, QCOW2_EXT_BACKING_FORMAT);
        qcow2w_put32(hdr + pos + 4, (guint32)flen);
        memcpy(hdr + pos + 8, w->backing_format, flen);
        pos += qcow2w_ext_len(flen);
    }
    pos += 8;                                   /* end of extensions: type 0, length 0 */
    if (w->backing_name) {
        gsize blen = strlen(w->backing_name);

        qcow2w_put64(hdr + 8, pos);
        qcow2w_put32(hdr + 16, (guint32)blen);
        memcpy(hdr + pos, w->backing_name, blen);
    }
    return qcow2w_pwrite(w, hdr, w->cs, 0, error);
}

/* ---- empty overlays, as qemu-img create writes them ---------------------------- */

/* qemu 7.2's feature name table (qcow2_feature_name_table order). */
static const struct {
    guint8 type;
    guint8 bit;
    const char *name;
} qcow2w_features[] = {
    { 0, 0, "dirty bit" },
    { 0, 1, "corrupt bit" },
    { 0, 2, "external data file" },
    { 0, 3, "compression type" },
    { 0, 4, "extended L2 entries" },
    { 1, 0, "lazy refcounts" },
    { 2, 0, "bitmaps" },
    { 2, 1, "raw external data" },
};

gboolean
qcow2w_overlay_supported(guint64 virtual_size, const char *backing_name,
                         const char *backing_format)
{
    guint64 per_l2 = (guint64)QCOW2W_DEFAULT_CLUSTER_SIZE * (QCOW2W_DEFAULT_CLUSTER_SIZE / 8);
    guint64 l1_size = (virtual_size + per_l2 - 1) / per_l2;

    /* One cluster of L1 (4 TiB), sizes qemu takes as they are, names that fit the
     * header cluster after the extensions. */
    return virtual_size > 0 && virtual_size % 512 == 0 && l1_size * 8 <= QCOW2W_DEFAULT_CLUSTER_SIZE &&
           backing_name && *backing_name && strlen(backing_name) <= QCOW2_MAX_BACKING &&
           backing_format && *backing_format && strlen(backing_format) < 16;
}

gboolean
qcow2w_create_overlay(int fd, const char *path, guint64 virtual_size, const char *backing_name,
                      const char *backing_format, GError **error)
{
    const guint64 cs = QCOW2W_DEFAULT_CLUSTER_SIZE;
    guint64 per_l2 = cs * (cs / 8);
    guint64 l1_size = (virtual_size + per_l2 - 1) / per_l2;
    g_autofree guint8 *buf = NULL;
    gsize flen = strlen(backing_format);
    gsize blen = strlen(backing_name);
    gsize ftab = G_N_ELEMENTS(qcow2w_features) * 48;
    gsize pos;
    Qcow2Writer w = { .fd = fd, .path = (char *)path };

    g_return_val_if_fail(qcow2w_overlay_supported(virtual_size, backing_name, backing_format),
                         FALSE);
    buf = g_malloc0(3 * cs + l1_size * 8);
    /* cluster 0: the header, its extensions and the backing file name */
    qcow2w_put32(buf + 0, QCOW2_MAGIC);
    qcow2w_put32(buf + 4, 3);
    qcow2w_put32(buf + 20, 16);                  /* cluster_bits: 64 KiB */
    qcow2w_put64(buf + 24, virtual_size);
    qcow2w_put32(buf + 36, (guint32)l1_size);
    qcow2w_put64(buf + 40, 3 * cs);              /* L1 table */
    qcow2w_put64(buf + 48, cs);                  /* refcount table */
    qcow2w_put32(buf + 56, 1);
    qcow2w_put32(buf + 96, QCOW2W_REFCOUNT_ORDER);
    qcow2w_put32(buf + 100, QCOW2_HEADER_LEN_V3_COMPRESSION);
    pos = QCOW2_HEADER_LEN_V3_COMPRESSION;      /* compression type 0 (zlib) and padding */
    qcow2w_put32(buf + pos, QCOW2_EXT_BACKING_FORMAT);
    qcow2w_put32(buf + pos + 4, (guint32)flen);
    memcpy(buf + pos + 8, backing_format, flen);
    pos += qcow2w_ext_len(flen);
    qcow2w_put32(buf + pos, QCOW2_EXT_FEATURE_TABLE);
    qcow2w_put32(buf + pos + 4, (guint32)ftab);
    for (guint i = 0; i < G_N_ELEMENTS(qcow2w_features); i++) {
        guint8 *e = buf + pos + 8 + i * 48;

        e[0] = qcow2w_features[i].type;
        e[1] = qcow2w_features[i].bit;
        memcpy(e + 2, qcow2w_features[i].name, strlen(qcow2w_features[i].name));
    }
    pos += qcow2w_ext_len(ftab);
    pos += 8;                                    /* end of extensions */
    g_assert(pos + blen <= cs);
    qcow2w_put64(buf + 8, pos);
    qcow2w_put32(buf + 16, (guint32)blen);
    memcpy(buf + pos, backing_name, blen);
    /* cluster 1: the refcount table, one block; cluster 2: that block, clusters 0-3 */
    qcow2w_put64(buf + cs, 2 * cs);
    for (guint i = 0; i < 4; i++) {
        guint16 one = GUINT16_TO_BE(1);

        memcpy(buf + 2 * cs + i * 2, &one, 2);
    }
    /* cluster 3: the L1 table, all zero (nothing allocated), as long as it is */
    if (!qcow2w_pwrite(&w, buf, 3 * cs + l1_size * 8, 0, error))
        return FALSE;
    if (fdatasync(fd) < 0) {
        int errsv = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "cannot sync '%s': %s",
                    path, g_strerror(errsv));
        return FALSE;
    }
    return TRUE;
}
