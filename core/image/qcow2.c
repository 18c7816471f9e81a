/* qcow2.c: L1/L2 entry decoding and the allocation walk, shared by the reader and the backup engine. */
#include "qcow2.h"

#include <string.h>

#include "error.h"

gboolean
qcow2_corrupt(const char *path, GError **error, const char *what, guint64 off)
{
    g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                "qcow2 image '%s' is corrupt: %s (offset %" G_GUINT64_FORMAT ")",
                path, what, off);
    return FALSE;
}

gboolean
qcow2_map_init(Qcow2Map *m, const QcowHeader *hdr, const char *path, GError **error)
{
    memset(m, 0, sizeof(*m));
    m->path = path;
    m->version = hdr->version;
    m->cluster_bits = hdr->cluster_bits;
    m->cluster_size = 1ULL << hdr->cluster_bits;
    m->extl2 = (hdr->incompatible & QCOW_INCOMPAT_EXTL2) != 0;
    if (m->extl2 && hdr->cluster_bits < 14)   /* subclusters of at least 512 bytes */
        return qcow2_corrupt(path, error, "extended L2 entries need clusters of 16 KiB or more",
                             0);
    m->l2_bits = hdr->cluster_bits - (m->extl2 ? 4 : 3);
    m->sub_bits = m->extl2 ? hdr->cluster_bits - 5 : hdr->cluster_bits;
    m->data_file = (hdr->incompatible & QCOW_INCOMPAT_DATA_FILE) != 0;
    m->size = QCOW_SECTORS_DOWN(hdr->size);
    return TRUE;
}

gboolean
qcow2_entry_decode(const Qcow2Map *m, guint64 entry, guint64 bitmap, guint64 off,
                   Qcow2Cluster *c, GError **error)
{
    guint64 chost = entry & QCOW2_OFFSET_MASK;

    memset(c, 0, sizeof(*c));
    c->entry = entry;
    if (entry & QCOW2_OFLAG_COMPRESSED) {
        if (m->data_file)
            return qcow2_corrupt(m->path, error, "compressed cluster in an image with an "
                                 "external data file", off);
        c->compressed = TRUE;
        return TRUE;
    }
    /* offset 0 is a valid offset in a data file: there, "copied" says allocated */
    c->mapped = chost != 0 || (m->data_file && (entry & QCOW2_OFLAG_COPIED));
    if (!m->extl2) {
        if (entry & QCOW2_OFLAG_ZERO) {
            if (m->version < 3)
                return qcow2_corrupt(m->path, error, "zero cluster in a version 2 image", off);
            c->zero = 1;
            if (chost == 0)
                return TRUE;
        } else {
            if (!c->mapped)
                return TRUE;
            c->data = 1;
        }
    } else if (!c->mapped) {
        /* bitmap: bit n = subcluster n allocated, bit 32 + n = reads as zeros */
        if (bitmap & 0xffffffffULL)
            return qcow2_corrupt(m->path, error, "unallocated cluster has allocated subclusters",
                                 off);
        c->zero = (guint32)(bitmap >> 32);
        return TRUE;
    } else if ((bitmap >> 32) & bitmap) {
        return qcow2_corrupt(m->path, error, "a subcluster is both allocated and zero", off);
    } else {
        c->zero = (guint32)(bitmap >> 32);
        c->data = (guint32)bitmap;
    }
    /* a cluster with a host offset, whatever it reads as: the offset must be sane */
    if (chost % m->cluster_size != 0)
        return qcow2_corrupt(m->path, error, "cluster allocation offset is unaligned", chost);
    if (m->data_file && chost != (off & ~(m->cluster_size - 1)))
        return qcow2_corrupt(m->path, error, "data file offset does not match the guest offset",
                             chost);
    c->host = chost;
    return TRUE;
}

/* The L2 table covering guest offset @off, or NULL with *@span set (the bytes
 * from @off that its unallocated L1 entry covers) and no error. */
