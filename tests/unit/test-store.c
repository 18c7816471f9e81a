/* test-store.c: libvirt's store layout: loading rules, exact file bytes, atomicity, lock, stamps. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "error.h"
#include "store.h"
#include "watch.h"

typedef struct {
    char *root;       /* temp STORE */
    char *snapdir;    /* STORE/qemu/snapshot/vm1 */
    char *domxml;     /* tests/data/store/vm1.xml */
    Store *store;
} Fixture;

static char *
data_file(const char *name)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "store", name, NULL);
    char *contents = NULL;

    g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
    return contents;
}

static void
write_file(const char *dir, const char *name, const char *contents)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, contents, -1, NULL));
}

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *qemu = NULL;

    f->root = g_dir_make_tmp("snapfs-store-XXXXXX", NULL);
    g_assert_nonnull(f->root);
    qemu = g_build_filename(f->root, "qemu", NULL);
    f->snapdir = g_build_filename(qemu, "snapshot", "vm1", NULL);
    g_assert_cmpint(g_mkdir_with_parents(f->snapdir, 0755), ==, 0);
    f->domxml = data_file("vm1.xml");
    write_file(qemu, "vm1.xml", f->domxml);
    f->store = store_open(f->root, NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(f->store);
}

static void
rm_rf(const char *path)
{
    g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
    const char *name;

    if (dir) {
        while ((name = g_dir_read_name(dir))) {
            g_autofree char *sub = g_build_filename(path, name, NULL);

            rm_rf(sub);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    rm_rf(f->root);
    g_free(f->root);
    g_free(f->snapdir);
    g_free(f->domxml);
    store_free(f->store);
}

/* A metadata file as libvirt writes it; @parent and @active may be NULL (absent). */
static char *
snap_xml(Fixture *f, const char *name, const char *parent, const char *active)
{
    g_autofree char *p = parent ? g_strdup_printf("  <parent>\n    <name>%s</name>\n  </parent>\n",
                                                  parent)
                                : g_strdup("");
    g_autofree char *a = active ? g_strdup_printf("  <active>%s</active>\n", active) : g_strdup("");

    return g_strdup_printf("<domainsnapshot>\n  <name>%s</name>\n  <state>shutoff</state>\n%s"
                           "  <creationTime>1700000000</creationTime>\n"
                           "  <memory snapshot='no'/>\n"
                           "  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n"
                           "%s%s</domainsnapshot>\n",
                           name, p, f->domxml, a);
}

static void
put_snap(Fixture *f, const char *file, const char *name, const char *parent, const char *active)
{
    g_autofree char *xml = snap_xml(f, name, parent, active);

    write_file(f->snapdir, file, xml);
}

static BackendDomain *
load(Fixture *f)
{
    g_autoptr(GError) error = NULL;
    BackendDomain *sd = store_load_domain(f->store, "vm1", &error);

    g_assert_no_error(error);
    g_assert_nonnull(sd);
    g_assert_cmpstr(sd->def->name, ==, "vm1");
    return sd;
}

static char *
warnings_of(BackendDomain *sd)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < sd->warnings->len; i++) {
        g_string_append(s, g_ptr_array_index(sd->warnings, i));
        g_string_append_c(s, '\n');
    }
    /* Temp paths vary: the tests name files relative to the snapshot dir. */
    return g_string_free(s, FALSE);
}

static char *
rel(Fixture *f, const char *text)
{
    g_auto(GStrv) parts = g_strsplit(text, f->snapdir, -1);

    return g_strjoinv("DIR", parts);
}

