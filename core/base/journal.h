/* journal.h: durable intent records of multi-step image changes, so that the next load
 * finishes or undoes a change a crash interrupted. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Journals live in SNAPSHOT_DIR/.snapfs-journal/: one file per domain (its name), at
 * most one at a time (changes hold the store lock). libvirt reads only
 * SNAPSHOT_DIR/NAME/, so it never sees them. */
#define JOURNAL_DIR_NAME ".snapfs-journal"

/* A journal in memory: an operation, string and list fields, and an ordered list of
 * steps (an action, its arguments, done or not). The file is a GKeyFile: every value
 * escaped, any byte but NUL survives. */
typedef struct Journal Journal;

/* SNAPSHOT_DIR/.snapfs-journal and SNAPSHOT_DIR/.snapfs-journal/DOMAIN. Owned. */
char *journal_dir(const char *snapshot_dir);
char *journal_path(const char *snapshot_dir, const char *domain);

/* A new journal (not written yet) for @path. Owned; journal_free(). */
Journal *journal_new(const char *path, const char *operation);
void journal_free(Journal *journal);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Journal, journal_free)

const char *journal_get_path(const Journal *journal);
char *journal_operation(const Journal *journal);   /* owned */

/* Fields. A NULL @value removes the field; getters return owned copies, NULL (or an
 * empty vector for lists) when the field is absent. */
void journal_set(Journal *journal, const char *key, const char *value);
char *journal_get(const Journal *journal, const char *key);
void journal_set_list(Journal *journal, const char *key, const char *const *values, gsize n);
char **journal_get_list(const Journal *journal, const char *key);

/* Appends a step; @args: NULL-terminated. Returns its index. */
guint journal_add_step(Journal *journal, const char *action, const char *const *args);
guint journal_step_count(const Journal *journal);
char *journal_step_action(const Journal *journal, guint step);   /* owned */
char **journal_step_args(const Journal *journal, guint step);    /* owned, never NULL */
gboolean journal_step_done(const Journal *journal, guint step);

/* Writes the journal atomically and durably (temp file, fsync, rename, directory
 * fsync; the journal directory is made, mode 0700, and made durable first). G_FILE_ERROR. */
gboolean journal_write(Journal *journal, GError **error);

/* Marks @step done and writes the journal. */
gboolean journal_mark_done(Journal *journal, guint step, GError **error);

/* Removes the file (and fsyncs its directory): the change is complete. A missing file
 * is fine. */
gboolean journal_remove(Journal *journal, GError **error);

/* Reads a journal. G_FILE_ERROR_NOENT when there is none; CORE_ERROR_CORRUPT when the
 * file is not a journal. */
Journal *journal_load(const char *path, GError **error);

G_END_DECLS
