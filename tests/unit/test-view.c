/* test-view.c: the mounted tree without FUSE: every node kind's lookup, listing,
 * attributes and content over a store made by scripts/mkstore.sh, sizes that match
 * contents everywhere, a change seen with a new version; and the control
 * protocol (tree/ctl.c): payloads completed across writes, parsed once, refused whole. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "ctl.h"
#include "error.h"
#include "files.h"
#include "view.h"
#include "viewpath.h"

static char *store_dir;   /* made once by scripts/mkstore.sh */

typedef struct {
    Backend *backend;
    View *view;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    f->backend = files_backend_new(&(FilesOptions){ .root = store_dir }, &error);
    g_assert_no_error(error);
    f->view = view_new(f->backend, TRUE);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    view_free(f->view);
    backend_free(f->backend);
}

/* The names in directory @path, sorted and joined by spaces. */
static char *
names_at(View *view, const char *path)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ents = view_readdir(view, node, &error);
    g_autoptr(GPtrArray) names = g_ptr_array_new();

    g_assert_no_error(error);
    for (guint i = 0; i < ents->len; i++)
        g_ptr_array_add(names, ((ViewDirent *)ents->pdata[i])->name);
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static mode_t
mode_at(View *view, const char *path)
{
    return stat_at(view, path).st_mode;
}

