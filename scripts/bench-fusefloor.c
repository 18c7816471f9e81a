/* bench-fusefloor.c: the least a FUSE filesystem can do for `cat` of many small files,
 * to measure the floor under snapfs's metadata rows (scripts/bench.sh, section meta).
 *
 *   bench-fusefloor MOUNTPOINT N SIZE [noopen]
 *
 * Mounts N directories s1..sN, each holding one file snapshot.xml of SIZE bytes, with
 * everything snapfs does to make a warm `cat` cheap (hour-long entry and attribute
 * timeouts, keep_cache, noflush, the same multi-threaded loop) and nothing else: no
 * lookups in tables, no locks, no content. "noopen" answers OPEN with ENOSYS, so the
 * kernel stops sending OPEN and RELEASE for the whole mount (FUSE_CAP_NO_OPEN_SUPPORT):
 * what snapfs cannot do, because its control and data files need per-open handles.
 * Runs in the foreground until unmounted. Not a test; built and run by bench.sh. */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static unsigned long floor_n;
static size_t floor_size;
static int floor_noopen;
static char floor_content[1 << 16];   /* every file's bytes, filled once */

/* Inodes: 1 the root, 2k the directory sk, 2k+1 its snapshot.xml (k >= 1). */
static void
floor_attr(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_nlink = 1;
    if (ino == 1 || ino % 2 == 0) {
        st->st_mode = S_IFDIR | 0755;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_size = floor_size;
    }
}

static int
floor_valid(fuse_ino_t ino)
{
    return ino == 1 || (ino >= 2 && ino / 2 <= floor_n);
}

static void
floor_entry(fuse_req_t req, fuse_ino_t ino)
{
    struct fuse_entry_param e;

    memset(&e, 0, sizeof(e));
    e.ino = ino;
    e.attr_timeout = 3600;
    e.entry_timeout = 3600;
    floor_attr(ino, &e.attr);
    fuse_reply_entry(req, &e);
}

static void
floor_init(void *data, struct fuse_conn_info *conn)
{
    (void)data;
    if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT && floor_noopen)
        conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
}

static void
floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    unsigned long k;
    char *end;

    if (parent == 1 && name[0] == 's') {
        k = strtoul(name + 1, &end, 10);
        if (*end == '\0' && k >= 1 && k <= floor_n) {
            floor_entry(req, 2 * k);
            return;
        }
    } else if (parent % 2 == 0 && parent != 1 && floor_valid(parent) &&
               strcmp(name, "snapshot.xml") == 0) {
        floor_entry(req, parent + 1);
        return;
    }
    fuse_reply_err(req, ENOENT);
}

static void
floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;

    (void)fi;
    if (!floor_valid(ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    floor_attr(ino, &st);
    fuse_reply_attr(req, &st, 3600);
}

static void
floor_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    char *buf = malloc(size);
    size_t used = 0;
    unsigned long count = ino == 1 ? floor_n : 1;

    (void)fi;
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    for (unsigned long i = off; i < count; i++) {
        char name[32];
        struct stat st;
        size_t len;

        memset(&st, 0, sizeof(st));
        if (ino == 1) {
            snprintf(name, sizeof(name), "s%lu", i + 1);
            st.st_ino = 2 * (i + 1);
            st.st_mode = S_IFDIR;
        } else {
            snprintf(name, sizeof(name), "snapshot.xml");
            st.st_ino = ino + 1;
            st.st_mode = S_IFREG;
        }
        len = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
        if (len > size - used)
            break;
        used += len;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void
floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    if (floor_noopen) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    fi->keep_cache = 1;
    fi->noflush = 1;
    fuse_reply_open(req, fi);
}

static void
floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    if ((size_t)off >= floor_size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (size > floor_size - off)
        size = floor_size - off;
    fuse_reply_buf(req, floor_content + off, size);
}

static const struct fuse_lowlevel_ops floor_ops = {
    .init = floor_init,
    .lookup = floor_lookup,
    .getattr = floor_getattr,
    .readdir = floor_readdir,
    .open = floor_open,
    .read = floor_read,
};

int
main(int argc, char **argv)
{
    char *fargv[] = { argv[0], "-o", "fsname=fusefloor,default_permissions", NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
    struct fuse_session *se;
    struct fuse_loop_config *cfg;
    int ret;

    if (argc < 4) {
        fprintf(stderr, "usage: %s MOUNTPOINT N SIZE [noopen]\n", argv[0]);
        return 2;
    }
    floor_n = strtoul(argv[2], NULL, 10);
    floor_size = strtoul(argv[3], NULL, 10);
    floor_noopen = argc > 4 && strcmp(argv[4], "noopen") == 0;
    if (floor_n == 0 || floor_size > sizeof(floor_content)) {
        fprintf(stderr, "%s: N must be > 0 and SIZE at most %zu\n", argv[0], sizeof(floor_content));
        return 2;
    }
    memset(floor_content, 'x', sizeof(floor_content));
    se = fuse_session_new(&args, &floor_ops, sizeof(floor_ops), NULL);
    if (!se || fuse_session_mount(se, argv[1]) != 0)
        return 1;
    cfg = fuse_loop_cfg_create();
    ret = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    return ret == 0 ? 0 : 1;
}
