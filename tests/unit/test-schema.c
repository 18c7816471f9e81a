/* test-schema.c: every xml2xml output validates against libvirt's RNG; known-bad inputs do not. */
#include <glib.h>
#include <string.h>

#include "error.h"
#include "xmlutil.h"

/* The schema for a file name by its prefix, NULL when none applies. */
static const char *
test_schema_for(const char *file, const char **name)
{
    static const struct {
        const char *prefix;
        const char *rng;
    } map[] = {
        { "domain-", "domain.rng" },
        { "snapshot-", "domainsnapshot.rng" },
        { "backup-", "domainbackup.rng" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(map); i++) {
        if (g_str_has_prefix(file, map[i].prefix)) {
            if (name)
                *name = file + strlen(map[i].prefix);
            return map[i].rng;
        }
    }
    return NULL;
}

/* Validates @path against its prefix's schema; returns the error, if any. */
static GError *
test_schema_validate(const char *path)
{
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *rng = NULL;
    g_autofree char *buf = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    GError *error = NULL;
    gsize len = 0;
    const char *schema = test_schema_for(base, NULL);

    g_assert_nonnull(schema);
    rng = g_build_filename(xmlutil_schema_dir(), schema, NULL);
    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    if (!(doc = xmlutil_read(buf, len, NULL, &error)))
        return error;
    xmlutil_validate_rng(doc, rng, &error);
    return error;
}

static void
test_schema_valid(gconstpointer data)
{
    g_autoptr(GError) error = test_schema_validate(data);

    /* g_test_fail() rather than an abort: every other file still gets checked */
    if (error) {
        g_test_message("%s: %s", (const char *)data, error->message);
        g_test_fail();
    }
}

static void
test_schema_invalid(gconstpointer data)
{
    g_autoptr(GError) error = test_schema_validate(data);
    g_autofree char *base = g_path_get_basename(data);
    g_autofree char *prefix = g_strdup_printf("XML document failed to validate against schema: "
                                              "Unable to validate doc against %s/%s\n",
                                              xmlutil_schema_dir(),
                                              test_schema_for(base, NULL));

    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_test_message("%s", error->message);
    g_assert_true(g_str_has_prefix(error->message, prefix));
    /* libxml2's reason follows the schema path */
    g_assert_cmpuint(strlen(error->message), >, strlen(prefix));
}

/* The schemas must be installed (package libvirt0): a missing directory fails. */
static void
test_schema_dir_present(void)
{
    const char *files[] = { "domain.rng", "domainsnapshot.rng", "domainbackup.rng" };

    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(xmlutil_schema_dir(), files[i], NULL);

        if (!g_file_test(path, G_FILE_TEST_IS_REGULAR)) {
            g_test_message("missing %s: install libvirt0 or set SNAPFS_SCHEMA_DIR", path);
            g_test_fail();
        }
    }
}

/* g_ptr_array_sort() passes pointers to the elements. */
static int
test_schema_cmp(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

/* Adds one case per file of tests/data/@subdir that should pass (or with
 * @invalid, fail) validation, in name order. */
static guint
test_schema_add_dir(const char *subdir, gboolean invalid)
{
    g_autofree char *dir = g_test_build_filename(G_TEST_DIST, "data", subdir, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *ent;
    guint n = 0;

    g_assert_nonnull(d);
    while ((ent = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(ent));
    g_ptr_array_sort(names, test_schema_cmp);
    for (guint i = 0; i < names->len; i++) {
        const char *f = names->pdata[i];
        const char *name = NULL;
        g_autofree char *tpath = NULL;
        gboolean bad;

        if (!test_schema_for(f, &name))
            continue;
        if (g_str_equal(subdir, "xml2xml")) {
            /* xml2xml outputs; norng-* pin libvirt behaviour the RNG does not allow */
            if (!g_str_has_suffix(f, ".out.xml") || g_str_has_prefix(name, "norng-"))
                continue;
            bad = FALSE;
        } else {
            /* schema/: PREFIX-invalid-*.xml must fail, PREFIX-valid-*.xml (their
             * twins, proving the fixtures fail for the intended reason) must pass */
            if (!g_str_has_suffix(f, ".xml"))
                continue;
            bad = g_str_has_prefix(name, "invalid");
            if (!bad && !g_str_has_prefix(name, "valid"))
                continue;
        }
        if (bad != invalid)
            continue;
        tpath = g_strdup_printf("/schema/%s/%s", invalid ? "invalid" : "valid", f);
        g_test_add_data_func_full(tpath, g_build_filename(dir, f, NULL),
                                  invalid ? test_schema_invalid : test_schema_valid, g_free);
        n++;
    }
    return n;
}

int
main(int argc, char **argv)
{
    guint valid;
    guint invalid;

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/schema/dir", test_schema_dir_present);
    valid = test_schema_add_dir("xml2xml", FALSE);
    valid += test_schema_add_dir("schema", FALSE);
    invalid = test_schema_add_dir("schema", TRUE);
    g_assert_cmpuint(valid, >=, 1);
    g_assert_cmpuint(invalid, >=, 8);
    return g_test_run();
}
