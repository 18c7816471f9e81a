/* store.c: libvirt's on-disk layout: domain configs, snapshot metadata files, lock, stamps. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "error.h"
#include "journal.h"
#include "util.h"

#define STORE_SNAPSHOT_MAX (1024 * 1024)          /* qemuDomainSnapshotLoad */
#define STORE_DOMAIN_MAX (10 * 1024 * 1024)
#define STORE_LOCK_NAME ".snapfs.lock"
#define STORE_TMP_SUFFIX ".new"                   /* util_file_write_atomic's temp */

/* virXMLEmitWarning as qemuDomainSnapshotWriteMetadata uses it (no name). */
static const char store_snapshot_header[] =
    "<!--\n"
    "WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n"
    "OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n"
    "  virsh snapshot-edit\n"
    "or other application using the libvirt API.\n"
    "-->\n"
    "\n";

static gboolean
store_errno_error(GError **error, int errsv, const char *what, const char *path)
{
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "cannot %s '%s': %s", what,
                path, g_strerror(errsv));
    return FALSE;
}

/* A name that becomes one path component: never "", ".", ".." or with a '/'
 * (libvirt forbids '/' in domain and qemu snapshot names; this keeps a bad name
 * from reaching outside the store). */
static gboolean
store_check_name(const char *name, GError **error)
{
    if (!name || !*name || strchr(name, '/') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "invalid name '%s' for a store file",
                    name ? name : "");
        return FALSE;
    }
    return TRUE;
}

Store *
store_open(const char *root, const char *config_dir, const char *snapshot_dir, GError **error)
{
    g_autoptr(Store) store = g_new0(Store, 1);
    struct stat st;

    g_mutex_init(&store->busy_lock);
    store->backups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_mutex_init(&store->light_lock);
    store->light = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)g_hash_table_unref);
    g_assert(root || config_dir);
    store->config_dir = config_dir ? g_strdup(config_dir) : g_build_filename(root, "qemu", NULL);
    if (snapshot_dir)
        store->snapshot_dir = g_strdup(snapshot_dir);
    else if (root)
        store->snapshot_dir = g_build_filename(root, "qemu", "snapshot", NULL);
    else
        store->snapshot_dir = g_build_filename(store->config_dir, "snapshot", NULL);
    if (stat(store->config_dir, &st) < 0) {
        store_errno_error(error, errno, "open config directory", store->config_dir);
        return NULL;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR,
                    "cannot open config directory '%s': %s", store->config_dir,
                    g_strerror(ENOTDIR));
        return NULL;
    }
    return g_steal_pointer(&store);
}

void
store_free(Store *store)
{
    if (!store)
        return;
    if (store->light)
        g_hash_table_unref(store->light);
    g_mutex_clear(&store->light_lock);
    if (store->backups)
        g_hash_table_unref(store->backups);
    g_mutex_clear(&store->busy_lock);
    g_free(store->config_dir);
    g_free(store->snapshot_dir);
    g_free(store);
}

char *
store_domain_path(Store *store, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".xml", NULL);

    return g_build_filename(store->config_dir, file, NULL);
}

static char *
store_snapshot_dir_of(Store *store, const char *domain)
{
    return g_build_filename(store->snapshot_dir, domain, NULL);
}

char *
store_snapshot_path(Store *store, const char *domain, const char *snap)
{
    g_autofree char *file = g_strconcat(snap, ".xml", NULL);

    return g_build_filename(store->snapshot_dir, domain, file, NULL);
}

static int
store_strcmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entry names of @path except . and .., sorted; NULL with the errno kept. */
static GPtrArray *
store_read_dir(const char *path, GError **error)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GDir) dir = g_dir_open(path, 0, error);
    const char *name;

    if (!dir)
        return NULL;
    while ((name = g_dir_read_name(dir)))
        g_ptr_array_add(names, g_strdup(name));
    g_ptr_array_sort(names, store_strcmp);
    return g_steal_pointer(&names);
}

