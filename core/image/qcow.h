/* qcow.h: image headers (qcow2 through libqcow plus our own header parser) and the byte-exact qcow2 reader. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* What an image header says. */
typedef struct {
    char *format;           /* "qcow2", "raw", "qcow", "qed", ... (probed) */
    guint64 virtual_size;   /* what qemu reads: qcow2 rounds the header's size down to whole
                               512-byte sectors, raw rounds the file size up */
    guint64 file_size;
    guint64 allocated;      /* st_blocks * 512 */
    guint32 cluster_size;   /* qcow2 */
    guint32 version;        /* qcow2 2 or 3 */
    char *backing_name;     /* as written in the header; NULL = none */
    char *backing_format;   /* the backing-format header extension; NULL = not recorded */
    guint nsnapshots;       /* internal snapshots */
    gboolean encrypted;
    char *compression;      /* "zlib", "zstd" */
    char *data_file;        /* qcow2: the external data file as the header names it; NULL = none */
    gboolean data_file_raw; /* the data file is a valid raw image by itself */
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

/* Our own parse of a qcow2 header (qcow.c), shared with the reader in image.c.
 * Everything here has been checked against the file size: table offsets lie
 * inside the file, cluster_bits is 9..21, l1_size covers the virtual size and
 * is at most 32 MiB of entries. Encryption is only reported (the reader refuses
 * it). */
typedef struct {
    guint32 version;            /* 2 or 3 */
    guint32 cluster_bits;
    guint64 size;               /* virtual size as written (qemu reads QCOW_SECTORS_DOWN of it) */
    guint64 file_size;
    guint32 crypt_method;       /* 0 none, 1 aes, 2 luks */
    guint32 l1_size;            /* entries */
    guint64 l1_offset;
    guint32 nb_snapshots;
    guint64 incompatible;       /* v3 incompatible feature bits */
    guint8 compression_type;    /* 0 zlib, 1 zstd */
    char *backing_name;         /* NULL = none */
    char *backing_format;       /* backing-format extension; NULL = none */
    char *data_file;            /* data-file extension when QCOW_INCOMPAT_DATA_FILE is set;
                                   NULL = none (the image holds its data) */
    guint64 autoclear;          /* v3 autoclear feature bits */
} QcowHeader;

#define QCOW_INCOMPAT_DIRTY        (1ULL << 0)
#define QCOW_INCOMPAT_CORRUPT      (1ULL << 1)
#define QCOW_INCOMPAT_DATA_FILE    (1ULL << 2)
#define QCOW_INCOMPAT_COMPRESSION  (1ULL << 3)
#define QCOW_INCOMPAT_EXTL2        (1ULL << 4)
#define QCOW_AUTOCLEAR_DATA_FILE_RAW (1ULL << 1)

/* qemu counts images in whole 512-byte sectors: a qcow2 image's virtual size is
 * its header's size rounded down, a raw image's its file size rounded up. */
#define QCOW_SECTOR 512ULL
#define QCOW_SECTORS_DOWN(size) ((size) & ~(QCOW_SECTOR - 1))
#define QCOW_SECTORS_UP(size) QCOW_SECTORS_DOWN((size) + QCOW_SECTOR - 1)

/* Parses and validates the qcow2 header of the open descriptor @fd (@path only
 * names it in errors). CORE_ERROR_CORRUPT for anything out of range or
 * truncated, CORE_ERROR_PARSE when it is not qcow2, G_FILE_ERROR for I/O.
 * Fills @hdr (free its strings with qcow_header_clear()). */
gboolean qcow_header_read(int fd, const char *path, QcowHeader *hdr, GError **error);
void qcow_header_clear(QcowHeader *hdr);

/* The path of data file @name (from the header of qcow2 image @image): relative
 * names are relative to the image's directory, as backing files are (qemu-img 7.2
 * resolves them against its working directory, which a daemon does not have). */
char *qcow_data_file_path(const char *image, const char *name);

/* Probes the format of an open descriptor (see qcow_probe_format()). Owned. */
char *qcow_probe_format_fd(int fd, const char *path, GError **error);

/* The backing file name recorded by a qcow (v1) or qed image, for the probing
 * rule (a probed image with a backing file of its own is refused). *@name NULL =
 * none. FALSE with @error when the header cannot be read. */
gboolean qcow_other_backing_name(const char *path, const char *format, char **name,
                                 GError **error);

/* How many internal snapshots of qcow2 image @path are named @name (qemu allows
 * several), read from its snapshot table. CORE_ERROR_CORRUPT, G_FILE_ERROR. */
gboolean qcow_snapshot_count(const char *path, const char *name, guint *count,
                             GError **error);

G_END_DECLS
