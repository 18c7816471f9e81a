/* main.c: snapfs options, mount and the FUSE loop. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "files.h"
#if SNAPFS_LIBVIRT
#include "daemon.h"
#endif
#include "ops.h"
#include "util.h"

typedef struct {
    char *store;
    char *uri;          /* -c URI: the libvirt daemon backend */
    char *config_dir;
    char *snapshot_dir;
    char *run_dir;
    int read_only;
    int no_push;
    int poll;
    unsigned readahead_kb;
} FsOptions;

/* The kernel reads ahead 128 KiB by default: 1 MiB READs, several in flight, keep
 * two cores busy on a sequential copy (docs/performance.md). */
#define FS_READAHEAD_KB 4096

enum { FS_KEY_RO };

static const struct fuse_opt fs_opt_spec[] = {
    { "-c %s", offsetof(FsOptions, uri), 0 },
    { "--connect=%s", offsetof(FsOptions, uri), 0 },
    { "--connect %s", offsetof(FsOptions, uri), 0 },
    { "config_dir=%s", offsetof(FsOptions, config_dir), 0 },
    { "snapshot_dir=%s", offsetof(FsOptions, snapshot_dir), 0 },
    { "run_dir=%s", offsetof(FsOptions, run_dir), 0 },
    { "nopush", offsetof(FsOptions, no_push), 1 },
    { "poll", offsetof(FsOptions, poll), 1 },
    { "readahead_kb=%u", offsetof(FsOptions, readahead_kb), 0 },
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
        if (!o->store && !o->uri) {
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
    printf("usage: %s [options] STORE MOUNTPOINT\n"
           "       %s [options] -c URI MOUNTPOINT\n\n"
           "Mounts a libvirt-style store (STORE/qemu/NAME.xml and\n"
           "STORE/qemu/snapshot/NAME/SNAP.xml), or the domains of the libvirt daemon at\n"
           "URI, as a tree of domains, snapshots and backing chains. See snapfs(1).\n\n"
           "snapfs options:\n"
           "    -c, --connect URI      through the libvirt daemon at URI (qemu:///system,\n"
           "                           qemu:///session, test:///default...), not the files\n"
           "    -o config_dir=DIR      domain definitions (default STORE/qemu)\n"
           "    -o snapshot_dir=DIR    snapshot metadata (default STORE/qemu/snapshot)\n"
           "    -o run_dir=DIR         libvirt's status files of running domains (default:\n"
           "                           /run/libvirt/qemu for /etc/libvirt, the owner's\n"
           "                           $XDG_RUNTIME_DIR/libvirt/qemu/run for a session store)\n"
           "    -o ro                  read-only: every write fails with EROFS\n"
           "    -o readahead_kb=N      kernel readahead of the mount (default %d; 0: leave it)\n"
           "    -o nopush              data files: no pushing ahead into the page cache\n"
           "    -o poll                find other processes' changes by polling, not\n"
           "                           inotify (a store on a network filesystem)\n"
           "    -o allow_other         let other users in (permissions checked by the kernel)\n\n",
           prog, prog, FS_READAHEAD_KB);
}

/* The device ("MAJOR:MINOR") of the snapfs mount on @mountpoint, from /proc/self/mountinfo: a
 * stat of the mount point would wait for ourselves. NULL when not found. */
static char *
fs_mount_dev(const char *mountpoint)
{
    g_autofree char *info = NULL;
    g_autofree char *dev = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GError) error = NULL;

    if (!g_file_get_contents("/proc/self/mountinfo", &info, NULL, &error)) {
        g_debug("mountinfo: %s", error->message);
        return NULL;
    }
    lines = g_strsplit(info, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit(lines[i], " ", 6);
        g_autofree char *where = NULL;

        if (g_strv_length(f) < 6)
            continue;
        where = g_strcompress(f[4]);   /* octal escapes: \040 is a space */
        if (strcmp(where, mountpoint) == 0 && strstr(f[5], " - fuse.snapfs ")) {
            g_free(dev);
            dev = g_strdup(f[2]);      /* the newest mount there wins */
        }
    }
    return g_steal_pointer(&dev);
}

/* Sets the readahead of the mount on device @dev. Best effort: only root may write sysfs. */
static void
fs_set_readahead(const char *dev, unsigned kb)
{
    g_autofree char *path = g_strdup_printf("/sys/class/bdi/%s/read_ahead_kb", dev);
    g_autofree char *text = g_strdup_printf("%u\n", kb);
    g_autoptr(GError) error = NULL;

    if (!g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_NONE, 0644, &error))
        g_debug("readahead: %s", error->message);
}

/* core/ never opens a path inside the mount (util_guard_mount): it learns the mount's device
 * too, which a bind mount of it elsewhere shares. */
