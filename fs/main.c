/* main.c: snapfs options, mount and the FUSE loop. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "ops.h"

typedef struct {
    char *store;
    char *config_dir;
    char *snapshot_dir;
    int read_only;
} FsOptions;

enum { FS_KEY_RO };

static const struct fuse_opt fs_opt_spec[] = {
    { "config_dir=%s", offsetof(FsOptions, config_dir), 0 },
    { "snapshot_dir=%s", offsetof(FsOptions, snapshot_dir), 0 },
    FUSE_OPT_KEY("ro", FS_KEY_RO),
    FUSE_OPT_END
};

static int
fs_opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    FsOptions *o = data;

    switch (key) {
    case FS_KEY_RO:
        o->read_only = 1;
        return 1;   /* and the kernel mounts read-only too */
    case FUSE_OPT_KEY_NONOPT:
        if (!o->store) {
            o->store = g_strdup(arg);
            return 0;
        }
        return 1;   /* the mount point, for fuse_parse_cmdline */
    default:
        return 1;
    }
}

static void
fs_usage(const char *prog)
{
    printf("usage: %s [options] STORE MOUNTPOINT\n\n"
           "Mounts a libvirt-style store (STORE/qemu/NAME.xml and\n"
           "STORE/qemu/snapshot/NAME/SNAP.xml) as a tree of domains, snapshots and\n"
           "backing chains. See snapfs(1).\n\n"
           "snapfs options:\n"
           "    -o config_dir=DIR      domain definitions (default STORE/qemu)\n"
           "    -o snapshot_dir=DIR    snapshot metadata (default STORE/qemu/snapshot)\n"
           "    -o ro                  read-only: every write fails with EROFS\n"
           "    -o allow_other         let other users in (permissions checked by the kernel)\n\n",
           prog);
}

int
main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts cmd = { 0 };
    FsOptions o = { 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(Store) store = NULL;
    struct fuse_session *se = NULL;
    FsState fs = { 0 };
    int ret = 1;

    if (fuse_opt_parse(&args, &o, fs_opt_spec, fs_opt_proc) != 0)
        return 1;
    if (fuse_parse_cmdline(&args, &cmd) != 0)
        return 1;
    if (cmd.show_help) {
        fs_usage(argv[0]);
        fuse_cmdline_help();
        fuse_lowlevel_help();
        ret = 0;
        goto out;
    }
    if (cmd.show_version) {
        printf("snapfs version %s\n", SNAPFS_VERSION);
        printf("FUSE library version %s\n", fuse_pkgversion());
        fuse_lowlevel_version();
        ret = 0;
        goto out;
    }
    if (!o.store || !cmd.mountpoint) {
        fprintf(stderr, "%s: usage: %s [options] STORE MOUNTPOINT (--help for more)\n",
                argv[0], argv[0]);
        goto out;
    }
    /* The daemon changes to / when it detaches: every path must be absolute. */
    {
        char *abs;

        abs = g_canonicalize_filename(o.store, NULL);
        g_free(o.store);
        o.store = abs;
        if (o.config_dir) {
            abs = g_canonicalize_filename(o.config_dir, NULL);
            g_free(o.config_dir);
            o.config_dir = abs;
        }
        if (o.snapshot_dir) {
            abs = g_canonicalize_filename(o.snapshot_dir, NULL);
            g_free(o.snapshot_dir);
            o.snapshot_dir = abs;
        }
    }
    if (!(store = store_open(o.store, o.config_dir, o.snapshot_dir, &error))) {
        fprintf(stderr, "%s: cannot use store '%s': %s\n", argv[0], o.store, error->message);
        goto out;
    }
    store->read_only = o.read_only;   /* loading then changes nothing on disk either */
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        fprintf(stderr, "%s: cannot use /dev/fuse: %s (is the fuse module loaded and "
                "/dev/fuse accessible?)\n", argv[0], g_strerror(errno));
        goto out;
    }
    {
        struct stat st;

        if (stat(cmd.mountpoint, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "%s: bad mount point '%s': %s\n", argv[0], cmd.mountpoint,
                    stat(cmd.mountpoint, &st) != 0 ? g_strerror(errno) : "not a directory");
            goto out;
        }
    }
    if (cmd.debug)
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
    /* The kernel checks modes (secure files and data are 0400), also with allow_other. */
    fuse_opt_add_arg(&args, "-odefault_permissions");
    fuse_opt_add_arg(&args, "-ofsname=snapfs");
    fuse_opt_add_arg(&args, "-osubtype=snapfs");

    xmlInitParser();   /* once, before threads: libxml2's lazy setup is not thread-safe */
    fs.store = store;
    fs.read_only = o.read_only;
    /* Long kernel cache timeouts: the poller invalidates what changes (within
     * ~0.3 s of a change in the store), and every change made through the mount
     * invalidates at once. */
    fs.timeout = 60.0;
    fs.view = view_new(store, o.read_only);
    fs.inodes = inode_table_new();
    g_mutex_init(&fs.files_lock);
    fs.files = g_hash_table_new(g_direct_hash, g_direct_equal);
    fs.listings = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                        (GDestroyNotify)g_ptr_array_unref);
    if (!(se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs)))
        goto out_state;
    fs.se = se;
    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, cmd.mountpoint) != 0) {
        fprintf(stderr, "%s: cannot mount on '%s'\n", argv[0], cmd.mountpoint);
        goto out_signals;
    }
    if (fuse_daemonize(cmd.foreground) != 0)
        goto out_unmount;
    fs_poller_start(&fs);   /* after daemonizing: fork keeps only the calling thread */
    if (cmd.singlethread) {
        ret = fuse_session_loop(se);
    } else {
        struct fuse_loop_config *cfg = fuse_loop_cfg_create();

        fuse_loop_cfg_set_clone_fd(cfg, cmd.clone_fd);
        fuse_loop_cfg_set_idle_threads(cfg, cmd.max_idle_threads);
        if (cmd.max_threads > 0 && cmd.max_threads <= 100000)
            fuse_loop_cfg_set_max_threads(cfg, cmd.max_threads);
        ret = fuse_session_loop_mt(se, cfg);
        fuse_loop_cfg_destroy(cfg);
    }
    ret = ret == 0 ? 0 : 1;
    fs_poller_stop(&fs);
out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out_state:
    inode_table_free(fs.inodes);
    if (fs.files)
        g_hash_table_unref(fs.files);
    if (fs.listings)
        g_hash_table_unref(fs.listings);
    view_free(fs.view);
out:
    g_free(cmd.mountpoint);
    g_free(o.store);
    g_free(o.config_dir);
    g_free(o.snapshot_dir);
    fuse_opt_free_args(&args);
    return ret;
}
