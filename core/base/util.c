/* util.c: UUIDs, atomic durable file writes and bounded reads for core/. */
#include "util.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

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
    if (!util_path_stat(base, FALSE, &bst, error)) {
        g_prefix_error(error, "cannot stat '%s': ", base);
        return -1;
    }
    if (!util_path_outside(path, error)) {   /* the opens below then stay outside the mount */
        g_prefix_error(error, "cannot create '%s': ", path);
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

guint64
util_hash_fnv1a(guint64 h, const void *data, gsize len)
{
    const guint8 *p = data;

    for (gsize i = 0; i < len; i++)
        h = (h ^ p[i]) * G_GUINT64_CONSTANT(1099511628211);
    return h;
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

/* ---- outside paths ------------------------------------------------------------------------ */

/* The snapfs mount: set once before the session's threads start, read-only afterwards. */
static struct {
    char *mountpoint;
    char *name;          /* the mountpoint's last component */
    dev_t parent_dev;    /* the directory holding it, identified before the mount covers it */
    ino_t parent_ino;
    dev_t dev;           /* the mounted filesystem; 0 while unknown */
} util_guard;

gboolean
util_guard_mount(const char *mountpoint, GError **error)
{
    g_autofree char *parent = g_path_get_dirname(mountpoint);
    struct stat st;

    if (stat(parent, &st) < 0)
        return util_set_errno_error(error, errno, "stat", parent);
    g_free(util_guard.mountpoint);
    g_free(util_guard.name);
    util_guard.mountpoint = g_strdup(mountpoint);
    util_guard.name = g_path_get_basename(mountpoint);
    util_guard.parent_dev = st.st_dev;
    util_guard.parent_ino = st.st_ino;
    return TRUE;
}

void
util_guard_mount_dev(dev_t dev)
{
    util_guard.dev = dev;
}

/* Where a walk ended: an O_PATH descriptor of the object, the directory it was found in and its
 * name there (none when the walk ended on "/", "." or ".."), its stat. */
typedef struct {
    int fd;
    int dir;
    char *name;
    struct stat st;
} UtilWalk;

#define UTIL_WALK_INIT { -1, -1, NULL, { 0 } }
#define UTIL_MAX_LINKS 40   /* the kernel's limit of symbolic links in one lookup */

static void
util_walk_clear(UtilWalk *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->dir >= 0)
        close(w->dir);
    g_clear_pointer(&w->name, g_free);
    w->fd = w->dir = -1;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(UtilWalk, util_walk_clear)

static gboolean
util_walk_refuse(GError **error)
{
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ACCES,
                "it is inside the snapfs mount '%s' (snapfs never reads its own files)",
                util_guard.mountpoint);
    return FALSE;
}

static gboolean
util_walk_errno(GError **error, int errsv)
{
    g_set_error_literal(error, G_FILE_ERROR, g_file_error_from_errno(errsv), g_strerror(errsv));
    return FALSE;
}

/* Pushes the components of @path onto @stack, the first one last (it is popped first). */
static void
util_walk_push(GPtrArray *stack, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);

    for (guint i = g_strv_length(parts); i-- > 0;)
        if (*parts[i] && strcmp(parts[i], ".") != 0)
            g_ptr_array_add(stack, g_strdup(parts[i]));
}

/* TRUE when looking @name up in directory @dir would enter the snapfs mount: @dir is the
 * directory that held the mountpoint before the mount covered it (a bind mount of that
 * directory has the same identity). Only the holding directory is stat'ed: it is outside. */
static gboolean
util_walk_is_mountpoint(int dir, const char *name)
{
    struct stat st;

    if (!util_guard.name || strcmp(name, util_guard.name) != 0)
        return FALSE;
    return fstat(dir, &st) < 0 ||
           (st.st_dev == util_guard.parent_dev && st.st_ino == util_guard.parent_ino);
}

/* Resolves @path one name at a time, following symbolic links itself (a link is read, never
 * followed by the kernel), so that no name inside the snapfs mount is ever looked up: a name
 * that is the mountpoint is refused before the lookup, and an object on the mount's device (a
 * bind mount of it elsewhere) is refused on arrival, from cached attributes. @partial: a
 * component that cannot be looked up ends the walk with success and w->fd -1. */
