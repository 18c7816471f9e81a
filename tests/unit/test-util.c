/* test-util.c: UUID parsing as libvirt's virUUIDParse, atomic writes. */
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "util.h"
#include "xmlutil.h"

#include <string.h>

static void
test_uuid_liberal(void)
{
    guint8 u[UTIL_UUID_LEN];
    char s[UTIL_UUID_STRLEN + 1];

    g_assert_true(util_uuid_parse("  C7A5FDBD-EDAF-9455-926A-D65C16DB1809 \n", u));
    util_uuid_format(u, s);
    g_assert_cmpstr(s, ==, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    g_assert_true(util_uuid_parse("c7a5fdbdedaf9455926ad65c16db1809", u));
    g_assert_true(util_uuid_parse("c7 a5 fd bd ed af 94 55 92 6a d6 5c 16 db 18 09", u));
    util_uuid_format(u, s);
    g_assert_cmpstr(s, ==, "c7a5fdbd-edaf-9455-926a-d65c16db1809");
    g_assert_false(util_uuid_parse("c7a5fdbd-edaf-9455-926a-d65c16db180", u));
    g_assert_false(util_uuid_parse("c7a5fdbd-edaf-9455-926a-d65c16db18090", u));
    g_assert_false(util_uuid_parse("c7a5fdbd-edaf-9455-926a-d65c16db180g", u));
    g_assert_false(util_uuid_parse("", u));
    g_assert_false(util_uuid_parse("c-7a5fdbdedaf9455926ad65c16db1809", u));
}

static void
test_uuid_v4(void)
{
    guint8 u[UTIL_UUID_LEN];

    for (int i = 0; i < 100; i++) {
        util_uuid_generate(u);
        g_assert_cmpint(u[6] >> 4, ==, 4);
        g_assert_cmpint(u[8] >> 6, ==, 2);
    }
}

static void
test_atomic_write(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("snapfs-util-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "f.xml", NULL);
    g_autofree char *tmp = g_strconcat(path, ".new", NULL);
    g_autofree char *got = NULL;
    gsize len;
    struct stat st;

    g_assert_true(util_file_write_atomic(path, "old", 3, 0600, &error));
    g_assert_no_error(error);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
    /* A crash between write and rename leaves PATH.new and the old PATH intact. */
    g_assert_true(g_file_set_contents(tmp, "half", -1, NULL));
    g_assert_true(util_file_read_limited(path, 100, &got, &len, &error));
    g_assert_cmpstr(got, ==, "old");
    g_clear_pointer(&got, g_free);
    g_assert_true(util_file_write_atomic(path, "new", 3, 0600, &error));
    g_assert_true(util_file_read_limited(path, 100, &got, &len, &error));
    g_assert_cmpstr(got, ==, "new");
    g_clear_pointer(&got, g_free);
    g_assert_false(util_file_read_limited(path, 2, &got, &len, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG);
    g_clear_error(&error);
    /* Writing into a missing directory fails and creates nothing. */
    g_autofree char *bad = g_build_filename(dir, "nodir", "x.xml", NULL);
    g_assert_false(util_file_write_atomic(bad, "x", 1, 0600, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_unlink(path);
    g_rmdir(dir);
}

static void
test_xml_safe(void)
{
    g_autoptr(GError) error = NULL;
    const char *xxe = "<?xml version='1.0'?><!DOCTYPE d [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>"
                      "<domain>&x;</domain>";
    const char *ok = "<domain type='kvm'><name>a&amp;b</name><x a=\"q'&quot;\"/></domain>";
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(GString) out = g_string_new(NULL);
    GString *deep = g_string_new(NULL);

    g_assert_null(xmlutil_read(xxe, strlen(xxe), "domain", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_clear_error(&error);
    g_assert_null(xmlutil_read("<domain>", 8, "domain", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_clear_error(&error);
    g_assert_null(xmlutil_read(ok, strlen(ok), "domainsnapshot", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_assert_cmpstr(error->message, ==, "unexpected root element <domain>, expecting <domainsnapshot>");
    g_clear_error(&error);
    for (int i = 0; i < 10000; i++)
        g_string_append(deep, "<a>");
    g_assert_null(xmlutil_read(deep->str, deep->len, NULL, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_clear_error(&error);
    g_string_free(deep, TRUE);

    doc = xmlutil_read(ok, strlen(ok), "domain", &error);
    g_assert_no_error(error);
    xmlutil_format_node(out, xmlDocGetRootElement(doc), 0);
    g_assert_cmpstr(out->str, ==,
                    "<domain type='kvm'>\n  <name>a&amp;b</name>\n  <x a='q&apos;&quot;'/>\n</domain>\n");
}

/* Outside paths: a directory named as the snapfs mountpoint (no mount needed: the check is on
 * the name in its holding directory) is never entered, however a path reaches it; only regular
 * files and block devices open; a FIFO is refused without waiting for a writer. */
static void
test_paths(void)
{
    g_autofree char *dir = g_dir_make_tmp("snapfs-paths-XXXXXX", NULL);
    g_autofree char *mnt = g_build_filename(dir, "mnt", NULL);
    g_autofree char *inside = g_build_filename(mnt, "img", NULL);
    g_autofree char *out = g_build_filename(dir, "img", NULL);
    g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
    g_autofree char *link = g_build_filename(dir, "link", NULL);
    g_autofree char *dirlink = g_build_filename(dir, "dirlink", NULL);
    g_autofree char *via_link = g_build_filename(dir, "dirlink", "img", NULL);
    g_autofree char *x = g_build_filename(dir, "x", NULL);
    g_autofree char *via_dots = g_strdup_printf("%s/./x/../mnt/img", dir);
    g_autofree char *created = g_build_filename(dir, "new", NULL);
    g_autofree char *created_in = g_build_filename(mnt, "new", NULL);
    const char *refused[] = { inside, link, via_link, via_dots, mnt };
    GError *error = NULL;
    struct stat st;
    int fd;

    g_assert_nonnull(dir);
    g_assert_cmpint(g_mkdir(mnt, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(x, 0700), ==, 0);
    g_assert_true(g_file_set_contents(inside, "in", -1, NULL));
    g_assert_true(g_file_set_contents(out, "out", -1, NULL));
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_cmpint(symlink(inside, link), ==, 0);
    g_assert_cmpint(symlink("mnt", dirlink), ==, 0);
    g_assert_true(util_guard_mount(mnt, &error));
    g_assert_no_error(error);

    for (guint i = 0; i < G_N_ELEMENTS(refused); i++) {
        g_assert_false(util_path_stat(refused[i], FALSE, &st, &error));
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ACCES);
        g_assert_nonnull(strstr(error->message, "inside the snapfs mount"));
        g_clear_error(&error);
        g_assert_false(util_path_outside(refused[i], &error));
        g_clear_error(&error);
        g_assert_cmpint(util_image_open(refused[i], O_RDONLY, NULL, &error), ==, -1);
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ACCES);
        g_clear_error(&error);
    }
    g_assert_cmpint(util_image_create(created_in, O_WRONLY, 0600, &error), ==, -1);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ACCES);
    g_clear_error(&error);
    g_assert_false(g_file_test(created_in, G_FILE_TEST_EXISTS));
    /* the link itself, not followed, is outside */
    g_assert_true(util_path_stat(link, TRUE, &st, &error));
    g_assert_true(S_ISLNK(st.st_mode));
    /* a FIFO: stat is harmless, open is refused at once */
    g_assert_true(util_path_stat(fifo, FALSE, &st, &error));
    g_assert_true(S_ISFIFO(st.st_mode));
    g_assert_cmpint(util_image_open(fifo, O_RDONLY, NULL, &error), ==, -1);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "not a regular file or block device"));
    g_clear_error(&error);
    g_assert_cmpint(util_image_open(dir, O_RDONLY, NULL, &error), ==, -1);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_clear_error(&error);
    /* outside: opens, blocking again; a missing name is ENOENT; creation is exclusive */
    fd = util_image_open(out, O_RDONLY, &st, &error);
    g_assert_no_error(error);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, 0);
    g_assert_cmpint(st.st_size, ==, 3);
    close(fd);
    g_assert_true(util_path_outside(created, &error));
    g_assert_cmpint(util_image_open(created, O_RDONLY, NULL, &error), ==, -1);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    fd = util_image_create(created, O_WRONLY, 0600, &error);
    g_assert_no_error(error);
    close(fd);
    g_assert_cmpint(util_image_create(created, O_WRONLY, 0600, &error), ==, -1);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
    g_clear_error(&error);
    g_assert_cmpint(util_image_open(link, O_RDONLY | O_NOFOLLOW, NULL, &error), ==, -1);
    g_clear_error(&error);

    for (const char *const *f = (const char *const[]){ inside, out, fifo, link, dirlink, created,
                                                        NULL }; *f; f++)
        g_unlink(*f);
    g_rmdir(mnt);
    g_rmdir(x);
    g_rmdir(dir);
}

/* snapshots.tsv fields: escape and unescape are inverse; nothing else is an escape. */
static void
test_tsv_escape(void)
{
    const char *names[] = { "plain", "sp ace", "a\tb", "x\ny", "c\rr", "back\\slash", "--lead",
                            "\\t", "" };
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autoptr(GString) out = g_string_new(NULL);
        g_autofree char *back = NULL;

        util_tsv_escape(out, names[i]);
        g_assert_null(strpbrk(out->str, "\t\n\r"));
        back = util_tsv_unescape(out->str, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(back, ==, names[i]);
    }
    {
        g_autoptr(GString) out = g_string_new(NULL);

        util_tsv_escape(out, "a\tb\\c\nd");
        g_assert_cmpstr(out->str, ==, "a\\tb\\\\c\\nd");
    }
    g_assert_null(util_tsv_unescape("C:\\dir", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(util_tsv_unescape("end\\", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
}

/* libvirt's virStrToLong_ullp / _uip: whole string, base 10, no minus sign. */
static void
test_parse_unsigned(void)
{
    static const struct {
        const char *str;
        gboolean ok;
        guint64 v;
    } cases[] = {
        { "0", TRUE, 0 }, { "42", TRUE, 42 }, { " 7", TRUE, 7 }, { "+8", TRUE, 8 },
        { "065536", TRUE, 65536 }, { "4294967295", TRUE, G_MAXUINT },
        { "4294967296", TRUE, 4294967296ULL }, { "18446744073709551615", TRUE, G_MAXUINT64 },
        { "18446744073709551616", FALSE, 0 }, { "", FALSE, 0 }, { " ", FALSE, 0 },
        { "-1", FALSE, 0 }, { " -0", FALSE, 0 }, { "-", FALSE, 0 }, { "1-", FALSE, 0 },
        { "+-1", FALSE, 0 }, { "80a", FALSE, 0 }, { "1 ", FALSE, 0 }, { "0x10", FALSE, 0 },
    };

    g_assert_false(xmlutil_parse_ullp(NULL, &(guint64){ 0 }));
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        guint64 v = 99;
        guint u = 99;
        gboolean fits = cases[i].ok && cases[i].v <= G_MAXUINT;

        g_test_message("'%s'", cases[i].str);
        g_assert_cmpint(xmlutil_parse_ullp(cases[i].str, &v), ==, cases[i].ok);
        g_assert_cmpuint(v, ==, cases[i].ok ? cases[i].v : 99);
        g_assert_cmpint(xmlutil_parse_uip(cases[i].str, &u), ==, fits);
        g_assert_cmpuint(u, ==, fits ? cases[i].v : 99);
    }
}

/* libvirt's virStrToLong_ll: a sign is fine, anything after the number is not. */
static void
test_parse_signed(void)
{
    gint64 v = 5;

    g_assert_true(xmlutil_parse_ll("-12", &v));
    g_assert_cmpint(v, ==, -12);
    g_assert_true(xmlutil_parse_ll(" +3", &v));
    g_assert_cmpint(v, ==, 3);
    g_assert_true(xmlutil_parse_ll("-9223372036854775808", &v));
    g_assert_cmpint(v, ==, G_MININT64);
    v = 5;
    g_assert_false(xmlutil_parse_ll("9223372036854775808", &v));
    g_assert_false(xmlutil_parse_ll("1.5", &v));
    g_assert_false(xmlutil_parse_ll("", &v));
    g_assert_false(xmlutil_parse_ll("-", &v));
    g_assert_false(xmlutil_parse_ll(NULL, &v));
    g_assert_cmpint(v, ==, 5);
}

/* The published FNV-1a 64 test vectors; continuing a hash equals hashing at once. */
static void
test_hash_fnv1a(void)
{
    guint64 h;

    g_assert_cmphex(util_hash_fnv1a(UTIL_FNV1A_INIT, "", 0), ==, 0xcbf29ce484222325ULL);
    g_assert_cmphex(util_hash_fnv1a(UTIL_FNV1A_INIT, "a", 1), ==, 0xaf63dc4c8601ec8cULL);
    g_assert_cmphex(util_hash_fnv1a(UTIL_FNV1A_INIT, "foobar", 6), ==, 0x85944171f73967e8ULL);
    h = util_hash_fnv1a(UTIL_FNV1A_INIT, "foo", 3);
    g_assert_cmphex(util_hash_fnv1a(h, "bar", 3), ==, 0x85944171f73967e8ULL);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/util/uuid/liberal", test_uuid_liberal);
    g_test_add_func("/util/uuid/v4", test_uuid_v4);
    g_test_add_func("/util/atomic-write", test_atomic_write);
    g_test_add_func("/util/xml/safe", test_xml_safe);
    g_test_add_func("/util/paths", test_paths);
    g_test_add_func("/util/tsv-escape", test_tsv_escape);
    g_test_add_func("/util/hash-fnv1a", test_hash_fnv1a);
    g_test_add_func("/util/parse-unsigned", test_parse_unsigned);
    g_test_add_func("/util/parse-signed", test_parse_signed);
    return g_test_run();
}
