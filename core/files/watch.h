/* watch.h: which domains of a store may have changed, from inotify on its directories. */
#pragma once

#include <glib.h>

#include "store.h"

G_BEGIN_DECLS

/* One inotify descriptor for the whole store (never one per domain): watches on the
 * config directory, the snapshot directory and each watched domain's snapshot
 * directory. An event only says "look again": callers confirm a change with
 * store_domain_stamp()/store_list_stamp(), so their own writes cost one stamp.
 * Not thread-safe: one caller at a time. */
typedef struct StoreWatch StoreWatch;

/* NULL with a G_FILE_ERROR when the store cannot be watched: inotify fails, or the
 * config or snapshot directory is on a network filesystem, where inotify does not
 * see other hosts' changes. Callers then poll. */
StoreWatch *watch_new(Store *store, GError **error);
void watch_free(StoreWatch *watch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreWatch, watch_free)

/* Whether the domain list (config_dir/\*.xml) is watched now. */
gboolean watch_list_watched(StoreWatch *watch);

/* Watches domain @name: call before reading its stamp or loading it, so that no
 * change after the read goes unseen. FALSE when it cannot be watched (no snapshot
 * directory watched yet, its config file or directory is a symbolic link, or no
 * inotify watch left): the caller polls it. */
gboolean watch_domain(StoreWatch *watch, const char *name);

/* Stops watching domain @name (it is no longer loaded). */
void watch_forget(StoreWatch *watch, const char *name);

/* Reads the events queued so far (never blocks) and adds to @changed (a set of
 * names) each domain that may have changed, and "" when the domain list may have.
 * TRUE when events were lost: everything may have changed. */
gboolean watch_drain(StoreWatch *watch, GHashTable *changed);

/* Watches the config and snapshot directories again by path: TRUE when either is
 * not the directory watched so far (moved, replaced, appeared, or gone), since
 * no event tells that a parent directory moved: everything may have changed.
 * For a periodic caller. */
gboolean watch_check(StoreWatch *watch);

G_END_DECLS