static gboolean
util_walk(const char *path, gboolean nofollow, gboolean partial, UtilWalk *w, GError **error)
{
    g_autoptr(GPtrArray) stack = g_ptr_array_new_with_free_func(g_free);
    guint links = 0;

    w->fd = open(path[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (w->fd < 0)
        return util_walk_errno(error, errno);
    util_walk_push(stack, path);
    while (stack->len > 0) {
        g_autofree char *name = g_ptr_array_steal_index(stack, stack->len - 1);
        struct statx sx;
        int fd;

        if (util_walk_is_mountpoint(w->fd, name))
            return util_walk_refuse(error);
        fd = openat(w->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && partial) {
            util_walk_clear(w);
            return TRUE;
        }
        if (fd < 0)
            return util_walk_errno(error, errno);
        /* AT_STATX_DONT_SYNC: on a FUSE mount the cached attributes, no request */
        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC,
                  STATX_TYPE, &sx) < 0) {
            int errsv = errno;

            close(fd);
            return util_walk_errno(error, errsv);
        }
        if (util_guard.dev != 0 && makedev(sx.stx_dev_major, sx.stx_dev_minor) == util_guard.dev) {
            close(fd);
            return util_walk_refuse(error);
        }
        if (S_ISLNK(sx.stx_mode) && (stack->len > 0 || !nofollow)) {
            char target[PATH_MAX];
            ssize_t n = readlinkat(fd, "", target, sizeof(target) - 1);
            int errsv = errno;

            close(fd);
            if (n < 0)
                return util_walk_errno(error, errsv);
            if (++links > UTIL_MAX_LINKS)
                return util_walk_errno(error, ELOOP);
            target[n] = '\0';
            util_walk_push(stack, target);
            if (target[0] == '/') {   /* the rest resolves from the root, w->fd from the link's */
                close(w->fd);
                if ((w->fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
                    return util_walk_errno(error, errno);
            }
            continue;
        }
        if (w->dir >= 0)
            close(w->dir);
        w->dir = w->fd;
        w->fd = fd;
        g_free(w->name);
        w->name = strcmp(name, "..") == 0 ? NULL : g_steal_pointer(&name);
    }
    if (fstat(w->fd, &w->st) < 0) {
        if (partial) {
            util_walk_clear(w);
            return TRUE;
        }
        return util_walk_errno(error, errno);
    }
    return TRUE;
}

gboolean
util_path_stat(const char *path, gboolean nofollow, struct stat *st, GError **error)
{
    g_auto(UtilWalk) w = UTIL_WALK_INIT;

    if (!util_walk(path, nofollow, FALSE, &w, error))
        return FALSE;
    *st = w.st;
    return TRUE;
}

gboolean
util_path_outside(const char *path, GError **error)
{
    g_auto(UtilWalk) w = UTIL_WALK_INIT;

    return util_walk(path, FALSE, TRUE, &w, error);
}

static int
util_image_fail(GError **error, const char *what, const char *path)
{
    g_prefix_error(error, "cannot %s '%s': ", what, path);
    return -1;
}

static int
util_image_errno(GError **error, int errsv, const char *what, const char *path)
{
    util_set_errno_error(error, errsv, what, path);
    return -1;
}

int
util_image_open(const char *path, int flags, struct stat *st, GError **error)
{
    g_auto(UtilWalk) w = UTIL_WALK_INIT;
    g_auto(CoreFd) fd = -1;
    struct stat now;
    int fl;

    if (!util_walk(path, (flags & O_NOFOLLOW) != 0, FALSE, &w, error))
        return util_image_fail(error, "open", path);
    if (!S_ISREG(w.st.st_mode) && !S_ISBLK(w.st.st_mode)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "cannot open '%s': not a regular file or block device", path);
        return -1;
    }
    g_assert(w.name && w.dir >= 0);   /* a file is never reached by "/", "." or ".." */
    /* O_NONBLOCK: should the name have become a FIFO since the walk, the open does not wait
     * for a writer, and the identity check below refuses it */
    fd = openat(w.dir, w.name, (flags & (O_ACCMODE | O_TRUNC)) | O_NOFOLLOW | O_NONBLOCK |
                O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return util_image_errno(error, errno, "open", path);
    if (fstat(fd, &now) < 0)
        return util_image_errno(error, errno, "stat", path);
    if (now.st_dev != w.st.st_dev || now.st_ino != w.st.st_ino) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_AGAIN,
                    "cannot open '%s': it was replaced while being opened", path);
        return -1;
    }
    if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return util_image_errno(error, errno, "open", path);
    if (st)
        *st = now;
    return g_steal_fd(&fd);
}

int
util_image_create(const char *path, int flags, int mode, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_auto(UtilWalk) w = UTIL_WALK_INIT;
    int fd;

    if (!util_walk(dir, FALSE, FALSE, &w, error))
        return util_image_fail(error, "create", path);
    if (!S_ISDIR(w.st.st_mode))
        return util_image_errno(error, ENOTDIR, "create", path);
    if (util_walk_is_mountpoint(w.fd, base)) {
        util_walk_refuse(error);
        return util_image_fail(error, "create", path);
    }
    fd = openat(w.fd, base, (flags & (O_ACCMODE)) | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY |
                O_CLOEXEC, mode);
    if (fd < 0)
        return util_image_errno(error, errno, "create", path);
    return fd;
}

void
util_tsv_escape(GString *out, const char *field)
{
    for (const char *p = field; *p; p++) {
        switch (*p) {
        case '\\': g_string_append(out, "\\\\"); break;
        case '\t': g_string_append(out, "\\t"); break;
        case '\n': g_string_append(out, "\\n"); break;
        case '\r': g_string_append(out, "\\r"); break;
        default: g_string_append_c(out, *p); break;
        }
    }
}

char *
util_tsv_unescape(const char *field, GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);

    for (const char *p = field; *p; p++) {
        if (*p != '\\') {
            g_string_append_c(out, *p);
            continue;
        }
        switch (p[1]) {
        case '\\': g_string_append_c(out, '\\'); break;
        case 't': g_string_append_c(out, '\t'); break;
        case 'n': g_string_append_c(out, '\n'); break;
        case 'r': g_string_append_c(out, '\r'); break;
        default:
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "'%s' has a backslash that is not \\\\, \\t, \\n or \\r (write a "
                        "backslash as \\\\)", field);
            return NULL;
        }
        p++;
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}
