/* xml2xml.h: the xml2xml convention shared by the XML unit tests (header-only).
 *
 * tests/data/xml2xml/PREFIX-NAME.in.xml + PREFIX-NAME.out.xml: parse(in) -> format
 * must equal out, and parse(out) -> format must equal out again.
 * tests/data/xml2xml/invalid-PREFIX-NAME.xml + invalid-PREFIX-NAME.err: parsing must
 * fail and the error message must equal the .err file's first line.
 * REGENERATE=1 rewrites .out.xml and .err files (read that diff before committing). */
#pragma once

#include <glib.h>
#include <string.h>

/* Parses @buf and formats it (owned), or returns NULL and sets @error. @name is
 * the case name (without prefix), so a callback can pick flags from it. */
typedef char *(*Xml2XmlFunc)(const char *name, const char *buf, gsize len, GError **error);

typedef struct {
    char *in;
    char *out;
    char *name;
    Xml2XmlFunc func;
    gboolean invalid;
} Xml2XmlCase;

static void
xml2xml_case_free(gpointer data)
{
    Xml2XmlCase *c = data;

    g_free(c->in);
    g_free(c->out);
    g_free(c->name);
    g_free(c);
}

static int
xml2xml_strcmp_deref(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(const char *const *)a, *(const char *const *)b);
}

static void
xml2xml_run_case(gconstpointer data)
{
    const Xml2XmlCase *c = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *in = NULL;
    g_autofree char *expect = NULL;
    g_autofree char *got = NULL;
    gsize len = 0;
    gboolean regen = g_strcmp0(g_getenv("REGENERATE"), "1") == 0;

    g_assert_true(g_file_get_contents(c->in, &in, &len, NULL));
    got = c->func(c->name, in, len, &error);
    if (c->invalid) {
        g_autofree char *first = NULL;

        g_assert_null(got);
        g_assert_nonnull(error);
        if (regen) {
            g_autofree char *line = g_strconcat(error->message, "\n", NULL);
            g_assert_true(g_file_set_contents(c->out, line, -1, NULL));
        }
        g_assert_true(g_file_get_contents(c->out, &expect, NULL, NULL));
        first = g_strndup(expect, strcspn(expect, "\n"));
        g_assert_cmpstr(error->message, ==, first);
        return;
    }
    g_assert_no_error(error);
    g_assert_nonnull(got);
    if (regen)
        g_assert_true(g_file_set_contents(c->out, got, -1, NULL));
    g_assert_true(g_file_get_contents(c->out, &expect, NULL, NULL));
    g_assert_cmpstr(got, ==, expect);
    /* The output is a fixed point. */
    g_clear_pointer(&got, g_free);
    got = c->func(c->name, expect, strlen(expect), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(got, ==, expect);
}

/* Registers one GTest case per file pair with PREFIX ("domain", "snapshot", ...):
 * /xml2xml/PREFIX/NAME and /xml2xml/invalid-PREFIX/NAME. Returns how many. */
static guint
xml2xml_add_cases(const char *prefix, Xml2XmlFunc func)
{
    g_autofree char *dir = g_test_build_filename(G_TEST_DIST, "data", "xml2xml", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autofree char *pfx = g_strconcat(prefix, "-", NULL);
    g_autofree char *ipfx = g_strconcat("invalid-", prefix, "-", NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *ent;
    guint n = 0;

    g_assert_nonnull(d);
    while ((ent = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(ent));
    g_ptr_array_sort(names, xml2xml_strcmp_deref);
    for (guint i = 0; i < names->len; i++) {
        const char *f = names->pdata[i];
        Xml2XmlCase *c = NULL;
        g_autofree char *path = NULL;

        if (g_str_has_prefix(f, pfx) && g_str_has_suffix(f, ".in.xml")) {
            c = g_new0(Xml2XmlCase, 1);
            c->name = g_strndup(f + strlen(pfx), strlen(f) - strlen(pfx) - strlen(".in.xml"));
            c->in = g_build_filename(dir, f, NULL);
            c->out = g_strndup(c->in, strlen(c->in) - strlen(".in.xml"));
            path = g_strconcat(c->out, ".out.xml", NULL);
            g_free(c->out);
            c->out = g_steal_pointer(&path);
            path = g_strdup_printf("/xml2xml/%s/%s", prefix, c->name);
        } else if (g_str_has_prefix(f, ipfx) && g_str_has_suffix(f, ".xml")) {
            c = g_new0(Xml2XmlCase, 1);
            c->invalid = TRUE;
            c->name = g_strndup(f + strlen(ipfx), strlen(f) - strlen(ipfx) - strlen(".xml"));
            c->in = g_build_filename(dir, f, NULL);
            c->out = g_strndup(c->in, strlen(c->in) - strlen(".xml"));
            path = g_strconcat(c->out, ".err", NULL);
            g_free(c->out);
            c->out = g_steal_pointer(&path);
            path = g_strdup_printf("/xml2xml/invalid-%s/%s", prefix, c->name);
        } else {
            continue;
        }
        c->func = func;
        g_test_add_data_func_full(path, c, xml2xml_run_case, xml2xml_case_free);
        n++;
    }
    return n;
}
