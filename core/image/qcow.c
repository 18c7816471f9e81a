/* qcow.c: image headers: format probing, our own qcow2 header parser, libqcow cross-checks. */
#include "qcow.h"

#include <errno.h>
#include <fcntl.h>
#include <libqcow.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "qcow2.h"
#include "util.h"

#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_KNOWN_INCOMPAT 0x1fULL
#define PROBE_LEN 65536                     /* covers ISO's magic at 32769 */

void
qcow_info_free(QcowInfo *info)
{
    if (!info)
        return;
    g_free(info->format);
    g_free(info->backing_name);
    g_free(info->backing_format);
    g_free(info->compression);
    g_free(info->data_file);
    g_free(info);
}

void
qcow_header_clear(QcowHeader *hdr)
{
    g_clear_pointer(&hdr->backing_name, g_free);
    g_clear_pointer(&hdr->backing_format, g_free);
    g_clear_pointer(&hdr->data_file, g_free);
}

char *
qcow_data_file_path(const char *image, const char *name)
{
    g_autofree char *dir = NULL;

    if (g_path_is_absolute(name))
        return g_strdup(name);
    dir = g_path_get_dirname(image);
    return g_build_filename(dir, name, NULL);
}

static guint32
be32(const guint8 *p)
{
    guint32 v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_BE(v);
}

static guint64
be64(const guint8 *p)
{
    guint64 v;

    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_BE(v);
}

static guint32
le32(const guint8 *p)
{
    guint32 v;

    memcpy(&v, p, sizeof(v));
    return GUINT32_FROM_LE(v);
}

static guint64
le64(const guint8 *p)
{
    guint64 v;

    memcpy(&v, p, sizeof(v));
    return GUINT64_FROM_LE(v);
}

static gboolean
qcow_file_size(int fd, const char *path, guint64 *size, struct stat *st, GError **error)
{
    if (fstat(fd, st) < 0) {
        int errsv = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot stat '%s': %s", path, g_strerror(errsv));
        return FALSE;
    }
    if (S_ISBLK(st->st_mode)) {
        off_t end = lseek(fd, 0, SEEK_END);
        if (end < 0) {
            int errsv = errno;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                        "cannot get the size of '%s': %s", path, g_strerror(errsv));
            return FALSE;
        }
        *size = end;
    } else {
        *size = st->st_size;
    }
    return TRUE;
}

static gboolean
qcow_open_ro(const char *path, CoreFd *fd, GError **error)
{
    *fd = util_image_open(path, O_RDONLY, NULL, error);
    return *fd >= 0;
}

#define CORRUPT(...) \
    do { \
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, __VA_ARGS__); \
        qcow_header_clear(hdr); \
        return FALSE; \
    } while (0)