GPtrArray *
store_list_domains(Store *store, GError **error)
{
    g_autoptr(GPtrArray) entries = store_read_dir(store->config_dir, error);
    GPtrArray *names;

    if (!entries)
        return NULL;
    names = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < entries->len; i++) {
        const char *entry = g_ptr_array_index(entries, i);
        g_autofree char *path = NULL;
        struct stat st;

        /* virDomainObjListLoadAllConfigs: NAME.xml only; NAME.xml.new is ours. */
        if (!g_str_has_suffix(entry, ".xml") || strlen(entry) == strlen(".xml"))
            continue;
        path = g_build_filename(store->config_dir, entry, NULL);
        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        g_ptr_array_add(names, g_strndup(entry, strlen(entry) - strlen(".xml")));
    }
    return names;
}

/* The locked descriptor; with !@wait CORE_ERROR_BUSY when another holder has it. */
static int
store_lock_fd(Store *store, gboolean wait, GError **error)
{
    g_autofree char *path = g_build_filename(store->snapshot_dir, STORE_LOCK_NAME, NULL);
    g_auto(CoreFd) fd = -1;
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

    if (g_mkdir_with_parents(store->snapshot_dir, 0777) < 0) {
        store_errno_error(error, errno, "create directory", store->snapshot_dir);
        return -1;
    }
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        store_errno_error(error, errno, "open lock file", path);
        return -1;
    }
    while (fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) < 0) {
        int errsv = errno;

        if (errsv == EINTR)
            continue;
        if (!wait && (errsv == EAGAIN || errsv == EACCES)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY, "store lock '%s' is held", path);
            return -1;
        }
        store_errno_error(error, errsv, "lock", path);
        return -1;
    }
    return g_steal_fd(&fd);
}

struct StoreLock {
    int fd;
};

/* Whether some process (this one included) holds the store lock now. */
static gboolean
store_lock_held(Store *store)
{
    g_autofree char *path = g_build_filename(store->snapshot_dir, STORE_LOCK_NAME, NULL);
    g_auto(CoreFd) fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };

    if (fd < 0 || fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return FALSE;
    return fl.l_type != F_UNLCK;
}

/* What the journal of an unfinished change of @name's images says of its snapshots:
 * the change is "in progress" while a process holds the store lock (changes hold
 * it throughout), else "interrupted" until the next change or mount resolves it. */
static void
store_load_pending(Store *store, const char *name, BackendDomain *sd)
{
    g_autofree char *path = journal_path(store->snapshot_dir, name);
    g_autoptr(Journal) journal = journal_load(path, NULL);
    g_autofree char *op = NULL;
    g_autofree char *snap = NULL;
    g_auto(GStrv) victims = NULL;
    const char *verb;
    char *text;

    if (!journal)
        return;
    op = journal_operation(journal);
    snap = journal_get(journal, "snapshot");
    victims = journal_get_list(journal, "victims");
    verb = strcmp(op, "delete") == 0 ? "deleting" : strcmp(op, "create") == 0 ? "creating"
           : strcmp(op, "revert") == 0 ? "reverting to" : op;
    text = g_strdup_printf("%s (%s)", verb,
                           store_lock_held(store) ? "in progress" : "interrupted");
    sd->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; victims[i]; i++)
        g_hash_table_replace(sd->pending, g_strdup(victims[i]), g_strdup(text));
    if (snap)
        g_hash_table_replace(sd->pending, g_strdup(snap), g_strdup(text));
    g_free(text);
}

StoreLock *
store_lock(Store *store, GError **error)
{
    int fd = store_lock_fd(store, TRUE, error);
    StoreLock *lock;

    if (fd < 0)
        return NULL;
    lock = g_new0(StoreLock, 1);
    lock->fd = fd;
    return lock;
}

void
store_unlock(StoreLock *lock)
{
    if (!lock)
        return;
    if (lock->fd >= 0)
        close(lock->fd);   /* drops the OFD lock */
    g_free(lock);
}

