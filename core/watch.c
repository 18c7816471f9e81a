/* watch.c: which domains of a store may have changed, from inotify on its directories. */
#include "watch.h"

#include <errno.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Everything that changes what store_domain_stamp() or store_list_stamp() read.
 * Reads and opens are not watched: they change nothing. */
#define WATCH_MASK                                                                        \
    (IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM |     \
     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct StoreWatch {
    Store *store;
    int fd;
    int config_wd;        /* the config directory; -1 once it is gone */
    int root_wd;          /* the snapshot directory; -1 while it does not exist */
    GHashTable *wds;      /* wd -> domain name (owned by names) */
    GHashTable *names;    /* domain name -> wd, or -1: no directory, the root watch
                             sees it appear */
};

StoreWatch *
store_watch_new(Store *store, GError **error)
{
    g_autoptr(StoreWatch) watch = g_new0(StoreWatch, 1);

    watch->store = store;
    watch->config_wd = -1;
    watch->root_wd = -1;
    watch->wds = g_hash_table_new(g_direct_hash, g_direct_equal);
    watch->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    watch->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (watch->fd < 0) {
        int errsv = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot start inotify: %s", g_strerror(errsv));
        return NULL;
    }
    watch->config_wd = inotify_add_watch(watch->fd, store->config_dir, WATCH_MASK);
    if (watch->config_wd < 0) {
        int errsv = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot watch '%s': %s", store->config_dir, g_strerror(errsv));
        return NULL;
    }
    return g_steal_pointer(&watch);
}

void
store_watch_free(StoreWatch *watch)
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
store_watch_list_watched(StoreWatch *watch)
{
    if (watch->config_wd < 0)   /* gone, maybe back: watched again by path */
        watch->config_wd = inotify_add_watch(watch->fd, watch->store->config_dir, WATCH_MASK);
    return watch->config_wd >= 0;
}

/* Drops what is known of domain @name's watch; removes the watch itself when
 * @rm (not when the kernel already dropped it). */
static void
store_watch_drop(StoreWatch *watch, const char *name, gboolean rm)
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

gboolean
store_watch_domain(StoreWatch *watch, const char *name)
{
    g_autofree char *dir = NULL;
    const char *other;
    gpointer old;
    int wd;

    if (!store_watch_list_watched(watch))
        return FALSE;   /* the config file itself would go unseen */
    if (watch->root_wd < 0)
        watch->root_wd = inotify_add_watch(watch->fd, watch->store->snapshot_dir, WATCH_MASK);
    if (watch->root_wd < 0)
        return FALSE;   /* no snapshot directory yet: its domains are polled */
    dir = g_build_filename(watch->store->snapshot_dir, name, NULL);
    wd = inotify_add_watch(watch->fd, dir, WATCH_MASK);
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
    store_watch_drop(watch, name, TRUE);
    wd = MAX(wd, -1);
    g_hash_table_insert(watch->names, g_strdup(name), GINT_TO_POINTER(wd));
    if (wd >= 0) {
        g_hash_table_lookup_extended(watch->names, name, &old, NULL);
        g_hash_table_insert(watch->wds, GINT_TO_POINTER(wd), old);
    }
    return TRUE;
}

void
store_watch_forget(StoreWatch *watch, const char *name)
{
    store_watch_drop(watch, name, TRUE);
}

/* Whether event @ev says a watched directory itself went away (deleted, moved, or
 * its watch dropped): a directory moved back or made again is watched again by
 * path, not through the old inode. */
static gboolean
store_watch_gone(StoreWatch *watch, const struct inotify_event *ev)
{
    if (!(ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)))
        return FALSE;
    if (!(ev->mask & IN_IGNORED))
        inotify_rm_watch(watch->fd, ev->wd);   /* its IN_IGNORED then matches nothing */
    return TRUE;
}

/* Adds what event @ev may have changed to @changed; TRUE when everything may have. */
static gboolean
store_watch_event(StoreWatch *watch, const struct inotify_event *ev, GHashTable *changed)
{
    const char *dom;
    gboolean all = FALSE;
    gboolean gone;

    if (ev->mask & IN_Q_OVERFLOW)
        return TRUE;
    gone = store_watch_gone(watch, ev);
    /* The config and snapshot directories may be one directory: both checks apply. */
    if (ev->wd == watch->config_wd) {
        if (gone) {
            all = TRUE;
            watch->config_wd = -1;
        } else if (ev->len && g_str_has_suffix(ev->name, ".xml")) {
            g_hash_table_add(changed, g_strndup(ev->name, strlen(ev->name) - 4));
            g_hash_table_add(changed, g_strdup(""));
        }
    }
    if (ev->wd == watch->root_wd) {
        if (gone) {
            /* Domains without a directory counted on this watch. */
            all = TRUE;
            watch->root_wd = -1;
        } else if (ev->len) {
            g_hash_table_add(changed, g_strdup(ev->name));
        }
    }
    if ((dom = g_hash_table_lookup(watch->wds, GINT_TO_POINTER(ev->wd)))) {
        g_hash_table_add(changed, g_strdup(dom));
        if (gone) {
            g_autofree char *name = g_strdup(dom);

            store_watch_drop(watch, name, FALSE);
        }
    }
    return all;
}

gboolean
store_watch_drain(StoreWatch *watch, GHashTable *changed)
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

            all |= store_watch_event(watch, ev, changed);
            p += sizeof(struct inotify_event) + ev->len;
        }
    }
    return all;
}
