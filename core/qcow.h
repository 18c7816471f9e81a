/* qcow.h: image headers (qcow2 through libqcow plus our own header parser) and the byte-exact qcow2 reader. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What an image header says. */
typedef struct {
    char *format;           /* "qcow2", "raw", "qcow", "qed", ... (probed) */
    guint64 virtual_size;
    guint64 file_size;
    guint64 allocated;      /* st_blocks * 512 */
    guint32 cluster_size;   /* qcow2 */
    guint32 version;        /* qcow2 2 or 3 */
    char *backing_name;     /* as written in the header; NULL = none */
    char *backing_format;   /* the backing-format header extension; NULL = not recorded */
    guint nsnapshots;       /* internal snapshots */
    gboolean encrypted;
    char *compression;      /* "zlib", "zstd" */
} QcowInfo;

void qcow_info_free(QcowInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QcowInfo, qcow_info_free)

/* Probes the format of @path from its header (qcow2, qcow, qed, vmdk, vdi, vpc,
 * ... else raw). Only for libvirt's probing; never used for the top image. */
char *qcow_probe_format(const char *path, GError **error);

/* Reads the header of @path as @format ("qcow2" or "raw"; others: virtual size =
 * file size is not assumed: CORE_ERROR_UNSUPPORTED). Validates the header
 * (CORE_ERROR_CORRUPT for truncated/insane tables). */
QcowInfo *qcow_info_read(const char *path, const char *format, GError **error);

G_END_DECLS