gboolean
qcow_header_read(int fd, const char *path, QcowHeader *hdr, GError **error)
{
    g_autofree guint8 *buf = NULL;
    struct stat st;
    guint8 fixed[112] = { 0 };
    gssize got;
    guint64 cluster_size;
    guint64 per_l1;
    guint64 need_l1;
    guint64 backing_off;
    guint32 backing_len;
    guint32 header_len;
    gsize buflen;
    gsize ext;

    memset(hdr, 0, sizeof(*hdr));
    if (!qcow_file_size(fd, path, &hdr->file_size, &st, error))
        return FALSE;
    if ((got = util_pread_full(fd, path, fixed, sizeof(fixed), 0, error)) < 0)
        return FALSE;
    if (got < 72)
        CORRUPT("qcow2 header of '%s' is truncated", path);
    if (be32(fixed) != QCOW2_MAGIC) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE, "'%s' is not a qcow2 image", path);
        return FALSE;
    }
    hdr->version = be32(fixed + 4);
    if (hdr->version != 2 && hdr->version != 3) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "qcow2 image '%s' has unsupported version %u", path, hdr->version);
        return FALSE;
    }
    backing_off = be64(fixed + 8);
    backing_len = be32(fixed + 16);
    hdr->cluster_bits = be32(fixed + 20);
    hdr->size = be64(fixed + 24);
    hdr->crypt_method = be32(fixed + 32);
    hdr->l1_size = be32(fixed + 36);
    hdr->l1_offset = be64(fixed + 40);
    hdr->nb_snapshots = be32(fixed + 60);
    header_len = 72;
    if (hdr->version == 3) {
        if (got < 104)
            CORRUPT("qcow2 header of '%s' is truncated", path);
        hdr->incompatible = be64(fixed + 72);
        hdr->autoclear = be64(fixed + 88);
        header_len = be32(fixed + 100);
        if (header_len < 104 || header_len % 8 != 0)
            CORRUPT("qcow2 image '%s' has an invalid header length %u", path, header_len);
        if (header_len > 104)
            hdr->compression_type = fixed[104];
    }
    if (hdr->cluster_bits < 9 || hdr->cluster_bits > 21)
        CORRUPT("qcow2 image '%s' has an invalid cluster size (cluster_bits %u)",
                path, hdr->cluster_bits);
    cluster_size = 1ULL << hdr->cluster_bits;
    if (header_len > cluster_size)
        CORRUPT("qcow2 header of '%s' is larger than a cluster", path);
    if (hdr->crypt_method > 2)
        CORRUPT("qcow2 image '%s' has an invalid encryption method %u", path, hdr->crypt_method);
    if (hdr->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
        CORRUPT("qcow2 image '%s' claims too many snapshots (%u)", path, hdr->nb_snapshots);
    if (hdr->nb_snapshots > 0 && be64(fixed + 64) >= hdr->file_size)
        CORRUPT("snapshot table of qcow2 image '%s' lies beyond the end of the file", path);

    /* The L1 table must cover the virtual size and lie inside the file. */
    if ((guint64)hdr->l1_size * 8 > QCOW2_MAX_L1_BYTES)
        CORRUPT("qcow2 image '%s' has an L1 table that is too large (%u entries)",
                path, hdr->l1_size);
    /* bits covered by one L1 entry (16-byte L2 entries with extended L2) */
    per_l1 = hdr->cluster_bits + (hdr->cluster_bits - 3) -
             ((hdr->incompatible & QCOW_INCOMPAT_EXTL2) ? 1 : 0);
    need_l1 = (hdr->size >> per_l1) + ((hdr->size & ((1ULL << per_l1) - 1)) ? 1 : 0);
    if (need_l1 > hdr->l1_size)
        CORRUPT("qcow2 image '%s' claims a virtual size of %" G_GUINT64_FORMAT
                " bytes that its L1 table (%u entries) does not cover",
                path, hdr->size, hdr->l1_size);
    if (hdr->l1_size > 0 &&
        (hdr->l1_offset % cluster_size != 0 || hdr->l1_offset == 0 ||
         hdr->l1_offset > hdr->file_size ||
         hdr->file_size - hdr->l1_offset < (guint64)hdr->l1_size * 8))
        CORRUPT("L1 table of qcow2 image '%s' lies outside the file", path);

    /* Header extensions and the backing name live in the first cluster. */
    buflen = MIN(cluster_size, hdr->file_size);
    buf = g_malloc0(buflen + 1);
    if ((got = util_pread_full(fd, path, buf, buflen, 0, error)) < 0) {
        qcow_header_clear(hdr);
        return FALSE;
    }
    buflen = got;
    if (header_len > buflen)
        CORRUPT("qcow2 header of '%s' is truncated", path);
    if (backing_off != 0 && backing_len > 0) {
        if (backing_len > QCOW2_MAX_BACKING || backing_off > buflen || buflen - backing_off < backing_len)
            CORRUPT("backing file name of qcow2 image '%s' is invalid", path);
        hdr->backing_name = g_strndup((const char *)buf + backing_off, backing_len);
        if (strlen(hdr->backing_name) != backing_len)
            CORRUPT("backing file name of qcow2 image '%s' is invalid", path);
    }
    ext = header_len;
    while (ext + 8 <= buflen) {
        guint32 type = be32(buf + ext);
        guint32 len = be32(buf + ext + 4);

        if (type == 0)
            break;
        if (len > buflen - ext - 8)
            CORRUPT("header extension of qcow2 image '%s' is truncated", path);
        if (type == QCOW2_EXT_BACKING_FORMAT) {
            if (len == 0 || len > 16)
                CORRUPT("backing format of qcow2 image '%s' is invalid", path);
            g_free(hdr->backing_format);
            hdr->backing_format = g_strndup((const char *)buf + ext + 8, len);
        } else if (type == QCOW2_EXT_DATA_FILE) {
            g_free(hdr->data_file);
            hdr->data_file = g_strndup((const char *)buf + ext + 8, len);
            if (len == 0 || strlen(hdr->data_file) != len)
                CORRUPT("data file name of qcow2 image '%s' is invalid", path);
        }
        ext += 8 + (((guint64)len + 7) & ~7ULL);
    }
    /* as qemu: the name counts only with the feature bit, and the bit needs a name */
    if (!(hdr->incompatible & QCOW_INCOMPAT_DATA_FILE))
        g_clear_pointer(&hdr->data_file, g_free);
    else if (!hdr->data_file)
        CORRUPT("qcow2 image '%s' uses an external data file but does not name it", path);
    if (hdr->version == 2 && hdr->incompatible == 0 && hdr->compression_type == 0)
        return TRUE;
    if (hdr->compression_type != 0 && !(hdr->incompatible & QCOW_INCOMPAT_COMPRESSION))
        CORRUPT("qcow2 image '%s' has a compression type without its feature bit", path);
    return TRUE;
}