static void
assert_missing(View *view, const char *dir, const char *name)
{
    g_autoptr(ViewNode) parent = node_at(view, dir);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = view_lookup(view, parent, name, &error);

    g_assert_null(node);
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

/* libvirt's file without its warning header and <active>: what snapshot.xml shows. */
static char *
snapshot_file_shown(const char *dom, const char *snap)
{
    g_autofree char *name = g_strdup_printf("%s.xml", snap);
    g_autofree char *path = g_build_filename(store_dir, "qemu", "snapshot", dom, name, NULL);
    g_autofree char *contents = NULL;
    g_auto(GStrv) lines = NULL;
    GString *out = g_string_new(NULL);

    g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
    lines = g_strsplit(contents, "\n", -1);
    for (guint i = 7; lines[i]; i++) {
        if (g_str_has_prefix(lines[i], "  <active>"))
            continue;
        g_string_append(out, lines[i]);
        if (lines[i + 1])
            g_string_append_c(out, '\n');
    }
    return g_string_free(out, FALSE);
}

static void
test_domains(Fixture *f, gconstpointer data)
{
    g_autofree char *top = names_at(f->view, "");
    g_autofree char *db = names_at(f->view, "db");
    g_autofree char *uuid = text_at(f->view, "db/uuid");
    g_autofree char *dom = text_at(f->view, "web/domain.xml");
    g_autofree char *secure = text_at(f->view, "web/domain.secure.xml");
    g_autofree char *current = link_at(f->view, "db/current");

    g_assert_cmpstr(top, ==, "ctl db legacy web");
    g_assert_true(S_ISDIR(mode_at(f->view, "db")));
    g_assert_nonnull(strstr(db, "current"));
    g_assert_nonnull(strstr(db, "domain.secure.xml domain.xml"));
    g_assert_nonnull(strstr(db, "snapshots snapshots.tsv"));
    g_assert_true(g_regex_match_simple("^[0-9a-f-]{36}\n$", uuid, 0, 0));
    /* The VNC password only in the secure definition, which only its owner reads. */
    g_assert_null(strstr(dom, "passwd="));
    g_assert_nonnull(strstr(secure, "passwd="));
    g_assert_cmpint(mode_at(f->view, "web/domain.secure.xml") & 0777, ==, 0400);
    g_assert_cmpstr(current, ==, "snapshots/s8");
    assert_missing(f->view, "legacy", "current");   /* no snapshots: no current */
    assert_missing(f->view, "", "nosuch");
}

static void
test_snapshots(Fixture *f, gconstpointer data)
{
    g_autofree char *snaps = names_at(f->view, "db/snapshots");
    g_autofree char *children = names_at(f->view, "db/snapshots/s2/children");
    g_autofree char *parent = link_at(f->view, "db/snapshots/s2/parent");
    g_autofree char *child = link_at(f->view, "db/snapshots/s2/children/s4");
    g_autofree char *xml = text_at(f->view, "db/snapshots/s2/snapshot.xml");
    g_autofree char *want = snapshot_file_shown("db", "s2");
    g_autofree char *tsv = text_at(f->view, "db/snapshots.tsv");
    g_autofree char *ctime = text_at(f->view, "db/snapshots/s2/creationTime");
    g_auto(GStrv) rows = g_strsplit(tsv, "\n", -1);

    g_assert_cmpstr(snaps, ==, "s1 s2 s3 s4 s5 s6 s7 s8");
    g_assert_cmpstr(children, ==, "s3 s4");
    g_assert_cmpstr(parent, ==, "../s1");
    g_assert_cmpstr(child, ==, "../../s4");
    assert_missing(f->view, "db/snapshots/s1", "parent");   /* the root */
    g_assert_cmpstr(xml, ==, want);
    g_assert_true(g_regex_match_simple("^[0-9]+\n$", ctime, 0, 0));
    g_assert_cmpuint(g_strv_length(rows), ==, 8 + 1);       /* a newline after each row */
    g_assert_true(S_ISLNK(mode_at(f->view, "db/snapshots/s2/parent")));
}

static void
test_disks(Fixture *f, gconstpointer data)
{
    g_autofree char *disks = names_at(f->view, "web/disks");
    g_autofree char *vda = names_at(f->view, "web/disks/vda");
    g_autofree char *backing = link_at(f->view, "web/disks/vda/backing");
    g_autofree char *format = text_at(f->view, "web/disks/vda/format");
    g_autofree char *base = text_at(f->view, "web/disks/vda[2]/format");
    g_autofree char *xml = text_at(f->view, "web/disks/vda.xml");
    g_autofree char *snapdisks = names_at(f->view, "db/snapshots/s2/disks");

    g_assert_cmpstr(disks, ==, "vda vda.xml vda[1] vda[2] vdb vdb.xml vdb[1]");
    g_assert_cmpstr(vda, ==, "backing data files format info partitions.tsv source type");
    g_assert_cmpstr(backing, ==, "../vda[1]");
    g_assert_cmpstr(format, ==, "qcow2\n");
    g_assert_cmpstr(base, ==, "raw\n");
    assert_missing(f->view, "web/disks/vda[2]", "backing");   /* the end of the chain */
    g_assert_true(g_str_has_prefix(xml, "<disk "));
    g_assert_cmpstr(snapdisks, ==, "vda vda.xml vda[1]");
    {
        /* Blank images: no partitions, no filesystems. */
        g_autofree char *tsv = text_at(f->view, "web/disks/vda/partitions.tsv");
        g_autofree char *files = names_at(f->view, "web/disks/vda/files");

        g_assert_cmpstr(tsv ? tsv : "", ==, "");   /* empty bytes: no data pointer */
        g_assert_cmpstr(files, ==, "");
    }
}

static void
test_data(Fixture *f, gconstpointer data)
{
    g_autoptr(ViewNode) node = node_at(f->view, "web/disks/vda/data");
    g_autoptr(GError) error = NULL;
    guint64 version = 0;
    Image *img = view_open_data(f->view, node, &version, &error);
    struct stat st;

    g_assert_no_error(error);
    g_assert_nonnull(img);
    g_assert_true(view_stat(f->view, node, &st, &error));
    g_assert_cmpuint(image_size(img), ==, (guint64)st.st_size);
    g_assert_cmpuint(version, !=, 0);
    image_close(img);
}

static void
test_ctl(Fixture *f, gconstpointer data)
{
    g_autofree char *top = names_at(f->view, "ctl");
    g_autofree char *dom = names_at(f->view, "db/ctl");
    g_autofree char *result = NULL;

    g_assert_cmpstr(top, ==, "define result undefine");
    g_assert_nonnull(strstr(dom, "create"));
    g_assert_nonnull(strstr(dom, "genid"));
    g_assert_cmpint(mode_at(f->view, "db/ctl/create"), ==, S_IFREG | 0200);
    view_set_result(f->view, "db", FALSE, "no such snapshot");
    result = text_at(f->view, "db/ctl/result");
    g_assert_nonnull(strstr(result, "no such snapshot"));
}

static void
test_templink(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *target = NULL;
    g_autofree char *taken = NULL;

    g_assert_true(view_templink_add(f->view, "db", "cur.tmp", "snapshots/s3", &error));
    g_assert_no_error(error);
    target = link_at(f->view, "db/cur.tmp");
    g_assert_cmpstr(target, ==, "snapshots/s3");
    g_assert_false(view_templink_add(f->view, "db", "cur.tmp", "snapshots/s4", &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST);
    taken = view_templink_take(f->view, "db", "cur.tmp");
    g_assert_cmpstr(taken, ==, "snapshots/s3");
    assert_missing(f->view, "db", "cur.tmp");
}

static void
test_sizes(Fixture *f, gconstpointer data)
{
    ViewNode root = { VIEW_ROOT, NULL, NULL, NULL, NULL };
    guint files = 0;

    walk_tree(f->view, &root, &files);
    g_assert_cmpuint(files, >, 100);
}

/* A change of a snapshot file gives its texts a new version and size, and the new bytes;
 * stat gives the version of the text whose size it gives, and none for other nodes. */
static void
test_version_changes(Fixture *f, gconstpointer data)
{
    g_autofree char *path = g_build_filename(store_dir, "qemu", "snapshot", "db", "s3.xml",
                                             NULL);
    g_autofree char *tmp = g_strconcat(path, ".new", NULL);
    g_autofree char *orig = NULL;
    g_autofree char *changed = NULL;
    g_auto(GStrv) halves = NULL;
    g_autoptr(ViewNode) node = node_at(f->view, "db/snapshots/s3/description");
    g_autoptr(GBytes) made = NULL;
    g_autoptr(GBytes) now = NULL;
    g_autoptr(GError) error = NULL;
    guint64 version, size, now_version = 0, now_size = 0, stat_version = 0;
    const char *unversioned[] = { "db", "db/disks/vda/data", "db/ctl/result", "db/current" };
    struct stat st;

    g_assert_true(view_content_version(f->view, node, &version, &size, &made, &error));
    g_assert_no_error(error);
    /* stat gives the same version, from the same load as the size */
    g_assert_true(view_content_fixed(node));
    g_assert_true(view_stat_version(f->view, node, &st, &stat_version, &error));
    g_assert_cmpuint(stat_version, ==, version);
    g_assert_cmpuint(st.st_size, ==, size);
    for (guint i = 0; i < G_N_ELEMENTS(unversioned); i++) {
        g_autoptr(ViewNode) other = node_at(f->view, unversioned[i]);

        g_assert_false(view_content_fixed(other));
        g_assert_true(view_stat_version(f->view, other, &st, &stat_version, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(stat_version, ==, 0);
    }
    g_assert_true(g_file_get_contents(path, &orig, NULL, NULL));
    halves = g_strsplit(orig, "<state>", 2);
    changed = g_strconcat(halves[0], "<description>changed since</description>\n  <state>",
                          halves[1], NULL);
    g_assert_true(g_file_set_contents(tmp, changed, -1, NULL));
    g_assert_cmpint(g_rename(tmp, path), ==, 0);
    view_invalidate(f->view, "db");

    g_clear_pointer(&made, g_bytes_unref);
    g_assert_true(view_content_version(f->view, node, &now_version, &now_size, &made, &error));
    g_assert_cmpuint(now_version, !=, version);
    g_assert_cmpuint(now_size, ==, strlen("changed since\n"));
    now = view_read_content(f->view, node, &version, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(version, ==, now_version);
    g_assert_cmpmem(g_bytes_get_data(now, NULL), g_bytes_get_size(now),
                    "changed since\n", strlen("changed since\n"));
    g_assert_true(view_stat_version(f->view, node, &st, &stat_version, &error));
    g_assert_cmpuint(stat_version, ==, now_version);
    g_assert_cmpuint(st.st_size, ==, now_size);

    g_assert_true(g_file_set_contents(tmp, orig, -1, NULL));
    g_assert_cmpint(g_rename(tmp, path), ==, 0);
    view_invalidate(f->view, "db");
}

/* Writes @parts in turn at growing offsets to control file @path; the result of the last. */
static gboolean
ctl_write_parts(View *view, const char *path, const char *const *parts, gboolean *changed,
                GError **error)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(CtlWriter) w = ctl_writer_new(node);
    guint64 off = 0;
    gboolean ok = TRUE;

    *changed = FALSE;
    for (guint i = 0; parts[i] && ok; i++) {
        gboolean c = FALSE;

        ok = ctl_writer_write(w, view, parts[i], strlen(parts[i]), off, &c, error);
        *changed |= c;
        off += strlen(parts[i]);
    }
    if (ok) {
        gboolean c = FALSE;

        ok = ctl_writer_flush(w, view, TRUE, &c, error);
        *changed |= c;
    }
    return ok;
}

static void
test_ctl_refused(Fixture *f, gconstpointer data)
{
    static const struct {
        const char *payload;
        const char *message;
    } cases[] = {
        { "s1 --bogus\n", "unknown option '--bogus'" },
        { "s1 s2\n", "expected one snapshot name, got 's1' and 's2'" },
        { "--children\n\n", "expected the snapshot name alone on the line after the options" },
        { "--metadata", "missing snapshot name" },   /* applied at the close */
    };
    g_autofree char *before = names_at(f->view, "db/snapshots");

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *parts[] = { cases[i].payload, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *result = NULL;
        g_autofree char *after = NULL;
        gboolean changed;

        g_assert_false(ctl_write_parts(f->view, "db/ctl/delete", parts, &changed, &error));
        g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
        g_assert_nonnull(strstr(error->message, cases[i].message));
        g_assert_false(changed);
        result = text_at(f->view, "db/ctl/result");
        g_assert_nonnull(strstr(result, cases[i].message));
        after = names_at(f->view, "db/snapshots");
        g_assert_cmpstr(after, ==, before);
    }
}

static void
test_ctl_framing(Fixture *f, gconstpointer data)
{
    g_autofree char *genid0 = text_at(f->view, "web/genid");
    g_autofree char *genid1 = NULL;
    g_autofree char *genid2 = NULL;
    g_autofree char *s3 = NULL;
    g_autofree char *doc = NULL;
    g_autofree char *snaps = NULL;
    g_autoptr(GError) error = NULL;
    gboolean changed;

    /* A bare value split across two writes applies at its newline. */
    g_assert_true(ctl_write_parts(f->view, "web/ctl/genid", (const char *[]){ "ne", "w\n", NULL },
                                  &changed, &error));
    g_assert_no_error(error);
    g_assert_true(changed);
    view_invalidate(f->view, "web");
    genid1 = text_at(f->view, "web/genid");
    g_assert_cmpstr(genid1, !=, genid0);
    /* Without a newline it applies at the close. */
    g_assert_true(ctl_write_parts(f->view, "web/ctl/genid", (const char *[]){ "new", NULL },
                                  &changed, &error));
    g_assert_true(changed);
    view_invalidate(f->view, "web");
    genid2 = text_at(f->view, "web/genid");
    g_assert_cmpstr(genid2, !=, genid1);

    /* An XML document applies when its root element closes, not before. */
    s3 = text_at(f->view, "db/snapshots/s3/snapshot.secure.xml");
    {
        g_auto(GStrv) halves = g_strsplit(s3, "<name>s3</name>", 2);

        doc = g_strconcat(halves[0], "<name>r1</name>", halves[1], NULL);
    }
    {
        g_autofree char *head = g_strndup(doc, strlen(doc) / 2);
        const char *parts[] = { head, doc + strlen(doc) / 2, NULL };

        g_assert_true(ctl_write_parts(f->view, "db/ctl/redefine", parts, &changed, &error));
        g_assert_no_error(error);
        g_assert_true(changed);
    }
    view_invalidate(f->view, "db");
    snaps = names_at(f->view, "db/snapshots");
    g_assert_cmpstr(snaps, ==, "r1 s1 s2 s3 s4 s5 s6 s7 s8");
    g_assert_true(ctl_write_parts(f->view, "db/ctl/delete", (const char *[]){ "r1 --metadata\n", NULL },
                                  &changed, &error));
    g_assert_no_error(error);
}

static void
test_ctl_too_big(Fixture *f, gconstpointer data)
{
    g_autofree char *big = g_strnfill(CTL_MAX_PAYLOAD + 1, 'x');
    const char *parts[] = { big, NULL };
    g_autoptr(GError) error = NULL;
    gboolean changed;

    g_assert_false(ctl_write_parts(f->view, "db/ctl/genid", parts, &changed, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG);
    g_assert_false(changed);
}

int
main(int argc, char **argv)
{
    const char *srcdir = g_getenv("SNAPFS_SRCDIR");
    g_autofree char *mkstore = NULL;
    g_autofree char *cmd = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;
    int rc;

    g_test_init(&argc, &argv, NULL);
    g_assert_nonnull(srcdir);
    store_dir = g_dir_make_tmp("snapfs-view-XXXXXX", NULL);
    g_assert_nonnull(store_dir);
    mkstore = g_build_filename(srcdir, "scripts", "mkstore.sh", NULL);
    cmd = g_strdup_printf("'%s' '%s/s' 16", mkstore, store_dir);
    /* its output is kept out of the TAP stream */
    g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, NULL));
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    {
        char *s = g_build_filename(store_dir, "s", NULL);

        g_free(store_dir);
        store_dir = s;
    }

#define ADD(name, fn) \
    g_test_add(name, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    ADD("/view/domains", test_domains);
    ADD("/view/snapshots", test_snapshots);
    ADD("/view/disks", test_disks);
    ADD("/view/data", test_data);
    ADD("/view/ctl", test_ctl);
    ADD("/view/templink", test_templink);
    ADD("/view/sizes", test_sizes);
    ADD("/view/version-changes", test_version_changes);
    ADD("/ctl/refused", test_ctl_refused);
    ADD("/ctl/framing", test_ctl_framing);
    ADD("/ctl/too-big", test_ctl_too_big);
    rc = g_test_run();
    {
        g_autofree char *parent = g_path_get_dirname(store_dir);
        g_autofree char *rm = g_strdup_printf("rm -rf '%s'", parent);

        g_spawn_command_line_sync(rm, NULL, NULL, NULL, NULL);
    }
    g_free(store_dir);
    return rc;
}