static void
fs_guard_dev(const char *dev)
{
    guint maj = 0;
    guint min = 0;

    if (sscanf(dev, "%u:%u", &maj, &min) == 2)
        util_guard_mount_dev(makedev(maj, min));
}

/* Stopping. SIGTERM, SIGINT and SIGHUP only wake the stopper thread, which stops
 * the pushers while the loop still answers the READs a pusher may be waiting for,
 * and then ends the loop. (libfuse's own handlers end the loop at once, and its
 * workers drop what they read after that: a pusher waiting on such a READ's page
 * would never return, and the process could not exit.) */
static int fs_signal_pipe[2] = { -1, -1 };

static void
fs_on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;

    if (write(fs_signal_pipe[1], &c, 1) < 0) {
        /* full: the stopper has enough to wake up */
    }
    errno = saved;
}

static gboolean
fs_set_signals(void)
{
    struct sigaction sa = { 0 };
    const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

    if (pipe2(fs_signal_pipe, O_CLOEXEC) != 0 ||
        fcntl(fs_signal_pipe[1], F_SETFL, O_NONBLOCK) != 0)
        return FALSE;
    sa.sa_handler = fs_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;   /* no SA_RESTART: the loop's waits must see EINTR */
    for (guint i = 0; i < G_N_ELEMENTS(sigs); i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return FALSE;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL) == 0;
}

typedef struct {
    FsState *fs;
    pthread_t loop_thread;
    gint loop_done;   /* atomic */
} FsStopper;