#undef CORRUPT

/* libvirt's storage_file_probe.c table, in its order: magic at an offset, then a
 * version number (none = any version). */
typedef struct {
    const char *format;
    guint offset;
    const char *magic;
    gsize magic_len;
    gint version_offset;      /* -1: no version check */
    gboolean big_endian;
    guint32 versions[3];
} ProbeRule;

static const ProbeRule probe_rules[] = {
    { "iso", 32769, "CD001", 5, -1, FALSE, { 0 } },
    { "vpc", 0, "conectix", 8, 12, TRUE, { 0x10000 } },
    { "vdi", 64, "\x7f\x10\xda\xbe", 4, 68, FALSE, { 0x00010001 } },
    { "ploop", 0, "WithouFreSpacExt", 16, -1, FALSE, { 0 } },
    { "cow", 0, "OOOM", 4, 4, TRUE, { 2 } },
    { "qcow", 0, "QFI", 3, 4, TRUE, { 1 } },
    { "qcow2", 0, "QFI", 3, 4, TRUE, { 2, 3 } },
    { "qed", 0, "QED", 3, -1, FALSE, { 0 } },
    { "vmdk", 0, "KDMV", 4, 4, FALSE, { 1, 2, 3 } },
};

char *
qcow_probe_format_fd(int fd, const char *path, GError **error)
{
    g_autofree guint8 *buf = g_malloc0(PROBE_LEN);
    gssize got;
    gsize i;

    if ((got = util_pread_full(fd, path, buf, PROBE_LEN, 0, error)) < 0)
        return NULL;
    for (i = 0; i < G_N_ELEMENTS(probe_rules); i++) {
        const ProbeRule *r = &probe_rules[i];
        guint32 version;
        gsize j;

        if ((gsize)got < r->offset + r->magic_len ||
            memcmp(buf + r->offset, r->magic, r->magic_len) != 0)
            continue;
        if (r->version_offset < 0)
            return g_strdup(g_str_equal(r->format, "iso") ? "raw" : r->format);
        if ((gsize)got < (gsize)r->version_offset + 4)
            continue;
        version = r->big_endian ? be32(buf + r->version_offset) : le32(buf + r->version_offset);
        for (j = 0; j < G_N_ELEMENTS(r->versions) && r->versions[j]; j++) {
            if (r->versions[j] == version)
                return g_strdup(r->format);
        }
    }
    return g_strdup("raw");
}

char *
qcow_probe_format(const char *path, GError **error)
{
    g_auto(CoreFd) fd = -1;

    if (!qcow_open_ro(path, &fd, error))
        return NULL;
    return qcow_probe_format_fd(fd, path, error);
}