static const guint64 *
qcow2_map_l2(const Qcow2Map *m, guint64 off, guint64 *span, GError **error)
{
    guint64 l1_idx = off >> (m->cluster_bits + m->l2_bits);
    guint64 l2_off = l1_idx < m->l1_size ? (m->l1[l1_idx] & QCOW2_OFFSET_MASK) : 0;

    *span = 0;
    if (l2_off == 0) {
        *span = ((l1_idx + 1) << (m->cluster_bits + m->l2_bits)) - off;
        return NULL;
    }
    if (l2_off % m->cluster_size != 0) {
        qcow2_corrupt(m->path, error, "L2 table offset is unaligned", l2_off);
        return NULL;
    }
    return m->load(m->load_data, l2_off, error);
}

/* Decodes the entry of the cluster holding @off from its L2 @table. */
static gboolean
qcow2_map_entry(const Qcow2Map *m, const guint64 *table, guint64 off, Qcow2Cluster *c,
                GError **error)
{
    guint64 idx = (off >> m->cluster_bits) & ((1ULL << m->l2_bits) - 1);

    return qcow2_entry_decode(m, table[m->extl2 ? 2 * idx : idx],
                              m->extl2 ? table[2 * idx + 1] : 0, off, c, error);
}

gboolean
qcow2_map_unit(const Qcow2Map *m, guint64 off, Qcow2ClusterType *type, guint64 *host,
               guint64 *span, GError **error)
{
    const guint64 *table;
    Qcow2Cluster c;
    guint sub;

    *host = 0;
    if (!(table = qcow2_map_l2(m, off, span, error))) {
        *type = QCOW2_CLUSTER_UNALLOCATED;
        return *span > 0;
    }
    if (!qcow2_map_entry(m, table, off, &c, error))
        return FALSE;
    if (c.compressed) {
        *type = QCOW2_CLUSTER_COMPRESSED;
        *host = c.entry;
        return TRUE;
    }
    sub = m->extl2 ? (off >> m->sub_bits) & 31 : 0;
    if (c.zero & (1U << sub)) {
        *type = QCOW2_CLUSTER_ZERO;
    } else if (c.data & (1U << sub)) {
        /* beyond the end of the file a data cluster reads as zeros, as in qemu */
        *type = QCOW2_CLUSTER_DATA;
        *host = c.host + ((guint64)sub << m->sub_bits);
    } else {
        *type = QCOW2_CLUSTER_UNALLOCATED;
    }
    return TRUE;
}

void
qcow2_compressed_extent(const Qcow2Map *m, guint64 entry, guint64 *offset, guint64 *len)
{
    guint shift = 62 - (m->cluster_bits - 8);
    guint64 nsect = ((entry >> shift) & ((1ULL << (m->cluster_bits - 8)) - 1)) + 1;

    *offset = entry & ((1ULL << shift) - 1);
    *len = nsect * 512 - (*offset & 511);
}

gboolean
qcow2_map_walk(const Qcow2Map *m, guint64 end, Qcow2RangeFunc fn, gpointer data,
               GError **error)
{
    guint64 run_off = 0;
    guint64 run_len = 0;
    guint64 off = 0;

    end = MIN(end, m->size);
    while (off < end) {
        guint64 span;
        guint64 table_end;
        const guint64 *table = qcow2_map_l2(m, off, &span, error);

        if (!table) {
            if (span == 0)
                return FALSE;
            off += span;
            continue;
        }
        table_end = off + (1ULL << (m->cluster_bits + m->l2_bits));
        for (; off < MIN(end, table_end); off += m->cluster_size) {
            Qcow2Cluster c;

            if (!qcow2_map_entry(m, table, off, &c, error))
                return FALSE;
            if (!c.compressed && !c.mapped && !c.data && !c.zero)
                continue;
            if (run_len > 0 && run_off + run_len == off) {
                run_len += m->cluster_size;
                continue;
            }
            if (run_len > 0 && !fn(data, run_off, run_len, error))
                return FALSE;
            run_off = off;
            run_len = m->cluster_size;
        }
        off = table_end;
    }
    return run_len == 0 || fn(data, run_off, run_len, error);
}
