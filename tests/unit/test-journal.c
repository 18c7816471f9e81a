/* test-journal.c: journals survive a write/load round trip with any name, steps keep
 * their order and done marks, a missing or foreign file is told apart. */
#include <glib/gstdio.h>
#include <sys/stat.h>

#include "error.h"
#include "journal.h"

static void
test_round_trip(void)
{
    g_autofree char *dir = g_dir_make_tmp("journal-XXXXXX", NULL);
    g_autofree char *path = journal_path(dir, "dom; with\ttab\nand newline");
    /* separators, escapes and non-ASCII bytes in names and paths */
    const char *names[] = { "s1", "a;b", "c\\d", "new\nline", " lead", "é" };
    const char *args[] = { "vda", "/img/base;x,y.qcow2", "qcow2", NULL };
    const char *none[] = { NULL };
    g_autoptr(Journal) j = journal_new(path, "delete");
    g_autoptr(Journal) back = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) list = NULL;
    g_auto(GStrv) got = NULL;
    g_autofree char *jdir = journal_dir(dir);
    g_autofree char *s = NULL;
    struct stat st;

    journal_set(j, "snapshot", "s 2\n");
    journal_set_list(j, "victims", names, G_N_ELEMENTS(names));
    g_assert_cmpuint(journal_add_step(j, "commit", args), ==, 0);
    g_assert_cmpuint(journal_add_step(j, "metadata", none), ==, 1);
    g_assert_true(journal_write(j, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stat(jdir, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0700);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    g_assert_true(journal_mark_done(j, 0, &error));

    back = journal_load(path, &error);
    g_assert_no_error(error);
    s = journal_operation(back);
    g_assert_cmpstr(s, ==, "delete");
    g_clear_pointer(&s, g_free);
    s = journal_get(back, "snapshot");
    g_assert_cmpstr(s, ==, "s 2\n");
    g_clear_pointer(&s, g_free);
    g_assert_null(journal_get(back, "absent"));
    list = journal_get_list(back, "victims");
    g_assert_cmpuint(g_strv_length(list), ==, G_N_ELEMENTS(names));
    for (guint i = 0; i < G_N_ELEMENTS(names); i++)
        g_assert_cmpstr(list[i], ==, names[i]);
    g_assert_cmpuint(journal_step_count(back), ==, 2);
    s = journal_step_action(back, 0);
    g_assert_cmpstr(s, ==, "commit");
    g_clear_pointer(&s, g_free);
    got = journal_step_args(back, 0);
    g_assert_cmpuint(g_strv_length(got), ==, 3);
    g_assert_cmpstr(got[1], ==, "/img/base;x,y.qcow2");
    g_assert_true(journal_step_done(back, 0));
    g_assert_false(journal_step_done(back, 1));
    g_clear_pointer(&got, g_strfreev);
    got = journal_step_args(back, 1);
    g_assert_cmpuint(g_strv_length(got), ==, 0);

    g_assert_true(journal_remove(back, &error));
    g_assert_true(journal_remove(back, &error));   /* gone already: fine */
    g_assert_no_error(error);
    g_assert_null(journal_load(path, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_rmdir(jdir);
    g_rmdir(dir);
}

static void
test_foreign(void)
{
    g_autofree char *dir = g_dir_make_tmp("journal-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "x", NULL);
    g_autoptr(GError) error = NULL;

    g_assert_true(g_file_set_contents(path, "<domainsnapshot/>\n", -1, NULL));
    g_assert_null(journal_load(path, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    g_clear_error(&error);
    g_assert_true(g_file_set_contents(path, "[other]\nkey=1\n", -1, NULL));
    g_assert_null(journal_load(path, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    g_unlink(path);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/journal/round-trip", test_round_trip);
    g_test_add_func("/journal/foreign", test_foreign);
    return g_test_run();
}
