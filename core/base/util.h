/* util.h: small helpers shared by core/: descriptors, UUIDs, atomic durable writes. */
#pragma once

#include <glib.h>
#include <sys/stat.h>
#include <unistd.h>

G_BEGIN_DECLS

typedef int CoreFd;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(CoreFd, close, -1)

#define UTIL_UUID_LEN 16
#define UTIL_UUID_STRLEN 36

/* Parses a UUID the way libvirt's virUUIDParse does: optional surrounding
 * whitespace, 32 hex digits in any case, '-' or ' ' allowed between byte pairs.
 * Returns FALSE (no GError: callers word the message) when it is malformed. */
gboolean util_uuid_parse(const char *str, guint8 out[UTIL_UUID_LEN]);

/* Formats canonical lower-case 8-4-4-4-12 into @out (37 bytes with the NUL). */
void util_uuid_format(const guint8 uuid[UTIL_UUID_LEN], char out[UTIL_UUID_STRLEN + 1]);

/* A random RFC 4122 version 4 UUID (version nibble 4, variant bits 10). */
void util_uuid_generate(guint8 out[UTIL_UUID_LEN]);

/* Writes @len bytes to @path atomically and durably, as libvirt's virFileRewrite:
 * PATH.new in the same directory (created with @mode), write, fsync, rename onto
 * @path, fsync of the directory. On failure PATH.new is removed and @path is as
 * it was. Sets G_FILE_ERROR with the saved errno. */
gboolean util_file_write_atomic(const char *path, const char *data, gsize len, int mode,
                                GError **error);

/* Opens @path for a new image built on @base: creates it (O_EXCL | O_NOFOLLOW, so
 * never through a symbolic link, dangling or not) or reuses an empty regular file
 * there (as qemu-img create and libvirt do), and gives it @base's permission bits
 * and, when the process runs as root, @base's owner and group, before anything is
 * written: an image built on another holds the guest's later writes and is never
 * more readable than it. *@created: made here (the caller unlinks it on failure)
 * or reused (the caller empties it again). Returns the descriptor (O_WRONLY |
 * O_CLOEXEC); -1 with G_FILE_ERROR (EEXIST for a file that is not empty or not
 * regular, ELOOP for a symbolic link) and nothing created. */
int util_open_new_image(const char *path, const char *base, gboolean *created, GError **error);

/* fsync of the directory holding @path (after an unlink or rename). */
gboolean util_fsync_dir_of(const char *path, GError **error);

/* pread of exactly @len bytes at @off, or fewer at end of file: the count read, -1
 * with G_FILE_ERROR ("cannot read '@path': ..."); EINTR is retried. */
gssize util_pread_full(int fd, const char *path, void *buf, gsize len, guint64 off,
                       GError **error);

/* pwrite of all @len bytes at @off, or G_FILE_ERROR ("cannot write to '@path': ..."). */
gboolean util_pwrite_full(int fd, const char *path, const void *buf, gsize len, guint64 off,
                          GError **error);

/* TRUE when the @len bytes at @buf are all zero. */
gboolean util_is_zero(const guint8 *buf, gsize len);

/* 64-bit FNV-1a: a fast hash for in-memory tables, stamps and content versions
 * (never stored, never a defence against chosen input). Start with
 * UTIL_FNV1A_INIT, its offset basis; pass the result on to hash more bytes. */
#define UTIL_FNV1A_INIT G_GUINT64_CONSTANT(14695981039346656037)
guint64 util_hash_fnv1a(guint64 h, const void *data, gsize len);

/* Reads a whole file of at most @max bytes; over that: CORE_ERROR_TOO_BIG. */
gboolean util_file_read_limited(const char *path, gsize max, char **contents, gsize *len,
                                GError **error);

/* ---- outside paths: images, backing files, backup targets ------------------------------
 * Every open or stat of a path that a domain, a snapshot or an image header names goes through
 * these. They never look a name up inside the snapfs mount itself (a request thread that enters
 * its own mount waits for an answer only it can give), and they open only regular files and
 * block devices, without blocking (a FIFO would wait for a writer). Errors: G_FILE_ERROR with
 * the errno of a failed call, G_FILE_ERROR_ACCES for a path into the mount, CORE_ERROR_INVALID
 * for another kind of file. util_path_stat and util_path_outside give the reason alone ("No such
 * file or directory", "it is inside the snapfs mount '/mnt' ..."): callers say what they were
 * doing with which path; util_image_open and util_image_create say "cannot open 'PATH': ...". */

/* Names the snapfs mount before it is mounted: @mountpoint (canonical) and the identity of the
 * directory that holds it. Called once, before other threads start. */
gboolean util_guard_mount(const char *mountpoint, GError **error);

/* Adds the device number of the mounted filesystem (a bind mount of it elsewhere has the same). */
void util_guard_mount_dev(dev_t dev);

/* stat of what @path names (the last symbolic link followed unless @nofollow). */
gboolean util_path_stat(const char *path, gboolean nofollow, struct stat *st, GError **error);

/* TRUE when nothing along @path enters the snapfs mount; a missing component ends the check
 * with TRUE (nothing below it can be looked up). */
gboolean util_path_outside(const char *path, GError **error);

/* Opens an existing regular file or block device: @flags (O_RDONLY, O_WRONLY or O_RDWR, maybe
 * O_NOFOLLOW) plus O_CLOEXEC and O_NOCTTY; anything else is refused before it is opened. The
 * descriptor blocks as usual. With @st, the file's stat. */
int util_image_open(const char *path, int flags, struct stat *st, GError **error);

/* Creates a new regular file (O_CREAT | O_EXCL, never through a symbolic link) with @flags and
 * @mode in the directory @path names. */
int util_image_create(const char *path, int flags, int mode, GError **error);
/* A field of snapshots.tsv: backslash, tab, newline and carriage return become
 * \\, \t, \n and \r, so no name can add a column or a row. Appends to @out. */
void util_tsv_escape(GString *out, const char *field);

/* The reverse of util_tsv_escape(): a field as snapshots.tsv shows it. Any other
 * backslash sequence is CORE_ERROR_INVALID. Owned. */
char *util_tsv_unescape(const char *field, GError **error);

G_END_DECLS
