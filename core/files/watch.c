/* watch.c: which domains of a store may have changed, from inotify on its directories. */
#include "watch.h"

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Everything that changes what store_domain_stamp() or store_list_stamp() read
 * (IN_MODIFY covers writes and truncation). Reads and opens change nothing. */
#define WATCH_MASK                                                                        \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO |       \
     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct StoreWatch {
    Store *store;
    int fd;
    int config_wd;        /* the config directory; -1 while it is not watched */
    int root_wd;          /* the snapshot directory; -1 while it is not watched */
    GHashTable *wds;      /* wd -> domain name (owned by names) */
    GHashTable *names;    /* domain name -> wd, or -1: no directory, the root watch
                             sees it appear */
};

/* Filesystems whose changes made on another host inotify never reports. */
static gboolean
watch_remote_fs(const char *path)
{
    static const unsigned long remote[] = {
        0x6969,       /* NFS */
        0x517B,       /* SMB */
        0xFE534D42,   /* SMB2 */
        0xFF534D42,   /* CIFS */
        0x65735546,   /* FUSE */
        0x01021997,   /* 9P */
        0x00C36400,   /* Ceph */
        0x5346414F,   /* AFS */
        0x6B414653,   /* kAFS */
        0x01161970,   /* GFS2 */
        0x7461636F,   /* OCFS2 */
        0x0BD00BD0,   /* Lustre */
        0x47504653,   /* GPFS */
    };
    struct statfs sf;

    if (statfs(path, &sf) < 0)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(remote); i++)
        if ((unsigned long)sf.f_type == remote[i])
            return TRUE;
    return FALSE;
}

static int
watch_add(StoreWatch *watch, const char *path)
{
    return inotify_add_watch(watch->fd, path, WATCH_MASK);
}

StoreWatch *
watch_new(Store *store, GError **error)
{
    g_autoptr(StoreWatch) watch = g_new0(StoreWatch, 1);
    const char *remote = NULL;

    watch->store = store;
    watch->fd = -1;
    watch->config_wd = -1;
    watch->root_wd = -1;
    watch->wds = g_hash_table_new(g_direct_hash, g_direct_equal);
    watch->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (watch_remote_fs(store->config_dir))
        remote = store->config_dir;
    else if (watch_remote_fs(store->snapshot_dir))
        remote = store->snapshot_dir;
    if (remote) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSYS,
                    "'%s' is on a network filesystem, where inotify does not see other "
                    "hosts' changes", remote);
        return NULL;
    }
    watch->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch->fd < 0) {
        int errsv = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot start inotify: %s", g_strerror(errsv));
        return NULL;
    }
    watch->config_wd = watch_add(watch, store->config_dir);
    watch->root_wd = watch_add(watch, store->snapshot_dir);   /* may not exist yet */
    return g_steal_pointer(&watch);
}

void
watch_free(StoreWatch *watch)
{
    if (!watch)
        return;
    if (watch->fd >= 0)
        close(watch->fd);   /* drops every watch */
    g_hash_table_unref(watch->wds);
    g_hash_table_unref(watch->names);
    g_free(watch);
}

gboolean
watch_list_watched(StoreWatch *watch)
{
    return watch->config_wd >= 0;
}

/* Drops what is known of domain @name's watch; removes the watch itself when
 * @rm (not when the kernel already dropped it). */
static void
watch_drop(StoreWatch *watch, const char *name, gboolean rm)
{
    gpointer v;

    if (!g_hash_table_lookup_extended(watch->names, name, NULL, &v))
        return;
    if (GPOINTER_TO_INT(v) >= 0) {
        g_hash_table_remove(watch->wds, v);
        if (rm)
            inotify_rm_watch(watch->fd, GPOINTER_TO_INT(v));
    }
    g_hash_table_remove(watch->names, name);
}

/* Whether @path is a symbolic link: inotify would watch the directory it names,
 * not a file it names (a link to a file elsewhere is polled). */