static gpointer
fs_stopper_main(gpointer data)
{
    FsStopper *st = data;
    char c;

    while (read(fs_signal_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
    if (g_atomic_int_get(&st->loop_done))
        return NULL;   /* unmounted: woken by main */
    fs_push_stop_all(st->fs);
    fuse_session_exit(st->fs->se);
    /* The loop notices in its next interrupted wait. */
    while (!g_atomic_int_get(&st->loop_done)) {
        pthread_kill(st->loop_thread, SIGTERM);
        g_usleep(100 * 1000);
    }
    return NULL;
}

/* The stopper, with the stop signals blocked (they go to the loop's thread). */
static GThread *
fs_stopper_start(FsStopper *st)
{
    sigset_t block, old;
    GThread *thread;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    thread = g_thread_new("snapfs-stop", fs_stopper_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return thread;
}

int
main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct fuse_cmdline_opts cmd = { 0 };
    FsOptions o = { .readahead_kb = FS_READAHEAD_KB };
    g_autoptr(GError) error = NULL;
    g_autoptr(Backend) backend = NULL;
    struct fuse_session *se = NULL;
    FsState fs = { 0 };
    FsStopper stopper = { .fs = &fs };
    GThread *stopper_thread = NULL;
    int ret = 1;

    /* Generated texts of megabytes come and go with open files: a fixed threshold
     * keeps them in mmap()ed blocks that free() returns to the system. glibc's
     * default threshold rises to the size of the largest block freed, after which
     * they stay in the heap of each worker thread's arena after close. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (fuse_opt_parse(&args, &o, fs_opt_spec, fs_opt_proc) != 0)
        return 1;
    if (o.uri && o.store) {   /* -c after the mount point: that was the mount point */
        fuse_opt_add_arg(&args, o.store);
        g_clear_pointer(&o.store, g_free);
    }
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
    if ((!o.store && !o.uri) || !cmd.mountpoint) {
        fprintf(stderr, "%s: usage: %s [options] STORE MOUNTPOINT, or -c URI MOUNTPOINT "
                "(--help for more)\n", argv[0], argv[0]);
        goto out;
    }
    /* The daemon changes to / when it detaches: every path must be absolute. */
    {
        char *abs;

        if (o.store) {
            abs = g_canonicalize_filename(o.store, NULL);
            g_free(o.store);
            o.store = abs;
        }
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
        if (o.run_dir) {
            abs = g_canonicalize_filename(o.run_dir, NULL);
            g_free(o.run_dir);
            o.run_dir = abs;
        }
    }
    if (o.uri) {
#if SNAPFS_LIBVIRT
        if (!(backend = daemon_backend_new(o.uri, o.read_only, &error))) {
            fprintf(stderr, "%s: cannot connect to '%s': %s\n", argv[0], o.uri, error->message);
            goto out;
        }
#else
        fprintf(stderr, "%s: -c: this snapfs is built without libvirt (-Dlibvirt)\n", argv[0]);
        goto out;
#endif
    } else {
        FilesOptions fo = { .root = o.store, .config_dir = o.config_dir,
                            .snapshot_dir = o.snapshot_dir, .run_dir = o.run_dir,
                            .read_only = o.read_only, .live = TRUE };

        if (!(backend = files_backend_new(&fo, &error))) {
            fprintf(stderr, "%s: cannot use store '%s': %s\n", argv[0], o.store,
                    error->message);
            goto out;
        }
    }
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
    if (!util_guard_mount(cmd.mountpoint, &error)) {
        fprintf(stderr, "%s: bad mount point '%s': %s\n", argv[0], cmd.mountpoint,
                error->message);
        goto out;
    }
    if (cmd.debug)
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
    /* The kernel checks modes (secure files and data are 0400), also with allow_other. */
    fuse_opt_add_arg(&args, "-odefault_permissions");
    /* A guest's device nodes and setuid files are its own: never the host's. */
    fuse_opt_add_arg(&args, "-onodev");
    fuse_opt_add_arg(&args, "-onosuid");
    fuse_opt_add_arg(&args, "-ofsname=snapfs");
    fuse_opt_add_arg(&args, "-osubtype=snapfs");

    xmlInitParser();   /* once, before threads: libxml2's lazy setup is not thread-safe */
    fs.backend = backend;
    fs.push = !o.no_push;
    fs.readahead_kb = o.readahead_kb;
    /* Long kernel cache timeouts: the poller invalidates what changes (within
     * ~0.3 s of a change in the store), and every change made through the mount
     * invalidates at once. */
    fs.timeout = 60.0;
    fs.view = view_new(backend, !o.poll);
    fs.inodes = inode_table_new();
    g_mutex_init(&fs.files_lock);
    g_mutex_init(&fs.push_lock);
    g_cond_init(&fs.push_cond);
    fs.files = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_mutex_init(&fs.texts_lock);
    fs.texts = g_hash_table_new(g_str_hash, g_str_equal);   /* keys are the FsText's */
    fs.text_bytes = g_hash_table_new(g_direct_hash, g_direct_equal);
    fs.owner = getuid();
    fs.listings = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                        (GDestroyNotify)g_ptr_array_unref);
    if (!(se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs)))
        goto out_state;
    fs.se = se;
    if (!fs_set_signals()) {
        fprintf(stderr, "%s: cannot set signal handlers: %s\n", argv[0], g_strerror(errno));
        goto out_session;
    }
    if (fuse_session_mount(se, cmd.mountpoint) != 0) {
        fprintf(stderr, "%s: cannot mount on '%s'\n", argv[0], cmd.mountpoint);
        goto out_session;
    }
    {
        g_autofree char *dev = fs_mount_dev(cmd.mountpoint);

        if (dev)
            fs_guard_dev(dev);
        if (dev && o.readahead_kb)
            fs_set_readahead(dev, o.readahead_kb);
    }
    if (fuse_daemonize(cmd.foreground) != 0)
        goto out_unmount;
    fs_poller_start(&fs);   /* after daemonizing: fork keeps only the calling thread */
    stopper.loop_thread = pthread_self();
    stopper_thread = fs_stopper_start(&stopper);
    if (cmd.singlethread) {
        ret = fuse_session_loop(se);
    } else {
        struct fuse_loop_config *cfg = fuse_loop_cfg_create();

        fuse_loop_cfg_set_clone_fd(cfg, cmd.clone_fd);
        /* Unset is UINT_MAX, which libfuse 3.14 would log as invalid. */
        if (cmd.max_idle_threads <= 100000)
            fuse_loop_cfg_set_idle_threads(cfg, cmd.max_idle_threads);
        if (cmd.max_threads > 0 && cmd.max_threads <= 100000)
            fuse_loop_cfg_set_max_threads(cfg, cmd.max_threads);
        ret = fuse_session_loop_mt(se, cfg);
        fuse_loop_cfg_destroy(cfg);
    }
    ret = ret == 0 ? 0 : 1;   /* also when stopped by a signal */
    g_atomic_int_set(&stopper.loop_done, 1);
    if (write(fs_signal_pipe[1], "", 1) < 0) {
        /* full: the stopper is awake already */
    }
    g_thread_join(stopper_thread);
    fs_poller_stop(&fs);
    fs_files_close(&fs);   /* after an unmount, pushers end with the connection */
out_unmount:
    fuse_session_unmount(se);
out_session:
    fuse_session_destroy(se);
out_state:
    inode_table_free(fs.inodes);
    if (fs.files)
        g_hash_table_unref(fs.files);
    if (fs.listings)
        g_hash_table_unref(fs.listings);
    if (fs.texts) {   /* every open file released its text */
        fs_texts_clear(&fs);
        g_hash_table_unref(fs.texts);
    }
    if (fs.text_bytes)
        g_hash_table_unref(fs.text_bytes);
    view_free(fs.view);
out:
    g_free(cmd.mountpoint);
    g_free(o.store);
    g_free(o.uri);
    g_free(o.config_dir);
    g_free(o.snapshot_dir);
    g_free(o.run_dir);
    fuse_opt_free_args(&args);
    return ret;
}