static void
store_warn(BackendDomain *sd, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
store_warn(BackendDomain *sd, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_debug("%s", msg);
    g_ptr_array_add(sd->warnings, msg);
}

/* A FILE.new left by a crash between write and rename: the old FILE is intact, so
 * the leftover is dropped. Only while nobody holds the store lock, since a writer
 * in another process may be between its write and its rename right now. */
static void
store_cleanup_tmp(Store *store, const char *path)
{
    g_auto(CoreFd) fd = -1;

    if (store->read_only)
        return;
    fd = store_lock_fd(store, FALSE, NULL);
    if (fd < 0)
        return;
    if (unlink(path) == 0)
        g_debug("removed stale temporary file '%s'", path);
}

/* A snapshot file as light loading last parsed it. */
typedef struct {
    struct stat st;
    SnapshotDef *def;     /* light */
} StoreLight;

static void
store_light_free(StoreLight *l)
{
    snapshot_def_free(l->def);
    g_free(l);
}

static gboolean
store_same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Reads and parses the snapshot metadata file @path as qemuDomainSnapshotLoad does.
 * NULL with @error when it cannot be used; *@read_failed tells a file that could not
 * be read from one that did not parse. */
static SnapshotDef *
store_parse_snapshot_file(const char *path, gboolean *read_failed, GError **error)
{
    g_autofree char *xml = NULL;
    gsize xlen = 0;

    *read_failed = !util_file_read_limited(path, STORE_SNAPSHOT_MAX, &xml, &xlen, error);
    if (*read_failed)
        return NULL;
    return snapshot_parse(xml, xlen,
                          SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS | SNAPSHOT_PARSE_INTERNAL,
                          error);
}

static BackendDomain *
store_load_domain_mode(Store *store, const char *name, gboolean light, GError **error)
{
    g_autoptr(BackendDomain) sd = g_new0(BackendDomain, 1);
    g_autofree char *dompath = store_domain_path(store, name);
    g_autofree char *snapdir = store_snapshot_dir_of(store, name);
    g_autofree char *buf = NULL;
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GHashTable) old_light = NULL;
    g_autoptr(GHashTable) new_light = NULL;
    SnapNode *current = NULL;
    gsize len = 0;

    sd->warnings = g_ptr_array_new_with_free_func(g_free);
    sd->snaps = snaptree_new();
    if (!store_check_name(name, error))
        return NULL;
    {
        g_autofree char *tmp = g_strconcat(dompath, STORE_TMP_SUFFIX, NULL);

        if (g_file_test(tmp, G_FILE_TEST_EXISTS))
            store_cleanup_tmp(store, tmp);
    }
    if (!util_file_read_limited(dompath, STORE_DOMAIN_MAX, &buf, &len, error))
        return NULL;
    if (!(sd->def = domain_parse(buf, len, DOMAIN_PARSE_INACTIVE, error))) {
        g_prefix_error(error, "cannot load domain '%s' from '%s': ", name, dompath);
        return NULL;
    }

    store_load_pending(store, name, sd);
    if (!(entries = store_read_dir(snapdir, &local))) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return g_steal_pointer(&sd);   /* no snapshots yet */
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    if (light) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&store->light_lock);
        g_autofree char *key = NULL;

        g_hash_table_steal_extended(store->light, name, (gpointer *)&key, (gpointer *)&old_light);
        new_light = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify)store_light_free);
    }

    /* qemuDomainSnapshotLoad: every entry, no suffix filter; we read them in
     * name order so that "last <active>1 wins" is deterministic. */
    for (guint i = 0; i < entries->len; i++) {
        const char *entry = g_ptr_array_index(entries, i);
        g_autofree char *path = g_build_filename(snapdir, entry, NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(SnapshotDef) def = NULL;
        struct stat before, after;
        gboolean have_before;
        gboolean cur;
        SnapNode *node;

        if (strcmp(entry, STORE_LOCK_NAME) == 0)
            continue;
        if (g_str_has_suffix(entry, STORE_TMP_SUFFIX)) {
            store_cleanup_tmp(store, path);
            continue;
        }
        have_before = light && stat(path, &before) == 0;
        if (have_before) {
            StoreLight *l = old_light ? g_hash_table_lookup(old_light, entry) : NULL;

            if (l && store_same_file(&l->st, &before)) {
                /* unchanged: the kept definition moves to the new table, a copy to the tree */
                gpointer key = NULL;

                def = snapshot_def_copy(l->def);
                g_hash_table_steal_extended(old_light, entry, &key, NULL);
                g_hash_table_replace(new_light, key, l);
            }
        }
        if (!def) {
            gboolean read_failed;

            if (!(def = store_parse_snapshot_file(path, &read_failed, &err))) {
                if (read_failed) {
                    store_warn(sd, "Failed to read snapshot file %s: %s", path, err->message);
                } else {
                    store_warn(sd, "%s", err->message);
                    store_warn(sd, "Failed to parse snapshot XML from file '%s'", path);
                }
                continue;
            }
            if (light) {
                snapshot_make_light(def, path);
                /* kept only when the file did not change while it was read */
                if (have_before && stat(path, &after) == 0 && store_same_file(&before, &after)) {
                    StoreLight *l = g_new0(StoreLight, 1);

                    l->st = after;
                    l->def = snapshot_def_copy(def);
                    g_hash_table_replace(new_light, g_strdup(entry), l);
                }
            }
        }
        cur = def->active > 0;
        if (!(node = snaptree_add(sd->snaps, g_steal_pointer(&def), &err))) {
            store_warn(sd, "%s", err->message);
            continue;
        }
        if (cur) {
            if (current)
                store_warn(sd, "Too many snapshots claiming to be current for domain %s",
                           name);
            current = node;
        }
    }
    sd->snaps->current = current;
    if (!snaptree_update_relations(sd->snaps)) {
        store_warn(sd, "Snapshots have inconsistent relations for domain %s", name);
        sd->snaps->current = NULL;
    }
    if (light) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&store->light_lock);

        g_hash_table_replace(store->light, g_strdup(name), g_steal_pointer(&new_light));
    }
    return g_steal_pointer(&sd);
}