static gboolean
watch_is_link(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

gboolean
watch_domain(StoreWatch *watch, const char *name)
{
    g_autofree char *dir = g_build_filename(watch->store->snapshot_dir, name, NULL);
    g_autofree char *config = store_domain_path(watch->store, name);
    const char *other;
    gpointer old;
    int wd;

    if (watch->config_wd < 0 || watch->root_wd < 0)
        return FALSE;   /* its config file or the appearing of its directory would go unseen */
    if (watch_is_link(config))
        return FALSE;
    wd = watch_add(watch, dir);
    if (wd < 0 && errno != ENOENT && errno != ENOTDIR)
        return FALSE;   /* out of watches, or unreadable: polled */
    if (wd >= 0 && (wd == watch->config_wd || wd == watch->root_wd))
        return FALSE;   /* a directory watched for something else: never removed here */
    other = wd >= 0 ? g_hash_table_lookup(watch->wds, GINT_TO_POINTER(wd)) : NULL;
    if (other && strcmp(other, name) != 0)
        return FALSE;   /* one directory under two names */
    if (g_hash_table_lookup_extended(watch->names, name, NULL, &old) &&
        GPOINTER_TO_INT(old) == MAX(wd, -1))
        return TRUE;
    /* A new directory under the name (or none, the root watch sees one appear). */
    watch_drop(watch, name, TRUE);
    wd = MAX(wd, -1);
    g_hash_table_insert(watch->names, g_strdup(name), GINT_TO_POINTER(wd));
    if (wd >= 0) {
        g_hash_table_lookup_extended(watch->names, name, &old, NULL);
        g_hash_table_insert(watch->wds, GINT_TO_POINTER(wd), old);
    }
    return TRUE;
}

void
watch_forget(StoreWatch *watch, const char *name)
{
    watch_drop(watch, name, TRUE);
}

/* Whether event @ev says a watched directory itself went away (deleted, moved, or
 * its watch dropped): a directory moved back or made again is watched again by
 * path, not through the old inode. */
static gboolean
watch_gone(StoreWatch *watch, const struct inotify_event *ev)
{
    if (!(ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)))
        return FALSE;
    if (!(ev->mask & IN_IGNORED))
        inotify_rm_watch(watch->fd, ev->wd);   /* its IN_IGNORED then matches nothing */
    return TRUE;
}

/* Adds what event @ev may have changed to @changed; TRUE when everything may have. */
static gboolean
watch_event(StoreWatch *watch, const struct inotify_event *ev, GHashTable *changed)
{
    const char *dom;
    gboolean all = FALSE;
    gboolean gone;

    if (ev->mask & IN_Q_OVERFLOW)
        return TRUE;
    gone = watch_gone(watch, ev);
    /* The config and snapshot directories may be one directory: both checks apply.
     * A change of the directory itself (its mode) may change what can be read. */
    if (ev->wd == watch->config_wd) {
        if (gone || !ev->len) {
            all = TRUE;
            if (gone)
                watch->config_wd = -1;
        } else if (g_str_has_suffix(ev->name, ".xml")) {
            g_hash_table_add(changed, g_strndup(ev->name, strlen(ev->name) - 4));
            g_hash_table_add(changed, g_strdup(""));
        }
    }
    if (ev->wd == watch->root_wd) {
        if (gone || !ev->len) {
            all = TRUE;
            if (gone)
                watch->root_wd = -1;
        } else {
            g_hash_table_add(changed, g_strdup(ev->name));
        }
    }
    if ((dom = g_hash_table_lookup(watch->wds, GINT_TO_POINTER(ev->wd)))) {
        g_hash_table_add(changed, g_strdup(dom));
        if (gone) {
            g_autofree char *name = g_strdup(dom);

            watch_drop(watch, name, FALSE);
        }
    }
    return all;
}

gboolean
watch_drain(StoreWatch *watch, GHashTable *changed)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    gboolean all = FALSE;

    for (;;) {
        ssize_t n = read(watch->fd, buf, sizeof(buf));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   /* EAGAIN: nothing more queued */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;

            all |= watch_event(watch, ev, changed);
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
    return all;
}

/* Watches @path again; TRUE when its watch is not *@wd (dropping the old one
 * unless @keep, the other directory's watch, still uses it). */
static gboolean
watch_recheck(StoreWatch *watch, const char *path, int *wd, int keep)
{
    int now = watch_add(watch, path);

    if (now == *wd)
        return FALSE;
    if (*wd >= 0 && *wd != keep && *wd != now)
        inotify_rm_watch(watch->fd, *wd);
    *wd = now;
    return TRUE;
}

gboolean
watch_check(StoreWatch *watch)
{
    gboolean moved;

    /* The two may be one directory, so one wd: never drop the other's. */
    moved = watch_recheck(watch, watch->store->config_dir, &watch->config_wd, watch->root_wd);
    moved |= watch_recheck(watch, watch->store->snapshot_dir, &watch->root_wd, watch->config_wd);
    return moved;
}
