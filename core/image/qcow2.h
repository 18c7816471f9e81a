/* qcow2.h: the qcow2 format in one place: header constants, L1/L2 entry decoding, the allocation walk. */
#pragma once

#include <glib.h>

#include "qcow.h"

G_BEGIN_DECLS

/* Header fields and extensions (qemu's docs/interop/qcow2.txt). */
#define QCOW2_MAGIC 0x514649fbU                  /* "QFI\xfb" */
#define QCOW2_HEADER_LEN_V3 104
#define QCOW2_HEADER_LEN_V3_COMPRESSION 112      /* qemu 5.1+: compression type + padding */
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acaU
#define QCOW2_EXT_DATA_FILE 0x44415441U
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857U
#define QCOW2_MAX_L1_BYTES (32 * 1024 * 1024)    /* qemu's QCOW_MAX_L1_SIZE */
#define QCOW2_MAX_BACKING 1023                   /* qemu's limit on the backing file name */

/* L1 and L2 entries: the host offset of the table or cluster, and flags. */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ULL
#define QCOW2_OFLAG_COPIED (1ULL << 63)
#define QCOW2_OFLAG_COMPRESSED (1ULL << 62)
#define QCOW2_OFLAG_ZERO 1ULL

/* What an allocation unit (a cluster, or a subcluster with extended L2 entries)
 * reads as. */
typedef enum {
    QCOW2_CLUSTER_UNALLOCATED,   /* from the backing file */
    QCOW2_CLUSTER_ZERO,
    QCOW2_CLUSTER_DATA,
    QCOW2_CLUSTER_COMPRESSED,
} Qcow2ClusterType;

/* The L2 table at host offset @offset, one cluster of entries in host byte
 * order, owned by the loader (valid until its next call); NULL with @error. */
typedef const guint64 *(*Qcow2L2Load)(gpointer data, guint64 offset, GError **error);

/* One image's geometry and tables: what turns a guest offset into a host one. */
typedef struct {
    const char *path;       /* names the image in errors */
    guint32 version;
    guint cluster_bits;
    guint64 cluster_size;
    guint l2_bits;          /* log2 of the entries in an L2 table */
    gboolean extl2;         /* extended L2 entries: 32 subclusters per cluster */
    guint sub_bits;         /* log2 of the allocation unit: subcluster or cluster */
    gboolean data_file;     /* the data clusters live in an external data file */
    guint64 size;           /* virtual size, as qemu counts it (whole sectors) */
    const guint64 *l1;      /* host byte order; set by the caller */
    guint32 l1_size;
    Qcow2L2Load load;       /* set by the caller */
    gpointer load_data;
} Qcow2Map;

/* What one L2 entry says of its whole cluster. */
typedef struct {
    gboolean compressed;    /* @entry is a compressed cluster's descriptor */
    gboolean mapped;        /* the entry holds a host offset (@host), whatever it reads as */
    guint64 entry;          /* the L2 entry as read */
    guint64 host;           /* the cluster's host offset (in the data file when there is one) */
    guint32 data;           /* bit n: unit n reads from @host + (n << sub_bits) */
    guint32 zero;           /* bit n: unit n reads as zeros */
} Qcow2Cluster;

/* Fills the geometry of @m from the header @hdr of image @path (tables and
 * loader stay for the caller). CORE_ERROR_CORRUPT where qemu refuses to open it. */
gboolean qcow2_map_init(Qcow2Map *m, const QcowHeader *hdr, const char *path, GError **error);

/* CORE_ERROR_CORRUPT "qcow2 image '@path' is corrupt: @what (offset @off)". FALSE. */
gboolean qcow2_corrupt(const char *path, GError **error, const char *what, guint64 off);

/* Decodes L2 @entry (and @bitmap, the second word of an extended entry) of the
 * cluster holding guest offset @off, failing where qemu's
 * qcow2_get_host_offset() fails. Pure: no I/O. */
gboolean qcow2_entry_decode(const Qcow2Map *m, guint64 entry, guint64 bitmap, guint64 off,
                            Qcow2Cluster *c, GError **error);

/* Maps guest offset @off (< m->size) to its allocation unit: its type, its host
 * offset (@host; for a compressed cluster the whole L2 entry), and for an
 * unallocated L2 table how many bytes from @off share that fate (@span, else 0). */
gboolean qcow2_map_unit(const Qcow2Map *m, guint64 off, Qcow2ClusterType *type, guint64 *host,
                        guint64 *span, GError **error);

/* Where the compressed cluster of L2 @entry lies in the image file: @offset and
 * at most @len bytes (the last sector may extend past the end of the file). */
void qcow2_compressed_extent(const Qcow2Map *m, guint64 entry, guint64 *offset, guint64 *len);

/* Called for a run of guest bytes at @offset. FALSE stops the walk (set @error). */
typedef gboolean (*Qcow2RangeFunc)(gpointer data, guint64 offset, guint64 len, GError **error);

/* The allocation walk: calls @fn, in guest order, for every whole cluster below
 * @end (and m->size) whose entry hides what the backing file holds there: data,
 * compressed or zero units, or a host offset of its own. Checks every entry as
 * qcow2_entry_decode() does. */
gboolean qcow2_map_walk(const Qcow2Map *m, guint64 end, Qcow2RangeFunc fn, gpointer data,
                        GError **error);

G_END_DECLS