BackendDomain *
store_load_domain(Store *store, const char *name, GError **error)
{
    return store_load_domain_mode(store, name, FALSE, error);
}

BackendDomain *
store_load_domain_light(Store *store, const char *name, GError **error)
{
    return store_load_domain_mode(store, name, TRUE, error);
}

void
store_snapshot_light(SnapNode *node, const char *path)
{
    if (!node->def->light_token)
        snapshot_make_light(node->def, path);
}

gboolean
store_snapshot_full(Store *store, const char *domain, BackendDomain *sd, SnapNode *node,
                    GError **error)
{
    g_autoptr(SnapshotDef) full = NULL;
    SnapshotDef *def = node->def;
    gboolean read_failed;

    if (!def->light_token)
        return TRUE;
    if (!(full = store_parse_snapshot_file(def->light_token, &read_failed, error))) {
        g_prefix_error(error, "cannot read snapshot '%s' of domain '%s' again: ", def->name,
                       domain);
        return FALSE;
    }
    if (strcmp(full->name, def->name) != 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "snapshot file '%s' changed: it now holds '%s', not '%s'", def->light_token,
                    full->name, def->name);
        return FALSE;
    }
    snapshot_keep_relations(full, def);
    snaptree_replace_def(sd->snaps, node, g_steal_pointer(&full));
    return TRUE;
}

char *
store_snapshot_file_contents(const SnapshotDef *def, gboolean current)
{
    SnapshotDef *mut = (SnapshotDef *)def;   /* <active> is a formatting detail */
    int saved = def->active;
    GString *out = g_string_new(store_snapshot_header);
    g_autofree char *xml = NULL;

    mut->active = current ? 1 : 0;
    xml = snapshot_format(def, SNAPSHOT_FORMAT_SECURE | SNAPSHOT_FORMAT_INTERNAL);
    mut->active = saved;
    g_string_append(out, xml);
    return g_string_free(out, FALSE);
}

char *
store_domain_file_contents(const DomainDef *def)
{
    g_autofree char *xml = domain_format(def, DOMAIN_FORMAT_SECURE);

    /* virXMLEmitWarning with the command "edit NAME". */
    return g_strdup_printf("<!--\n"
                           "WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY "
                           "TO BE\n"
                           "OVERWRITTEN AND LOST. Changes to this xml configuration should be "
                           "made using:\n"
                           "  virsh edit %s\n"
                           "or other application using the libvirt API.\n"
                           "-->\n"
                           "\n"
                           "%s",
                           def->name, xml);
}

gboolean
store_write_domain(Store *store, const DomainDef *def, GError **error)
{
    g_autofree char *path = store_domain_path(store, def->name);
    g_autofree char *data = NULL;

    if (!store_check_name(def->name, error))
        return FALSE;
    data = store_domain_file_contents(def);
    return util_file_write_atomic(path, data, strlen(data), 0600, error);
}

