/* util.c: UUIDs, atomic durable file writes and bounded reads for core/. */
#include "util.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"

static int
util_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

gboolean
util_uuid_parse(const char *str, guint8 out[UTIL_UUID_LEN])
{
    const char *cur = str;
    guint i;

    /* virUUIDParse: leading blanks, then 16 byte pairs with '-' or ' ' allowed
     * between pairs, then only trailing blanks. */
    while (g_ascii_isspace(*cur))
        cur++;
    for (i = 0; i < UTIL_UUID_LEN; i++) {
        int hi, lo;

        if (i > 0)
            while (*cur == '-' || *cur == ' ')
                cur++;
        if ((hi = util_hexval(cur[0])) < 0 || (lo = util_hexval(cur[1])) < 0)
            return FALSE;
        out[i] = (guint8)(hi << 4 | lo);
        cur += 2;
    }
    while (*cur) {
        if (!g_ascii_isspace(*cur))
            return FALSE;
        cur++;
    }
    return TRUE;
}

void
util_uuid_format(const guint8 uuid[UTIL_UUID_LEN], char out[UTIL_UUID_STRLEN + 1])
{
    g_snprintf(out, UTIL_UUID_STRLEN + 1,
               "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
               uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
               uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14], uuid[15]);
}

void
util_uuid_generate(guint8 out[UTIL_UUID_LEN])
{
    g_autofree char *s = g_uuid_string_random();   /* RFC 4122 v4 from a strong source */
    gboolean ok = util_uuid_parse(s, out);

    g_assert(ok);
}

static gboolean
util_set_errno_error(GError **error, int errsv, const char *what, const char *path)
{
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "cannot %s '%s': %s", what,
                path, g_strerror(errsv));
    return FALSE;
}

gboolean
util_fsync_dir_of(const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_auto(CoreFd) fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return util_set_errno_error(error, errno, "open directory", dir);
    if (fsync(fd) < 0)
        return util_set_errno_error(error, errno, "sync directory", dir);
    return TRUE;
}

int
util_open_new_image(const char *path, const char *base, gboolean *created, GError **error)
{
    g_auto(CoreFd) fd = -1;
    struct stat bst;
    struct stat st;
    int errsv;

    *created = FALSE;
    if (stat(base, &bst) < 0) {
        util_set_errno_error(error, errno, "stat", base);
        return -1;
    }
    /* 0600 until the mode below is set: no moment where others may open it. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        *created = TRUE;
    } else if (errno == EEXIST) {
        fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && errno == ELOOP) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_LOOP,
                        "'%s' is a symbolic link: snapfs creates images only under names that "
                        "are not links", path);
            return -1;
        }
        if (fd < 0) {
            util_set_errno_error(error, errno, "open", path);
            return -1;
        }
        if (fstat(fd, &st) < 0) {
            util_set_errno_error(error, errno, "stat", path);
            return -1;
        }
        if (!S_ISREG(st.st_mode) || st.st_size != 0) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                        "'%s' already exists and is not an empty file", path);
            return -1;
        }
    } else {
        util_set_errno_error(error, errno, "create", path);
        return -1;
    }
    if (*created && fstat(fd, &st) < 0)
        goto fail;
    if (geteuid() == 0 && (st.st_uid != bst.st_uid || st.st_gid != bst.st_gid) &&
        fchown(fd, bst.st_uid, bst.st_gid) < 0)
        goto fail;
    if (fchmod(fd, bst.st_mode & 0777) < 0)
        goto fail;
    return g_steal_fd(&fd);

fail:
    errsv = errno;
    if (*created)
        unlink(path);
    *created = FALSE;
    util_set_errno_error(error, errsv, "set the owner and mode of", path);
    return -1;
}

gboolean
util_file_write_atomic(const char *path, const char *data, gsize len, int mode, GError **error)
{
    g_autofree char *tmp = g_strconcat(path, ".new", NULL);
    g_auto(CoreFd) fd = -1;
    gsize done = 0;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return util_set_errno_error(error, errno, "create", tmp);
    if (fchmod(fd, mode) < 0)   /* the umask must not widen or narrow libvirt's 0600 */
        goto fail;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        done += n;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (close(fd) < 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0)
        goto fail;
    return util_fsync_dir_of(path, error);

fail: {
        int errsv = errno;

        unlink(tmp);
        return util_set_errno_error(error, errsv, "write", tmp);
    }
}

gboolean
util_file_read_limited(const char *path, gsize max, char **contents, gsize *len, GError **error)
{
    g_auto(CoreFd) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    g_autoptr(GByteArray) buf = NULL;
    struct stat st;

    if (fd < 0)
        return util_set_errno_error(error, errno, "open", path);
    if (fstat(fd, &st) < 0)
        return util_set_errno_error(error, errno, "stat", path);
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "'%s' is not a regular file", path);
        return FALSE;
    }
    buf = g_byte_array_sized_new(MIN((gsize)st.st_size, max) + 1);
    for (;;) {
        guint8 chunk[65536];
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return util_set_errno_error(error, errno, "read", path);
        if (n == 0)
            break;
        if (buf->len + (gsize)n > max) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG,
                        "file '%s' is larger than %" G_GSIZE_FORMAT " bytes", path, max);
            return FALSE;
        }
        g_byte_array_append(buf, chunk, n);
    }
    *len = buf->len;
    g_byte_array_append(buf, (const guint8 *)"", 1);
    *contents = (char *)g_byte_array_free(g_steal_pointer(&buf), FALSE);
    return TRUE;
}

gssize
util_pread_full(int fd, const char *path, void *buf, gsize len, guint64 off, GError **error)
{
    gsize done = 0;

    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));

        if (n < 0) {
            int errsv = errno;

            if (errsv == EINTR)
                continue;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                        "cannot read '%s': %s", path, g_strerror(errsv));
            return -1;
        }
        if (n == 0)
            break;
        done += n;
    }
    return done;
}

gboolean
util_pwrite_full(int fd, const char *path, const void *buf, gsize len, guint64 off,
                 GError **error)
{
    const guint8 *p = buf;

    while (len > 0) {
        ssize_t n = pwrite(fd, p, MIN(len, (gsize)1 << 30), (off_t)off);

        if (n < 0) {
            int errsv = errno;

            if (errsv == EINTR)
                continue;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                        "cannot write to '%s': %s", path, g_strerror(errsv));
            return FALSE;
        }
        p += n;
        off += n;
        len -= n;
    }
    return TRUE;
}

gboolean
util_is_zero(const guint8 *buf, gsize len)
{
    const guint64 *w = (const guint64 *)buf;
    gsize i;

    if ((guintptr)buf % 8 != 0 || len % 64 != 0) {
        for (i = 0; i < len; i++)
            if (buf[i])
                return FALSE;
        return TRUE;
    }
    for (i = 0; i < len / 8; i += 8) {
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
            return FALSE;
    }
    return TRUE;
}
