/* fixtures.h: the images of scripts/mkfixtures.sh for the chain and image tests (header-only). */
#pragma once

#include <glib.h>

static char *fixdir;    /* images built by scripts/mkfixtures.sh for this run */

static char *
fix(const char *name)
{
    return g_build_filename(fixdir, name, NULL);
}

/* Runs @argv in the fixture directory: qemu-img 7.2 opens relative data file
 * names from its working directory. */
static void
run_cmd(const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(fixdir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, &err, &status, &error))
        g_error("cannot run %s: %s", argv[0], error->message);
    if (!g_spawn_check_wait_status(status, &error))
        g_error("%s failed: %s\n%s", argv[0], error->message, err);
}

static void
fixtures_setup(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *rel = g_test_build_filename(G_TEST_DIST, "..", "scripts", "mkfixtures.sh",
                                                 NULL);
    g_autofree char *script = g_canonicalize_filename(rel, NULL);   /* run from fixdir */
    const char *argv[] = { "sh", script, NULL, NULL };

    fixdir = g_dir_make_tmp("snapfs-images-XXXXXX", &error);
    g_assert_no_error(error);
    argv[2] = fixdir;
    run_cmd(argv);
}

static void
fixtures_teardown(void)
{
    const char *argv[] = { "rm", "-rf", fixdir, NULL };

    run_cmd(argv);
    g_free(fixdir);
}

static StorageSource *
src_file(const char *name, const char *format)
{
    StorageSource *src = storage_source_new();

    src->type = STORAGE_TYPE_FILE;
    src->path = fix(name);
    src->format = g_strdup(format);
    return src;
}

static Chain *
resolve(const char *name, const char *format)
{
    g_autoptr(StorageSource) src = src_file(name, format);

    return chain_resolve(src, "vda");
}

static ChainLayer *
layer_at(const Chain *chain, guint i)
{
    g_assert_cmpuint(i, <, chain->layers->len);
    return g_ptr_array_index(chain->layers, i);