gboolean
store_write_snapshot(Store *store, const char *domain, const SnapshotDef *def,
                     gboolean current, GError **error)
{
    g_autofree char *dir = store_snapshot_dir_of(store, domain);
    g_autofree char *path = store_snapshot_path(store, domain, def->name);
    g_autofree char *data = NULL;

    if (!store_check_name(domain, error) || !store_check_name(def->name, error))
        return FALSE;
    /* A light definition lacks its domain: writing it would lose it. */
    g_return_val_if_fail(!def->light_token, FALSE);
    data = store_snapshot_file_contents(def, current);
    /* qemuDomainSnapshotWriteMetadata: g_mkdir_with_parents(0777), umask applies. */
    if (g_mkdir_with_parents(dir, 0777) < 0)
        return store_errno_error(error, errno, "create directory", dir);
    return util_file_write_atomic(path, data, strlen(data), 0600, error);
}

gboolean
store_remove_snapshot(Store *store, const char *domain, const char *snap, GError **error)
{
    g_autofree char *path = store_snapshot_path(store, domain, snap);

    if (!store_check_name(domain, error) || !store_check_name(snap, error))
        return FALSE;
    if (unlink(path) < 0)
        return store_errno_error(error, errno, "remove", path);
    return util_fsync_dir_of(path, error);
}

gboolean
store_remove_domain(Store *store, const char *domain, GError **error)
{
    g_autofree char *path = store_domain_path(store, domain);
    g_autofree char *dir = store_snapshot_dir_of(store, domain);

    if (!store_check_name(domain, error))
        return FALSE;
    if (unlink(path) < 0)
        return store_errno_error(error, errno, "remove", path);
    if (!util_fsync_dir_of(path, error))
        return FALSE;
    /* The snapshot directory goes with the domain when it is empty (libvirt
     * removes it on undefine and only warns when that fails). */
    if (rmdir(dir) < 0 && errno != ENOENT)
        g_debug("cannot remove '%s': %s", dir, g_strerror(errno));
    return TRUE;
}

/* Everything a rewrite changes: a rename gives a new inode, an in-place
 * rewrite a new ctime (nanoseconds) and usually size; a missing file hashes
 * its errno so that appearing and vanishing count as changes. */
static guint64
store_hash_stat(guint64 h, const char *path)
{
    struct stat st;
    gint64 v[8];

    if (stat(path, &st) < 0) {
        int errsv = errno;

        return util_hash_fnv1a(h, &errsv, sizeof(errsv));
    }
    v[0] = st.st_ino;
    v[1] = st.st_dev;
    v[2] = st.st_size;
    v[3] = st.st_mtim.tv_sec;
    v[4] = st.st_mtim.tv_nsec;
    v[5] = st.st_ctim.tv_sec;
    v[6] = st.st_ctim.tv_nsec;
    v[7] = st.st_mode;
    return util_hash_fnv1a(h, v, sizeof(v));
}

guint64
store_domain_stamp(Store *store, const char *name)
{
    g_autofree char *dompath = store_domain_path(store, name);
    g_autofree char *snapdir = store_snapshot_dir_of(store, name);
    g_autofree char *journal = journal_path(store->snapshot_dir, name);
    g_autoptr(GDir) dir = NULL;
    guint64 h = UTIL_FNV1A_INIT;
    guint64 entries = 0;
    const char *entry;

    h = store_hash_stat(h, dompath);
    h = store_hash_stat(h, snapdir);
    h = store_hash_stat(h, journal);   /* an unfinished change shows in the tree */
    if (!(dir = g_dir_open(snapdir, 0, NULL)))
        return h;
    /* Summed per-entry hashes: readdir order does not matter. */
    while ((entry = g_dir_read_name(dir))) {
        g_autofree char *path = g_build_filename(snapdir, entry, NULL);
        guint64 e = util_hash_fnv1a(UTIL_FNV1A_INIT, entry, strlen(entry) + 1);

        entries += store_hash_stat(e, path);
    }
    return util_hash_fnv1a(h, &entries, sizeof(entries));
}

guint64
store_list_stamp(Store *store)
{
    g_autoptr(GDir) dir = NULL;
    guint64 h = UTIL_FNV1A_INIT;
    guint64 entries = 0;
    const char *entry;

    h = store_hash_stat(h, store->config_dir);
    if (!(dir = g_dir_open(store->config_dir, 0, NULL)))
        return h;
    while ((entry = g_dir_read_name(dir))) {
        if (g_str_has_suffix(entry, ".xml"))
            entries += util_hash_fnv1a(UTIL_FNV1A_INIT, entry, strlen(entry) + 1);
    }
    return util_hash_fnv1a(h, &entries, sizeof(entries));
}
