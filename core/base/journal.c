/* journal.c: durable intent records of multi-step image changes (GKeyFile, written atomically). */
#include "journal.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "util.h"

#define JOURNAL_GROUP "journal"
#define JOURNAL_MAX (1024 * 1024)

struct Journal {
    char *path;
    GKeyFile *kf;
};

char *
journal_dir(const char *snapshot_dir)
{
    return g_build_filename(snapshot_dir, JOURNAL_DIR_NAME, NULL);
}

char *
journal_path(const char *snapshot_dir, const char *domain)
{
    return g_build_filename(snapshot_dir, JOURNAL_DIR_NAME, domain, NULL);
}

Journal *
journal_new(const char *path, const char *operation)
{
    Journal *journal = g_new0(Journal, 1);

    journal->path = g_strdup(path);
    journal->kf = g_key_file_new();
    g_key_file_set_string(journal->kf, JOURNAL_GROUP, "operation", operation);
    g_key_file_set_integer(journal->kf, JOURNAL_GROUP, "steps", 0);
    return journal;
}

void
journal_free(Journal *journal)
{
    if (!journal)
        return;
    g_free(journal->path);
    if (journal->kf)
        g_key_file_unref(journal->kf);
    g_free(journal);
}

const char *
journal_get_path(const Journal *journal)
{
    return journal->path;
}

char *
journal_operation(const Journal *journal)
{
    return journal_get(journal, "operation");
}

void
journal_set(Journal *journal, const char *key, const char *value)
{
    if (value)
        g_key_file_set_string(journal->kf, JOURNAL_GROUP, key, value);
    else
        g_key_file_remove_key(journal->kf, JOURNAL_GROUP, key, NULL);
}

char *
journal_get(const Journal *journal, const char *key)
{
    return g_key_file_get_string(journal->kf, JOURNAL_GROUP, key, NULL);
}

void
journal_set_list(Journal *journal, const char *key, const char *const *values, gsize n)
{
    g_key_file_set_string_list(journal->kf, JOURNAL_GROUP, key, values, n);
}

/* Lists are read from @group; an absent one is empty. */
static char **
journal_list_of(const Journal *journal, const char *group, const char *key)
{
    char **v = g_key_file_get_string_list(journal->kf, group, key, NULL, NULL);

    return v ? v : g_new0(char *, 1);
}

char **
journal_get_list(const Journal *journal, const char *key)
{
    return journal_list_of(journal, JOURNAL_GROUP, key);
}

static char *
journal_step_group(guint step)
{
    return g_strdup_printf("step %u", step);
}

guint
journal_step_count(const Journal *journal)
{
    gint n = g_key_file_get_integer(journal->kf, JOURNAL_GROUP, "steps", NULL);

    return n > 0 ? (guint)n : 0;
}

guint
journal_add_step(Journal *journal, const char *action, const char *const *args)
{
    guint step = journal_step_count(journal);
    g_autofree char *group = journal_step_group(step);

    g_key_file_set_string(journal->kf, group, "action", action);
    g_key_file_set_string_list(journal->kf, group, "args", args, g_strv_length((char **)args));
    g_key_file_set_boolean(journal->kf, group, "done", FALSE);
    g_key_file_set_integer(journal->kf, JOURNAL_GROUP, "steps", (gint)step + 1);
    return step;
}

char *
journal_step_action(const Journal *journal, guint step)
{
    g_autofree char *group = journal_step_group(step);
    char *action = g_key_file_get_string(journal->kf, group, "action", NULL);

    return action ? action : g_strdup("");
}

char **
journal_step_args(const Journal *journal, guint step)
{
    g_autofree char *group = journal_step_group(step);

    return journal_list_of(journal, group, "args");
}

gboolean
journal_step_done(const Journal *journal, guint step)
{
    g_autofree char *group = journal_step_group(step);

    return g_key_file_get_boolean(journal->kf, group, "done", NULL);
}

gboolean
journal_write(Journal *journal, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(journal->path);
    g_autofree char *data = NULL;
    gsize len = 0;
    struct stat st;

    if (stat(dir, &st) < 0) {
        /* made once; its entry in the snapshot directory must survive a crash too */
        if (g_mkdir_with_parents(dir, 0700) < 0) {
            int errsv = errno;

            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                        "cannot create journal directory '%s': %s", dir, g_strerror(errsv));
            return FALSE;
        }
        if (!util_fsync_dir_of(dir, error))
            return FALSE;
    }
    data = g_key_file_to_data(journal->kf, &len, NULL);
    return util_file_write_atomic(journal->path, data, len, 0600, error);
}

gboolean
journal_mark_done(Journal *journal, guint step, GError **error)
{
    g_autofree char *group = journal_step_group(step);

    g_key_file_set_boolean(journal->kf, group, "done", TRUE);
    return journal_write(journal, error);
}

gboolean
journal_remove(Journal *journal, GError **error)
{
    if (unlink(journal->path) < 0) {
        int errsv = errno;

        if (errsv == ENOENT)
            return TRUE;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot remove journal '%s': %s", journal->path, g_strerror(errsv));
        return FALSE;
    }
    return util_fsync_dir_of(journal->path, error);
}

Journal *
journal_load(const char *path, GError **error)
{
    g_autoptr(Journal) journal = g_new0(Journal, 1);
    g_autofree char *data = NULL;
    g_autoptr(GError) local = NULL;
    gsize len = 0;

    if (!util_file_read_limited(path, JOURNAL_MAX, &data, &len, error))
        return NULL;
    journal->path = g_strdup(path);
    journal->kf = g_key_file_new();
    if (!g_key_file_load_from_data(journal->kf, data, len, G_KEY_FILE_NONE, &local) ||
        !g_key_file_has_key(journal->kf, JOURNAL_GROUP, "operation", NULL)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT, "'%s' is not a snapfs journal%s%s",
                    path, local ? ": " : "", local ? local->message : "");
        return NULL;
    }
    return g_steal_pointer(&journal);
}