static void
test_open(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("snapfs-store-XXXXXX", NULL);
    g_autofree char *qemu = g_build_filename(tmp, "qemu", NULL);
    g_autoptr(Store) store = NULL;

    g_assert_null(store_open(tmp, NULL, NULL, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);

    g_assert_cmpint(g_mkdir(qemu, 0755), ==, 0);
    store = store_open(tmp, NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(store->config_dir, ==, qemu);
    g_assert_true(g_str_has_suffix(store->snapshot_dir, "/qemu/snapshot"));
    {
        g_autofree char *p = store_snapshot_path(store, "vm", "s1");
        g_autofree char *d = store_domain_path(store, "vm");
        g_autofree char *ep = g_build_filename(tmp, "qemu", "snapshot", "vm", "s1.xml", NULL);
        g_autofree char *ed = g_build_filename(tmp, "qemu", "vm.xml", NULL);

        g_assert_cmpstr(p, ==, ep);
        g_assert_cmpstr(d, ==, ed);
    }
    g_clear_pointer(&store, store_free);
    /* A split layout (system libvirt: /etc/libvirt/qemu + /var/lib/.../snapshot). */
    store = store_open(NULL, qemu, "/nonexistent/snapshots", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(store->snapshot_dir, ==, "/nonexistent/snapshots");
    g_clear_pointer(&store, store_free);
    store = store_open(NULL, qemu, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(g_str_has_suffix(store->snapshot_dir, "/qemu/snapshot"));
    g_rmdir(qemu);
    g_rmdir(tmp);
}

static void
test_list_domains(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) names = NULL;
    g_autofree char *sub = g_build_filename(f->store->config_dir, "dir.xml", NULL);

    write_file(f->store->config_dir, "B.xml", f->domxml);
    write_file(f->store->config_dir, "c.xml.new", f->domxml);
    write_file(f->store->config_dir, "notes", "x");
    write_file(f->store->config_dir, ".xml", "x");
    g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
    names = store_list_domains(f->store, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(names->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(names, 0), ==, "B");
    g_assert_cmpstr(g_ptr_array_index(names, 1), ==, "vm1");
}

static void
test_load_basic(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *tree = NULL;

    put_snap(f, "s1.xml", "s1", NULL, "0");
    put_snap(f, "s2.xml", "s2", "s1", "0");
    put_snap(f, "s3.xml", "s3", "s1", "1");
    sd = load(f);
    g_assert_cmpuint(sd->warnings->len, ==, 0);
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 3);
    g_assert_nonnull(sd->snaps->current);
    g_assert_cmpstr(sd->snaps->current->def->name, ==, "s3");
    tree = snaptree_render_tree(sd->snaps, NULL, TRUE);
    g_assert_cmpstr(tree, ==, "s1\n  |\n  +- s2\n  +- s3\n    \n");
}

static void
test_load_no_snapshot_dir(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_cmpint(g_rmdir(f->snapdir), ==, 0);
    sd = load(f);
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 0);
    g_assert_null(sd->snaps->current);
    g_assert_null(store_load_domain(f->store, "nosuch", &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

/* Every entry is read: no .xml suffix filter, file name not compared to <name>. */
static void
test_load_every_entry(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *sub = g_build_filename(f->snapdir, "subdir", NULL);
    g_autofree char *warn = NULL;
    g_autofree char *w = NULL;

    put_snap(f, "README", "weird", NULL, "0");
    put_snap(f, "other-name.xml", "s1", NULL, "0");
    write_file(f->snapdir, ".snapfs.lock", "");
    g_assert_cmpint(g_mkdir(sub, 0755), ==, 0);
    sd = load(f);
    g_assert_nonnull(snaptree_lookup(sd->snaps, "weird"));
    g_assert_nonnull(snaptree_lookup(sd->snaps, "s1"));
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 2);
    /* A directory cannot be read: skipped with a warning. */
    warn = warnings_of(sd);
    w = rel(f, warn);
    g_assert_cmpstr(w, ==, "Failed to read snapshot file DIR/subdir: 'DIR/subdir' is not a "
                           "regular file\n");
}

static void
test_load_missing_active(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *warn = NULL;
    g_autofree char *w = NULL;

    put_snap(f, "s1.xml", "s1", NULL, NULL);
    put_snap(f, "s2.xml", "s2", NULL, "1");
    sd = load(f);
    g_assert_null(snaptree_lookup(sd->snaps, "s1"));
    g_assert_cmpstr(sd->snaps->current->def->name, ==, "s2");
    warn = warnings_of(sd);
    w = rel(f, warn);
    g_assert_cmpstr(w, ==, "Could not find 'active' element\n"
                           "Failed to parse snapshot XML from file 'DIR/s1.xml'\n");
}

static void
test_load_parse_failure(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *warn = NULL;

    write_file(f->snapdir, "bad.xml", "<domainsnapshot><name>x</name");
    write_file(f->snapdir, "empty.xml", "");
    put_snap(f, "s1.xml", "s1", NULL, "1");
    sd = load(f);
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 1);
    g_assert_cmpuint(sd->warnings->len, ==, 4);
    warn = warnings_of(sd);
    g_assert_nonnull(strstr(warn, "Failed to parse snapshot XML from file '"));
    g_assert_nonnull(strstr(warn, "/bad.xml'\n"));
    g_assert_nonnull(strstr(warn, "/empty.xml'\n"));
    g_assert_cmpstr(sd->snaps->current->def->name, ==, "s1");
}

static void
test_load_too_big(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *xml = snap_xml(f, "big", NULL, "0");
    g_autoptr(GString) big = g_string_new(NULL);
    g_autofree char *warn = NULL;
    const char *tail = strstr(xml, "<domain ");

    /* Just over 1 MiB, otherwise valid: a comment pads it. */
    g_string_append_len(big, xml, tail - xml);
    g_string_append(big, "<!--");
    while (big->len < 1024 * 1024)
        g_string_append(big, "padding padding padding padding\n");
    g_string_append(big, "-->");
    g_string_append(big, tail);
    write_file(f->snapdir, "big.xml", big->str);
    sd = load(f);
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 0);
    warn = warnings_of(sd);
    g_assert_true(g_str_has_prefix(warn, "Failed to read snapshot file "));
    g_assert_nonnull(strstr(warn, "larger than 1048576 bytes"));

    /* Exactly 1 MiB is still read. */
    g_clear_pointer(&sd, backend_domain_free);
    g_string_truncate(big, 0);
    g_string_append_len(big, xml, tail - xml);
    g_string_append(big, "<!--");
    while (big->len < 1024 * 1024 - strlen(tail) - 3)
        g_string_append_c(big, 'x');
    g_string_append(big, "-->");
    g_string_append(big, tail);
    g_assert_cmpuint(big->len, ==, 1024 * 1024);
    write_file(f->snapdir, "big.xml", big->str);
    sd = load(f);
    g_assert_cmpuint(sd->warnings->len, ==, 0);
    g_assert_nonnull(snaptree_lookup(sd->snaps, "big"));
}

static void
test_load_too_many_current(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *warn = NULL;

    put_snap(f, "a.xml", "a", NULL, "1");
    put_snap(f, "b.xml", "b", "a", "1");
    put_snap(f, "c.xml", "c", "a", "1");
    sd = load(f);
    /* Files are read in name order; the last one read wins. */
    g_assert_cmpstr(sd->snaps->current->def->name, ==, "c");
    warn = warnings_of(sd);
    g_assert_cmpstr(warn, ==, "Too many snapshots claiming to be current for domain vm1\n"
                              "Too many snapshots claiming to be current for domain vm1\n");
}

static void
test_load_inconsistent(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *warn = NULL;
    SnapNode *orphan;

    put_snap(f, "a.xml", "a", NULL, "0");
    put_snap(f, "b.xml", "b", "gone", "1");
    sd = load(f);
    orphan = snaptree_lookup(sd->snaps, "b");
    g_assert_nonnull(orphan);
    g_assert_null(orphan->parent);
    g_assert_null(sd->snaps->current);
    warn = warnings_of(sd);
    g_assert_cmpstr(warn, ==, "Snapshots have inconsistent relations for domain vm1\n");

    /* A cycle does the same. */
    g_clear_pointer(&sd, backend_domain_free);
    g_clear_pointer(&warn, g_free);
    put_snap(f, "b.xml", "b", "c", "1");
    put_snap(f, "c.xml", "c", "b", "0");
    sd = load(f);
    g_assert_null(sd->snaps->current);
    warn = warnings_of(sd);
    g_assert_cmpstr(warn, ==, "Snapshots have inconsistent relations for domain vm1\n");
    g_assert_null(snaptree_lookup(sd->snaps, "c")->parent);
    g_assert_true(snaptree_lookup(sd->snaps, "b")->parent == snaptree_lookup(sd->snaps, "c"));
}

static void
test_load_duplicate(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *warn = NULL;

    put_snap(f, "a.xml", "s1", NULL, "0");
    put_snap(f, "b.xml", "s1", NULL, "1");   /* read second: dropped, current too */
    put_snap(f, "c.xml", "s2", "s1", "0");
    sd = load(f);
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 2);
    g_assert_null(sd->snaps->current);
    warn = warnings_of(sd);
    g_assert_cmpstr(warn, ==, "domain moment s1 already exists\n");
}

/* A crash between write and rename leaves FILE.new: FILE stays what it was and
 * loading drops the leftover (unless someone holds the store lock). */
static void
test_load_stale_new(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *leftover = g_build_filename(f->snapdir, "s1.xml.new", NULL);
    g_autofree char *other = g_build_filename(f->snapdir, "s2.xml.new", NULL);
    g_autofree char *domnew = g_build_filename(f->store->config_dir, "vm1.xml.new", NULL);
    StoreLock *lock;

    put_snap(f, "s1.xml", "s1", NULL, "1");
    put_snap(f, "s1.xml.new", "s1", "zzz", "0");
    write_file(f->snapdir, "s2.xml.new", "<domainsnapshot><name>half");
    write_file(f->store->config_dir, "vm1.xml.new", "<domain type='kvm'><name>half");

    lock = store_lock(f->store, &error);
    g_assert_no_error(error);
    sd = load(f);
    /* While the lock is held the leftovers may be a writer's: kept. */
    g_assert_true(g_file_test(leftover, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(domnew, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 1);
    g_assert_cmpuint(sd->warnings->len, ==, 0);
    store_unlock(lock);
    g_clear_pointer(&sd, backend_domain_free);

    /* A read-only store never changes anything. */
    f->store->read_only = TRUE;
    sd = load(f);
    g_assert_true(g_file_test(leftover, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(domnew, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 1);
    g_clear_pointer(&sd, backend_domain_free);
    f->store->read_only = FALSE;

    sd = load(f);
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 1);
    g_assert_null(snaptree_lookup(sd->snaps, "s1")->def->parent);
    g_assert_cmpstr(sd->snaps->current->def->name, ==, "s1");
    g_assert_cmpuint(sd->warnings->len, ==, 0);
    g_assert_false(g_file_test(leftover, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(other, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(domnew, G_FILE_TEST_EXISTS));
}

static SnapshotDef *
parse_fixture(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = data_file(name);
    SnapshotDef *def = snapshot_parse(xml, strlen(xml),
                                      SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS |
                                      SNAPSHOT_PARSE_INTERNAL, &error);

    g_assert_no_error(error);
    return def;
}

static void
test_write_snapshot_bytes(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapshotDef) def = parse_fixture("snap-s1.in.xml");
    g_autofree char *expect_cur = data_file("snap-s1.current.xml");
    g_autofree char *expect_not = data_file("snap-s1.notcurrent.xml");
    g_autofree char *newdir = g_build_filename(f->store->snapshot_dir, "vm2", NULL);
    g_autofree char *path = store_snapshot_path(f->store, "vm2", "s1");
    g_autofree char *tmp = g_strconcat(path, ".new", NULL);
    g_autofree char *got = NULL;
    g_autofree char *contents = NULL;
    mode_t old = umask(022);
    struct stat st;

    contents = store_snapshot_file_contents(def, TRUE);
    g_assert_cmpstr(contents, ==, expect_cur);
    g_assert_true(g_str_has_prefix(contents,
        "<!--\n"
        "WARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\n"
        "OVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n"
        "  virsh snapshot-edit\n"
        "or other application using the libvirt API.\n"
        "-->\n"
        "\n"
        "<domainsnapshot>\n"));
    g_assert_nonnull(strstr(contents, "passwd='secret'"));
    g_assert_true(g_str_has_suffix(contents, "  <active>1</active>\n</domainsnapshot>\n"));
    /* The def itself is left as it was. */
    g_assert_cmpint(def->active, ==, 0);

    /* vm2's snapshot directory does not exist yet: created 0777 & umask. */
    g_assert_true(store_write_snapshot(f->store, "vm2", def, TRUE, &error));
    g_assert_no_error(error);
    umask(old);
    g_assert_cmpint(stat(newdir, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0755);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
    g_assert_cmpstr(got, ==, expect_cur);
    g_clear_pointer(&got, g_free);

    g_assert_true(store_write_snapshot(f->store, "vm2", def, FALSE, &error));
    g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
    g_assert_cmpstr(got, ==, expect_not);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);

    /* What we write, we load back identically. */
    {
        g_autoptr(BackendDomain) sd = NULL;
        g_autofree char *again = NULL;
        g_autofree char *qemu = g_build_filename(f->root, "qemu", NULL);

        write_file(qemu, "vm2.xml", f->domxml);
        sd = store_load_domain(f->store, "vm2", &error);
        g_assert_no_error(error);
        /* s0 is missing: s1 becomes a root. */
        g_assert_cmpuint(sd->warnings->len, ==, 1);
        again = store_snapshot_file_contents(snaptree_lookup(sd->snaps, "s1")->def, FALSE);
        g_assert_cmpstr(again, ==, expect_not);
    }
}

static void
test_write_domain_bytes(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_parse(f->domxml, strlen(f->domxml), 0, &error);
    g_autofree char *expect = data_file("vm1.expected.xml");
    g_autofree char *path = store_domain_path(f->store, "vm1");
    g_autofree char *got = NULL;
    struct stat st;

    g_assert_no_error(error);
    g_assert_true(g_str_has_prefix(expect, "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. "
                                           "CHANGES TO IT ARE LIKELY TO BE\nOVERWRITTEN AND "
                                           "LOST. Changes to this xml configuration should be "
                                           "made using:\n  virsh edit vm1\nor other "
                                           "application using the libvirt API.\n-->\n\n"
                                           "<domain type='kvm'>\n"));
    g_assert_true(store_write_domain(f->store, def, &error));
    g_assert_no_error(error);
    g_assert_true(g_file_get_contents(path, &got, NULL, NULL));
    g_assert_cmpstr(got, ==, expect);
    g_assert_cmpint(stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    /* The header is a comment: the file loads back. */
    {
        g_autoptr(BackendDomain) sd = load(f);

        g_assert_cmpuint(sd->warnings->len, ==, 0);
    }
}

static void
test_remove(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *domfile = store_domain_path(f->store, "vm1");

    put_snap(f, "s1.xml", "s1", NULL, "1");
    g_assert_true(store_remove_snapshot(f->store, "vm1", "s1", &error));
    g_assert_no_error(error);
    g_assert_false(store_remove_snapshot(f->store, "vm1", "s1", &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);

    g_assert_true(store_remove_domain(f->store, "vm1", &error));
    g_assert_no_error(error);
    g_assert_false(g_file_test(domfile, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(f->snapdir, G_FILE_TEST_EXISTS));
    g_assert_false(store_remove_domain(f->store, "vm1", &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);

    /* Names never leave their directory. */
    g_assert_false(store_remove_snapshot(f->store, "vm1", "../vm1", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "invalid name '../vm1' for a store file");
    g_clear_error(&error);
    g_assert_false(store_remove_domain(f->store, "..", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(store_load_domain(f->store, "", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
}

/* Two processes: the second store_lock() waits until the first unlocks. The
 * child is forked before the parent locks: a forked copy of the lock's
 * descriptor would share (and keep) the parent's OFD lock. */
static void
test_lock_fork(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *lockfile = NULL;   /* allocated after fork: the child leaks nothing */
    StoreLock *lock;
    int go[2], done[2];
    char c = 0;
    pid_t pid;
    int status;

    g_assert_cmpint(pipe(go), ==, 0);
    g_assert_cmpint(pipe(done), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        StoreLock *mine;

        close(go[1]);
        close(done[0]);
        if (read(go[0], &c, 1) != 1)
            _exit(4);
        if (!(mine = store_lock(f->store, NULL)))
            _exit(2);
        if (write(done[1], "L", 1) != 1)
            _exit(3);
        store_unlock(mine);
        _exit(0);
    }
    close(go[0]);
    close(done[1]);
    lockfile = g_build_filename(f->store->snapshot_dir, ".snapfs.lock", NULL);
    lock = store_lock(f->store, &error);
    g_assert_no_error(error);
    g_assert_true(g_file_test(lockfile, G_FILE_TEST_IS_REGULAR));
    g_assert_cmpint(write(go[1], "G", 1), ==, 1);
    /* The child must still be waiting after 300 ms. */
    {
        GPollFD pfd = { done[0], G_IO_IN, 0 };

        g_assert_cmpint(g_poll(&pfd, 1, 300), ==, 0);
    }
    store_unlock(lock);
    g_assert_cmpint(read(done[0], &c, 1), ==, 1);
    g_assert_cmpint(c, ==, 'L');
    close(done[0]);
    close(go[1]);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    g_assert_true(WIFEXITED(status));
    g_assert_cmpint(WEXITSTATUS(status), ==, 0);

    /* And free again for us. */
    lock = store_lock(f->store, &error);
    g_assert_no_error(error);
    store_unlock(lock);
}

static void
test_stamps(Fixture *f, gconstpointer data)
{
    g_autofree char *s1 = g_build_filename(f->snapdir, "s1.xml", NULL);
    g_autofree char *xml = snap_xml(f, "s1", NULL, "0");
    g_autofree char *dompath = store_domain_path(f->store, "vm1");
    guint64 a, b, l1, l2;
    int fd;

    put_snap(f, "s1.xml", "s1", NULL, "0");
    a = store_domain_stamp(f->store, "vm1");
    g_assert_cmpuint(store_domain_stamp(f->store, "vm1"), ==, a);

    /* In place, same size, same second: the nanosecond ctime changes. */
    g_usleep(20 * 1000);
    fd = open(s1, O_WRONLY);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, "<", 1, 0), ==, 1);
    close(fd);
    b = store_domain_stamp(f->store, "vm1");
    g_assert_cmpuint(b, !=, a);

    /* An atomic replacement (new inode), with no delay at all. */
    g_assert_true(util_file_write_atomic(s1, xml, strlen(xml), 0600, NULL));
    a = store_domain_stamp(f->store, "vm1");
    g_assert_cmpuint(a, !=, b);

    /* New entry, removed entry, domain config rewritten. */
    put_snap(f, "s2.xml", "s2", "s1", "0");
    b = store_domain_stamp(f->store, "vm1");
    g_assert_cmpuint(b, !=, a);
    g_assert_true(store_remove_snapshot(f->store, "vm1", "s2", NULL));
    a = store_domain_stamp(f->store, "vm1");
    g_assert_cmpuint(a, !=, b);
    g_assert_true(util_file_write_atomic(dompath, f->domxml, strlen(f->domxml), 0600, NULL));
    b = store_domain_stamp(f->store, "vm1");
    g_assert_cmpuint(b, !=, a);

    l1 = store_list_stamp(f->store);
    g_assert_cmpuint(store_list_stamp(f->store), ==, l1);
    write_file(f->store->config_dir, "vm2.xml", f->domxml);
    l2 = store_list_stamp(f->store);
    g_assert_cmpuint(l2, !=, l1);
}

/* Light loading (store_load_domain_light): the same tree, warnings and, once made
 * full, the same bytes as a full load; unchanged files are not parsed again, changed
 * ones are; a file that stops holding its snapshot fails the upgrade. */
static void
test_load_light(Fixture *f, gconstpointer data)
{
    g_autoptr(BackendDomain) full = NULL;
    g_autoptr(BackendDomain) light = NULL;
    g_autoptr(BackendDomain) again = NULL;
    g_autoptr(BackendDomain) changed = NULL;
    g_autoptr(GPtrArray) nodes = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *wfull = NULL;
    g_autofree char *wlight = NULL;
    g_autofree char *s2 = NULL;
    g_autofree char *s2new = NULL;
    SnapNode *n;

    put_snap(f, "s1.xml", "s1", NULL, "0");
    put_snap(f, "s2.xml", "s2", "s1", "0");
    put_snap(f, "s3.xml", "s3", "s1", "1");
    put_snap(f, "other-name.xml", "s4", "s2", "0");
    write_file(f->snapdir, "bad.xml", "<domainsnapshot><name>x</name");
    full = load(f);
    light = store_load_domain_light(f->store, "vm1", &error);
    g_assert_no_error(error);
    wfull = warnings_of(full);
    wlight = warnings_of(light);
    g_assert_cmpstr(wlight, ==, wfull);
    g_assert_cmpuint(snaptree_count(light->snaps), ==, 4);
    g_assert_cmpstr(light->snaps->current->def->name, ==, "s3");
    nodes = snaptree_topological(light->snaps);
    for (guint i = 0; i < nodes->len; i++) {
        SnapNode *ln = nodes->pdata[i];
        SnapNode *fn = snaptree_lookup(full->snaps, ln->def->name);
        gboolean cur = light->snaps->current == ln;
        g_autofree char *want = NULL;
        g_autofree char *got = NULL;
        g_autofree char *path = g_strdup(ln->def->light_token);

        g_assert_nonnull(fn);
        g_assert_null(ln->def->dom);
        g_assert_nonnull(path);
        g_assert_true(ln->def->light_dom);
        g_assert_cmpstr(ln->def->parent, ==, fn->def->parent);
        g_assert_true(store_snapshot_full(f->store, "vm1", light, ln, &error));
        g_assert_no_error(error);
        g_assert_nonnull(ln->def->dom);
        g_assert_null(ln->def->light_token);
        g_assert_true(snaptree_lookup(light->snaps, fn->def->name) == ln);
        want = store_snapshot_file_contents(fn->def, full->snaps->current == fn);
        got = store_snapshot_file_contents(ln->def, cur);
        g_assert_cmpstr(got, ==, want);
        /* Light again, then full again: the same. */
        store_snapshot_light(ln, path);
        g_assert_null(ln->def->dom);
        g_assert_true(store_snapshot_full(f->store, "vm1", light, ln, &error));
        g_clear_pointer(&got, g_free);
        got = store_snapshot_file_contents(ln->def, cur);
        g_assert_cmpstr(got, ==, want);
    }
    /* Unchanged: a second light load gives the same tree. */
    again = store_load_domain_light(f->store, "vm1", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(snaptree_count(again->snaps), ==, 4);
    g_assert_cmpstr(again->snaps->current->def->name, ==, "s3");
    /* Changed: read again (a description appears). */
    s2 = snap_xml(f, "s2", "s1", "0");
    {
        g_auto(GStrv) parts = g_strsplit(s2, "<state>", 2);

        s2new = g_strjoin("<description>changed</description>\n  <state>", parts[0], parts[1],
                          NULL);
    }
    write_file(f->snapdir, "s2.xml", s2new);
    changed = store_load_domain_light(f->store, "vm1", &error);
    g_assert_no_error(error);
    n = snaptree_lookup(changed->snaps, "s2");
    g_assert_nonnull(n);
    g_assert_cmpstr(n->def->description, ==, "changed");
    /* A file that no longer holds its snapshot: the upgrade fails, the node stays light. */
    put_snap(f, "s3.xml", "zz", "s1", "0");
    n = snaptree_lookup(changed->snaps, "s3");
    g_assert_false(store_snapshot_full(f->store, "vm1", changed, n, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_nonnull(n->def->light_token);
}

static int
cmp_str_ptr(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names a drain reports, sorted and joined ("" shown as "-"); "ALL" when
 * everything may have changed. */
static char *
drain_names(StoreWatch *watch)
{
    g_autoptr(GHashTable) changed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    GHashTableIter it;
    gpointer k;

    if (watch_drain(watch, changed))
        return g_strdup("ALL");
    g_hash_table_iter_init(&it, changed);
    while (g_hash_table_iter_next(&it, &k, NULL))
        g_ptr_array_add(names, *(char *)k ? k : (gpointer) "-");
    g_ptr_array_sort(names, cmp_str_ptr);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static void
assert_drained(StoreWatch *watch, const char *want)
{
    g_autofree char *got = drain_names(watch);

    g_assert_cmpstr(got, ==, want);
}

static void
test_watch(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(StoreWatch) watch = watch_new(f->store, &error);
    g_autofree char *qemu = g_build_filename(f->root, "qemu", NULL);
    g_autofree char *snaproot = g_build_filename(qemu, "snapshot", NULL);
    g_autofree char *vm2dir = g_build_filename(snaproot, "vm2", NULL);
    g_autofree char *aside = g_build_filename(f->root, "aside", NULL);
    g_autofree char *s1 = g_build_filename(f->snapdir, "s1.xml", NULL);

    if (!watch) {
        g_test_skip(error->message);   /* no inotify here, or a network filesystem */
        return;
    }
    g_assert_true(watch_list_watched(watch));
    assert_drained(watch, "");
    g_assert_false(watch_check(watch));
    /* A domain's own directory is not watched before it is: only the root's entry
     * for it, and the config directory. */
    write_file(f->snapdir, "s1.xml", "x");
    assert_drained(watch, "");
    g_assert_true(watch_domain(watch, "vm1"));
    g_assert_true(watch_domain(watch, "vm1"));   /* again: the same watch */
    write_file(f->snapdir, "s2.xml", "x");
    assert_drained(watch, "vm1");
    g_assert_cmpint(truncate(s1, 0), ==, 0);
    assert_drained(watch, "vm1");
    g_assert_cmpint(chmod(s1, 0600), ==, 0);
    assert_drained(watch, "vm1");
    g_assert_cmpint(g_unlink(s1), ==, 0);
    assert_drained(watch, "vm1");
    /* The config directory: a domain file and the list; other files are not;
     * the directory's own mode may change everything. */
    write_file(qemu, "vm1.xml", f->domxml);
    assert_drained(watch, "- vm1");
    write_file(qemu, "notes.txt", "x");
    assert_drained(watch, "");
    g_assert_cmpint(chmod(qemu, 0700), ==, 0);
    assert_drained(watch, "ALL");
    /* A domain without a snapshot directory: the root sees one appear. */
    g_assert_true(watch_domain(watch, "vm2"));
    g_assert_cmpint(g_mkdir(vm2dir, 0755), ==, 0);
    assert_drained(watch, "vm2");
    g_assert_true(watch_domain(watch, "vm2"));
    write_file(vm2dir, "a.xml", "x");
    assert_drained(watch, "vm2");
    /* Moved away: reported, and a write in the moved directory is not (the watch
     * went with it); back under its name, watched again by path. */
    g_assert_cmpint(g_rename(f->snapdir, aside), ==, 0);
    assert_drained(watch, "vm1");
    write_file(aside, "s3.xml", "x");
    assert_drained(watch, "");
    g_assert_cmpint(g_rename(aside, f->snapdir), ==, 0);
    assert_drained(watch, "vm1");
    g_assert_true(watch_domain(watch, "vm1"));
    write_file(f->snapdir, "s4.xml", "x");
    assert_drained(watch, "vm1");
    /* Forgotten: no longer reported. */
    watch_forget(watch, "vm1");
    write_file(f->snapdir, "s5.xml", "x");
    assert_drained(watch, "");
    /* The snapshot directory moved away: everything may have changed, and domains
     * are not watched until a check finds one at its path again. */
    g_assert_cmpint(g_rename(snaproot, aside), ==, 0);
    assert_drained(watch, "ALL");
    g_assert_false(watch_domain(watch, "vm1"));
    g_assert_false(watch_check(watch));   /* still gone */
    g_assert_cmpint(g_rename(aside, snaproot), ==, 0);
    assert_drained(watch, "");
    g_assert_false(watch_domain(watch, "vm1"));
    g_assert_true(watch_check(watch));
    g_assert_false(watch_check(watch));
    g_assert_true(watch_domain(watch, "vm1"));
    write_file(f->snapdir, "s6.xml", "x");
    assert_drained(watch, "vm1");
    /* The config directory swapped for another: its move is an event, but the
     * snapshot directory inside it moved with no event for its own watch; the
     * check finds that the path now names another directory. */
    g_assert_cmpint(g_rename(qemu, aside), ==, 0);
    assert_drained(watch, "ALL");
    g_assert_cmpint(g_mkdir_with_parents(f->snapdir, 0755), ==, 0);
    g_assert_true(watch_check(watch));
    assert_drained(watch, "");
    g_assert_true(watch_list_watched(watch));
    g_assert_true(watch_domain(watch, "vm1"));
    write_file(f->snapdir, "s7.xml", "x");
    assert_drained(watch, "vm1");
    write_file(qemu, "vm3.xml", f->domxml);
    assert_drained(watch, "- vm3");
    rm_rf(aside);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
    g_test_add_func("/store/open", test_open);
    ADD("/store/list-domains", test_list_domains);
    ADD("/store/load/basic", test_load_basic);
    ADD("/store/load/light", test_load_light);
    ADD("/store/load/no-snapshot-dir", test_load_no_snapshot_dir);
    ADD("/store/load/every-entry", test_load_every_entry);
    ADD("/store/load/missing-active", test_load_missing_active);
    ADD("/store/load/parse-failure", test_load_parse_failure);
    ADD("/store/load/too-big", test_load_too_big);
    ADD("/store/load/too-many-current", test_load_too_many_current);
    ADD("/store/load/inconsistent", test_load_inconsistent);
    ADD("/store/load/duplicate", test_load_duplicate);
    ADD("/store/load/stale-new", test_load_stale_new);
    ADD("/store/write/snapshot-bytes", test_write_snapshot_bytes);
    ADD("/store/write/domain-bytes", test_write_domain_bytes);
    ADD("/store/remove", test_remove);
    ADD("/store/lock/fork", test_lock_fork);
    ADD("/store/stamps", test_stamps);
    ADD("/store/watch", test_watch);
#undef ADD
    return g_test_run();
}