gboolean
qcow_other_backing_name(const char *path, const char *format, char **name, GError **error)
{
    g_auto(CoreFd) fd = -1;
    struct stat st;
    guint8 hdr[64] = { 0 };
    guint64 size;
    guint64 off;
    guint32 len;
    gssize got;
    char nbuf[1024];

    *name = NULL;
    if (!qcow_open_ro(path, &fd, error) || !qcow_file_size(fd, path, &size, &st, error))
        return FALSE;
    if ((got = util_pread_full(fd, path, hdr, sizeof(hdr), 0, error)) < 0)
        return FALSE;
    if (g_str_equal(format, "qcow")) {
        if (got < 20)
            goto corrupt;
        off = be64(hdr + 8);
        len = be32(hdr + 16);
    } else if (g_str_equal(format, "qed")) {
        if (got < 64)
            goto corrupt;
        if (!(le64(hdr + 16) & 1))    /* QED_F_BACKING_FILE */
            return TRUE;
        off = le32(hdr + 56);
        len = le32(hdr + 60);
    } else {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "cannot read the header of '%s': format '%s' is not supported", path, format);
        return FALSE;
    }
    if (off == 0 || len == 0)
        return TRUE;
    if (len >= sizeof(nbuf) || off > size || size - off < len)
        goto corrupt;
    if (util_pread_full(fd, path, nbuf, len, off, error) != (gssize)len) {
        if (error && *error)
            return FALSE;
        goto corrupt;
    }
    nbuf[len] = '\0';
    *name = g_strdup(nbuf);
    return TRUE;

 corrupt:
    g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "%s header of '%s' is invalid", format, path);
    return FALSE;
}

/* Turns a libqcow error into a debug message and frees it. */
static void
qcow_libqcow_debug(libqcow_error_t **lerr, const char *what, const char *path)
{
    char msg[512] = "";

    if (*lerr) {
        libqcow_error_sprint(*lerr, msg, sizeof(msg));
        libqcow_error_free(lerr);
    }
    g_debug("libqcow: %s '%s': %s", what, path, msg);
}

/* Cross-checks our header parse with libqcow. Only called for headers we
 * validated (no huge tables) and libqcow can read (no encryption, no data file).
 * A libqcow failure is only logged (its parser is the weaker one); a
 * disagreement is corruption. libqcow opens by name: it gets /proc/self/fd/@fd,
 * which reopens the file already checked and opened, never a path lookup. */
static gboolean
qcow_crosscheck(int fd, const char *path, const QcowHeader *hdr, GError **error)
{
    g_autofree char *fdpath = g_strdup_printf("/proc/self/fd/%d", fd);
    libqcow_file_t *file = NULL;
    libqcow_error_t *lerr = NULL;
    size64_t media = 0;
    uint32_t version = 0;
    int nsnap = 0;
    size_t bsize = 0;
    g_autofree char *bname = NULL;
    gboolean ok = TRUE;

    if (libqcow_file_initialize(&file, &lerr) != 1) {
        qcow_libqcow_debug(&lerr, "initialize for", path);
        return TRUE;
    }
    if (libqcow_file_open(file, fdpath, LIBQCOW_OPEN_READ, &lerr) != 1) {
        qcow_libqcow_debug(&lerr, "cannot open", path);
        libqcow_file_free(&file, NULL);
        return TRUE;
    }
    if (libqcow_file_get_media_size(file, &media, &lerr) != 1 ||
        libqcow_file_get_format_version(file, &version, &lerr) != 1 ||
        libqcow_file_get_number_of_snapshots(file, &nsnap, &lerr) != 1) {
        qcow_libqcow_debug(&lerr, "cannot query", path);
        goto out;
    }
    if (hdr->backing_name &&
        libqcow_file_get_utf8_backing_filename_size(file, &bsize, &lerr) == 1 && bsize > 0) {
        bname = g_malloc0(bsize + 1);
        if (libqcow_file_get_utf8_backing_filename(file, (uint8_t *)bname, bsize, &lerr) != 1) {
            qcow_libqcow_debug(&lerr, "cannot read the backing name of", path);
            g_clear_pointer(&bname, g_free);
        }
    }
    if (lerr)
        libqcow_error_free(&lerr);
    if (media != hdr->size || version != hdr->version ||
        (guint)nsnap != hdr->nb_snapshots ||
        (bname && g_strcmp0(bname, hdr->backing_name) != 0)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                    "qcow2 header of '%s' is inconsistent (libqcow reads it differently)", path);
        ok = FALSE;
    }
 out:
    libqcow_file_close(file, NULL);
    libqcow_file_free(&file, NULL);
    return ok;
}

