/* qcow2w.h: a small streaming qcow2 writer (v3, no compression): data first, metadata at the end. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define QCOW2W_DEFAULT_CLUSTER_SIZE 65536

typedef struct Qcow2Writer Qcow2Writer;

/* Starts a qcow2 v3 image (compat 1.1, refcount_order 4) of @virtual_size bytes on
 * the open, empty, writable descriptor @fd (not closed here; @path only names it
 * in errors). @cluster_size: a power of two in 512 .. 2 MiB (0 = 64 KiB).
 * @backing_name / @backing_format (both optional; the format needs the name) are
 * recorded in the header as given. Data clusters are appended to the file as they
 * come; the tables and the header are written by qcow2w_finish(). Errors:
 * CORE_ERROR_INVALID for impossible parameters. Owned; qcow2w_free(). */
Qcow2Writer *qcow2w_new(int fd, const char *path, guint64 virtual_size, guint32 cluster_size,
                        const char *backing_name, const char *backing_format,
                        GError **error);
void qcow2w_free(Qcow2Writer *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Qcow2Writer, qcow2w_free)

guint32 qcow2w_cluster_size(const Qcow2Writer *w);

/* Writes @len bytes of guest data at guest offset @offset, which is cluster
 * aligned; @len is a multiple of the cluster size, except for the last cluster of
 * the disk (padded with zeros). Clusters that read as zero are not written: with
 * @zero_clusters FALSE they stay unallocated (they read from the backing file, or
 * as zeros without one); with TRUE they become v3 zero clusters (they read as
 * zeros whatever the backing file holds: for increments). A cluster is written
 * once at most (a programming error otherwise). Several threads may write
 * (distinct clusters) at once; qcow2w_finish() comes after them all. G_FILE_ERROR
 * on I/O errors. */
gboolean qcow2w_write(Qcow2Writer *w, guint64 offset, const void *buf, gsize len,
                      gboolean zero_clusters, GError **error);

/* Marks @len bytes at cluster-aligned @offset as v3 zero clusters (no data). */
void qcow2w_write_zeros(Qcow2Writer *w, guint64 offset, guint64 len);

/* Writes the L2 tables, the L1 table, the refcount blocks and table after the
 * data, then the header at offset 0. Does not fsync. The writer is done after
 * it, whatever the outcome. */
gboolean qcow2w_finish(Qcow2Writer *w, GError **error);

/* Whether qcow2w_create_overlay() can write an overlay of @virtual_size over
 * @backing_name in @backing_format (else: qemu-img create). */
gboolean qcow2w_overlay_supported(guint64 virtual_size, const char *backing_name,
                                  const char *backing_format);

/* Writes an empty qcow2 overlay of @virtual_size bytes over @backing_name
 * (@backing_format recorded) to the open, empty descriptor @fd, byte for byte what
 * `qemu-img create -f qcow2 -o backing_fmt=F,backing_file=B` (qemu 7.2) writes:
 * v3, 64 KiB clusters, the feature name table, refcount table at cluster 1, its
 * block at 2, the L1 table at 3. Only for qcow2w_overlay_supported() arguments
 * (a programming error otherwise). Then fdatasync. G_FILE_ERROR on I/O errors. */
gboolean qcow2w_create_overlay(int fd, const char *path, guint64 virtual_size,
                               const char *backing_name, const char *backing_format,
                               GError **error);

/* Bytes of guest data written so far (allocated clusters times cluster size). */
guint64 qcow2w_data_bytes(const Qcow2Writer *w);

G_END_DECLS
