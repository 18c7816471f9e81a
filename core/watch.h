/* watch.h: which domains of a store may have changed, from inotify on its directories. */
#pragma once

#include <glib.h>

#include "store.h"

G_BEGIN_DECLS

/* One inotify descriptor for the whole store (never one per domain): watches on the
 * config directory, the snapshot directory and each watched domain's snapshot
 * directory. An event only says "look again": callers confirm a change with
 * store_domain_stamp()/store_list_stamp(), so their own writes cost one stamp. */
typedef struct StoreWatch StoreWatch;

/* NULL with @error when inotify cannot be used (callers fall back to polling). */
StoreWatch *store_watch_new(Store *store, GError **error);
void store_watch_free(StoreWatch *watch);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StoreWatch, store_watch_free)

/* Whether the domain list (config_dir/\*.xml) is watched; a config directory that
 * went away and is back is watched again. */
gboolean store_watch_list_watched(StoreWatch *watch);

/* Watches domain @name: call before reading its stamp or loading it, so that no
 * change after the read goes unseen. FALSE when it cannot be watched (no snapshot
 * directory to watch yet, or no inotify watch left): the caller polls it. */
gboolean store_watch_domain(StoreWatch *watch, const char *name);

/* Stops watching domain @name (it is no longer loaded). */
void store_watch_forget(StoreWatch *watch, const char *name);

/* Reads the events queued so far (never blocks) and adds to @changed (a set of
 * names) each domain that may have changed, and "" when the domain list may have.
 * TRUE when events were lost: everything may have changed. */
gboolean store_watch_drain(StoreWatch *watch, GHashTable *changed);

G_END_DECLS