QcowInfo *
qcow_info_read(const char *path, const char *format, GError **error)
{
    g_autoptr(QcowInfo) info = g_new0(QcowInfo, 1);
    g_auto(CoreFd) fd = -1;
    struct stat st;
    QcowHeader hdr;

    if (!format)
        format = "raw";
    if (!g_str_equal(format, "raw") && !g_str_equal(format, "qcow2")) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "image '%s': format '%s' is not supported", path, format);
        return NULL;
    }
    if (!qcow_open_ro(path, &fd, error) ||
        !qcow_file_size(fd, path, &info->file_size, &st, error))
        return NULL;
    info->format = g_strdup(format);
    info->allocated = (guint64)st.st_blocks * 512;
    if (g_str_equal(format, "raw")) {
        info->virtual_size = QCOW_SECTORS_UP(info->file_size);
        return g_steal_pointer(&info);
    }
    if (!qcow_header_read(fd, path, &hdr, error))
        return NULL;
    info->virtual_size = QCOW_SECTORS_DOWN(hdr.size);
    info->data_file = g_steal_pointer(&hdr.data_file);
    info->data_file_raw = info->data_file && (hdr.autoclear & QCOW_AUTOCLEAR_DATA_FILE_RAW);
    info->cluster_size = 1U << hdr.cluster_bits;
    info->version = hdr.version;
    info->backing_name = g_steal_pointer(&hdr.backing_name);
    info->backing_format = g_steal_pointer(&hdr.backing_format);
    info->nsnapshots = hdr.nb_snapshots;
    info->encrypted = hdr.crypt_method != 0;
    info->compression = g_strdup(hdr.compression_type == 0 ? "zlib" :
                                 hdr.compression_type == 1 ? "zstd" : "unknown");
    if (!info->encrypted && !(hdr.incompatible & ~QCOW_INCOMPAT_DIRTY & QCOW2_KNOWN_INCOMPAT) &&
        !(hdr.incompatible & ~QCOW2_KNOWN_INCOMPAT)) {
        QcowHeader check = hdr;
        check.backing_name = info->backing_name;
        if (!qcow_crosscheck(fd, path, &check, error))
            return NULL;
    }
    return g_steal_pointer(&info);
}

gboolean
qcow_snapshot_count(const char *path, const char *name, guint *count, GError **error)
{
    g_auto(CoreFd) fd = -1;
    QcowHeader hdr = { 0 };
    guint8 fixed[72];
    guint64 off;

    *count = 0;
    if (!qcow_open_ro(path, &fd, error) || !qcow_header_read(fd, path, &hdr, error))
        return FALSE;
    qcow_header_clear(&hdr);
    if (util_pread_full(fd, path, fixed, sizeof(fixed), 0, error) != sizeof(fixed))
        return FALSE;
    off = be64(fixed + 64);
    /* Each entry: 40 fixed bytes, extra data, id, name, padded to 8 bytes. */
    for (guint32 i = 0; i < hdr.nb_snapshots; i++) {
        guint8 e[40];
        guint16 id_len;
        guint16 name_len;
        guint32 extra;
        g_autofree char *sname = NULL;

        if (off > hdr.file_size ||
            util_pread_full(fd, path, e, sizeof(e), off, error) != sizeof(e)) {
            g_clear_error(error);
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                        "snapshot table of qcow2 image '%s' is truncated", path);
            return FALSE;
        }
        id_len = (guint16)(e[12] << 8 | e[13]);
        name_len = (guint16)(e[14] << 8 | e[15]);
        extra = be32(e + 36);
        if (extra > 65536) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                        "snapshot table of qcow2 image '%s' is corrupt", path);
            return FALSE;
        }
        sname = g_malloc0((gsize)name_len + 1);
        if (util_pread_full(fd, path, sname, name_len, off + 40 + extra + id_len, error) !=
            name_len) {
            g_clear_error(error);
            g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                        "snapshot table of qcow2 image '%s' is truncated", path);
            return FALSE;
        }
        if (strlen(sname) == name_len && strcmp(sname, name) == 0)
            (*count)++;
        off += (40 + (guint64)extra + id_len + name_len + 7) & ~(guint64)7;
    }
    return TRUE;
}
