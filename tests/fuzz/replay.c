/* replay.c: a normal-build main() for the fuzz targets: feeds every file of the given files or
 * directories (the seed corpus) to LLVMFuzzerTestOneInput once. */
#include "fuzz.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

static guint replay_count;

static gint
replay_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static void
replay_path(const char *path)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *buf = NULL;
    gsize len;

    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_autoptr(GDir) dir = g_dir_open(path, 0, &err);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        if (!dir)
            g_error("%s", err->message);
        while ((name = g_dir_read_name(dir)))
            g_ptr_array_add(names, g_build_filename(path, name, NULL));
        g_ptr_array_sort(names, replay_cmp);
        for (guint i = 0; i < names->len; i++)
            replay_path(g_ptr_array_index(names, i));
        return;
    }
    if (!g_file_get_contents(path, &buf, &len, &err))
        g_error("%s", err->message);
    LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
    replay_count++;
}

int
main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        replay_path(argv[i]);
    if (replay_count == 0) {
        fprintf(stderr, "no corpus files given\n");
        return 1;
    }
    printf("replayed %u inputs\n", replay_count);
    return 0;
}
