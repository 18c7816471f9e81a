/* test-manage.c: the typed operations of core/manage against a temporary store with real
 * qcow2 images: each one's success and refusals (not found, exists, busy while a backup
 * reads the images), and the crash-order rule of the current flag, seen through the write
 * hook (manage.c built with MANAGE_TEST_HOOKS). */
#include <glib/gstdio.h>
#include <string.h>

#include "testcmd.h"
#include "error.h"
#include "guard.h"
#include "journal.h"
#include "manage.h"

static char *root;      /* the store: ROOT/qemu/vm.xml, ROOT/qemu/snapshot/vm/ */
static char *img;       /* ROOT/img/vm.qcow2: vm's vda */
static Store *store;

static void
setup(void)
{
    g_autofree char *qemu = NULL;
    g_autofree char *cmd = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *result = NULL;
    g_autoptr(GError) error = NULL;

    root = g_dir_make_tmp("snapfs-manage-XXXXXX", NULL);
    img = g_build_filename(root, "img", NULL);
    qemu = g_build_filename(root, "qemu", NULL);
    g_assert_cmpint(g_mkdir_with_parents(img, 0755), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(qemu, 0755), ==, 0);
    cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s/vm.qcow2 1M", img);
    test_cmd(cmd);
    store = store_open(root, NULL, NULL, &error);
    g_assert_no_error(error);
    xml = g_strdup_printf("<domain type='qemu'><name>vm</name>"
                          "<uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>"
                          "<memory unit='KiB'>65536</memory>"
                          "<os><type arch='x86_64'>hvm</type></os><devices>"
                          "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                          "<source file='%s/vm.qcow2'/><target dev='vda' bus='virtio'/></disk>"
                          "</devices></domain>", img);
    g_assert_true(manage_define(store, xml, strlen(xml), &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Domain 'vm' defined");
}

static void
teardown(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", root);

    manage_test_write_hook = NULL;
    g_clear_pointer(&store, store_free);
    test_cmd(cmd);
    g_clear_pointer(&root, g_free);
    g_clear_pointer(&img, g_free);
}

/* The domain as loaded now. */
static BackendDomain *
load(void)
{
    g_autoptr(GError) error = NULL;
    BackendDomain *sd = store_load_domain(store, "vm", &error);

    g_assert_no_error(error);
    return sd;
}

static const char *
current_name(BackendDomain *sd)
{
    return sd->snaps->current ? sd->snaps->current->def->name : NULL;
}

static const char *
vda_path(BackendDomain *sd)
{
    return ((DiskDef *)sd->def->disks->pdata[0])->src->path;
}

/* Runs a create of @name, which must succeed. */
static void
create(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *want = g_strdup_printf("Domain snapshot %s created", name);

    g_assert_true(manage_create_named(store, "vm", name, 0, &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, want);
}

static void
test_create(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *base = g_build_filename(img, "vm.qcow2", NULL);
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *xml = g_strdup_printf("<domainsnapshot><name>s2</name><disks>"
                                           "<disk name='vda' snapshot='external'>"
                                           "<source file='%s/s2.qcow2'/></disk></disks>"
                                           "</domainsnapshot>", img);

    create("s1");
    sd = load();
    g_assert_cmpstr(current_name(sd), ==, "s1");
    g_assert_cmpstr(vda_path(sd), !=, base);             /* the domain is on the overlay */
    g_assert_true(g_file_test(vda_path(sd), G_FILE_TEST_IS_REGULAR));
    g_clear_pointer(&sd, backend_domain_free);

    g_assert_true(manage_create(store, "vm", xml, strlen(xml), 0, &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Domain snapshot s2 created");
    sd = load();
    g_assert_cmpstr(current_name(sd), ==, "s2");
    g_assert_cmpstr(snaptree_lookup(sd->snaps, "s2")->def->parent, ==, "s1");
    g_assert_true(g_str_has_suffix(vda_path(sd), "/s2.qcow2"));
    g_clear_pointer(&result, g_free);

    /* exists, not found, bad names: refused, nothing changed */
    g_assert_false(manage_create_named(store, "vm", "s1", 0, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_EXISTS);
    g_assert_cmpstr(error->message, ==, "domain moment s1 already exists");
    g_clear_error(&error);
    g_assert_false(manage_create_named(store, "nosuch", "s9", 0, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==,
                    "Domain not found: no domain with matching name 'nosuch'");
    g_clear_error(&error);
    g_assert_false(manage_create_named(store, "vm", "a\nb", 0, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "snapshot name must be one line");
    g_clear_error(&error);
    g_assert_null(result);
    g_clear_pointer(&sd, backend_domain_free);
    sd = load();
    g_assert_cmpuint(snaptree_count(sd->snaps), ==, 2);
}

static void
test_current(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autoptr(BackendDomain) sd = NULL;

    create("s1");
    create("s2");
    g_assert_true(manage_set_current(store, "vm", "s1", &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Snapshot s1 set as current");
    sd = load();
    g_assert_cmpstr(current_name(sd), ==, "s1");
    g_clear_pointer(&sd, backend_domain_free);
    g_clear_pointer(&result, g_free);

    g_assert_false(manage_set_current(store, "vm", "nosuch", &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "Domain snapshot not found: no domain snapshot with "
                    "matching name 'nosuch'");
    g_clear_error(&error);

    g_assert_true(manage_set_current(store, "vm", NULL, &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "domain 'vm' has no current snapshot now");
    g_clear_pointer(&result, g_free);
    sd = load();
    g_assert_null(current_name(sd));
    g_assert_false(manage_set_current(store, "vm", NULL, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
}

static void
test_delete(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autoptr(BackendDomain) sd = NULL;
    g_autofree char *overlay = NULL;
    g_autofree char *s1_overlay = NULL;

    create("s1");
    sd = load();
    s1_overlay = g_strdup(vda_path(sd));
    g_clear_pointer(&sd, backend_domain_free);
    create("s2");

    /* an external snapshot with its images: its overlay is merged, current moves up */
    g_assert_true(manage_delete(store, "vm", "s2", 0, &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Domain snapshot s2 deleted");
    g_clear_pointer(&result, g_free);
    sd = load();
    g_assert_null(snaptree_lookup(sd->snaps, "s2"));
    g_assert_cmpstr(current_name(sd), ==, "s1");
    g_assert_cmpstr(vda_path(sd), ==, s1_overlay);
    g_clear_pointer(&sd, backend_domain_free);

    /* metadata only (rmdir): the images stay */
    create("s3");
    sd = load();
    overlay = g_strdup(vda_path(sd));
    g_clear_pointer(&sd, backend_domain_free);
    g_assert_true(manage_delete(store, "vm", "s3", BACKEND_DELETE_METADATA_ONLY, &result,
                                &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Domain snapshot s3 deleted");
    g_clear_pointer(&result, g_free);
    sd = load();
    g_assert_null(snaptree_lookup(sd->snaps, "s3"));
    g_assert_cmpstr(current_name(sd), ==, "s1");
    g_assert_cmpstr(vda_path(sd), ==, overlay);
    g_assert_true(g_file_test(overlay, G_FILE_TEST_IS_REGULAR));

    g_assert_false(manage_delete(store, "vm", "s3", 0, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_false(manage_delete(store, "vm", "s1",
                                 BACKEND_DELETE_CHILDREN | BACKEND_DELETE_CHILDREN_ONLY,
                                 &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_null(result);
}

static void
test_revert(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autoptr(BackendDomain) sd = NULL;

    create("s1");
    create("s2");
    g_assert_true(manage_revert(store, "vm", "s1", &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Domain snapshot s1 reverted");
    sd = load();
    g_assert_cmpstr(current_name(sd), ==, "s1");
    g_clear_pointer(&result, g_free);
    g_assert_false(manage_revert(store, "vm", "nosuch", &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
}

static void
test_undefine(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *path = g_build_filename(root, "qemu", "vm.xml", NULL);

    create("s1");
    g_assert_false(manage_undefine(store, "vm", 0, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "cannot delete inactive domain with 1 snapshots");
    g_clear_error(&error);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    g_assert_false(manage_undefine(store, "nosuch", 0, &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
    g_clear_error(&error);
    g_assert_true(manage_undefine(store, "vm", BACKEND_UNDEFINE_SNAPSHOTS_METADATA, &result,
                                  &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==, "Domain 'vm' has been undefined");
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

static void
test_genid_define(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    const char *other = "<domain type='qemu'><name>vm</name>"
                        "<uuid>00000000-0000-0000-0000-000000000001</uuid>"
                        "<memory unit='KiB'>65536</memory>"
                        "<os><type arch='x86_64'>hvm</type></os></domain>";

    g_assert_true(manage_genid(store, "vm", "4f0c7c6a-6d7c-4b7e-9c2a-1f0e8a1b2c3d", &result,
                               &error));
    g_assert_no_error(error);
    g_assert_cmpstr(result, ==,
                    "genid of domain 'vm' set to 4f0c7c6a-6d7c-4b7e-9c2a-1f0e8a1b2c3d");
    g_clear_pointer(&result, g_free);
    g_assert_false(manage_genid(store, "vm", "nope", &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(manage_define(store, other, strlen(other), &result, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_EXISTS);
    g_assert_cmpstr(error->message, ==,
                    "domain 'vm' already exists with uuid c7a5fdbd-edaf-9455-926a-d65c16db1809");
}

static gint
cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every file in the snapshot directory of vm (sorted names -> contents), for "nothing
 * changed". */
static char *
snapshot_files(void)
{
    g_autofree char *dir = g_build_filename(root, "qemu", "snapshot", "vm", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    GString *all = g_string_new(NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d)))
        g_ptr_array_add(names, g_strdup(name));
    g_ptr_array_sort(names, cmp_names);
    for (guint i = 0; i < names->len; i++) {
        g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
        g_autofree char *text = NULL;

        g_file_get_contents(path, &text, NULL, NULL);
        g_string_append_printf(all, "%s\n%s\n", (char *)names->pdata[i], text ? text : "");
    }
    return g_string_free(all, FALSE);
}

static void
assert_busy(GError *error)
{
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_assert_cmpstr(error->message, ==,
                    "domain 'vm' is busy: another backup job is already running");
}

static void
test_busy(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    g_autofree char *jpath = NULL;
    g_autofree char *ghost = g_build_filename(img, "ghost.qcow2", NULL);
    g_autofree char *cmd = g_strdup_printf("qemu-img create -q -f qcow2 %s 1M", ghost);

    create("s1");
    create("s2");
    before = snapshot_files();
    g_assert_true(guard_backup_begin(store, "vm", &error));
    g_assert_no_error(error);
    /* what writes images is refused, before anything is looked at */
    g_assert_false(manage_create_named(store, "vm", "s3", 0, &result, &error));
    assert_busy(error);
    g_clear_error(&error);
    g_assert_false(manage_revert(store, "vm", "s1", &result, &error));
    assert_busy(error);
    g_clear_error(&error);
    g_assert_false(manage_delete(store, "vm", "s2", BACKEND_DELETE_METADATA_ONLY, &result,
                                 &error));
    assert_busy(error);
    g_clear_error(&error);
    g_assert_false(manage_delete(store, "vm", "nosuch", 0, &result, &error));
    assert_busy(error);
    g_clear_error(&error);
    after = snapshot_files();
    g_assert_cmpstr(after, ==, before);
    /* metadata alone is not what a backup reads */
    g_assert_true(manage_set_current(store, "vm", "s1", &result, &error));
    g_assert_no_error(error);
    g_clear_pointer(&result, g_free);
    /* another domain's backup refuses nothing of vm */
    guard_backup_end(store, "vm");
    g_assert_true(guard_backup_begin(store, "other", &error));
    create("s3");
    guard_backup_end(store, "other");

    /* an interrupted create waits for the next change of vm, whatever it is: resolving it
     * removes an image, so no change of vm goes ahead while a backup reads them */
    test_cmd(cmd);
    jpath = journal_path(store->snapshot_dir, "vm");
    {
        g_autoptr(Journal) j = journal_new(jpath, "create");
        const char *args[] = { "vda", ghost, "new", NULL };

        journal_set(j, "snapshot", "ghost");
        journal_add_step(j, "overlay", args);
        g_assert_true(journal_write(j, &error));
        g_assert_no_error(error);
    }
    g_assert_true(guard_backup_begin(store, "vm", &error));
    g_assert_false(manage_set_current(store, "vm", "s2", &result, &error));
    assert_busy(error);
    g_clear_error(&error);
    g_assert_false(manage_genid(store, "vm", "new", &result, &error));
    assert_busy(error);
    g_clear_error(&error);
    g_assert_false(manage_undefine(store, "vm", BACKEND_UNDEFINE_SNAPSHOTS_METADATA, &result,
                                   &error));
    assert_busy(error);
    g_clear_error(&error);
    g_assert_true(g_file_test(jpath, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(ghost, G_FILE_TEST_EXISTS));
    guard_backup_end(store, "vm");
    g_assert_true(manage_set_current(store, "vm", "s2", &result, &error));
    g_assert_no_error(error);
    g_assert_false(g_file_test(jpath, G_FILE_TEST_EXISTS));
    g_assert_false(g_file_test(ghost, G_FILE_TEST_EXISTS));
}

/* ---- the crash-order rule ---------------------------------------------------------- */

static GString *writes;   /* "NAME=FLAG " per metadata write, in order */

/* Before a file gets <active>1</active>, no other file on disk claims current: a crash at
 * this point leaves at most one current snapshot. */
static void
order_hook(Store *s, const char *domain, const char *snap, gboolean current)
{
    g_autofree char *dir = g_build_filename(s->snapshot_dir, domain, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    g_string_append_printf(writes, "%s=%d ", snap, current);
    if (!current)
        return;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *text = NULL;
        g_autofree char *own = g_strconcat(snap, ".xml", NULL);

        if (strcmp(name, own) == 0 || !g_file_get_contents(path, &text, NULL, NULL))
            continue;
        if (strstr(text, "<active>1</active>"))
            g_error("%s claims current while %s is written as current", name, snap);
    }
}

static void
test_crash_order(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *result = NULL;
    g_autofree char *redefine = NULL;

    writes = g_string_new(NULL);
    manage_test_write_hook = order_hook;
    create("s1");
    g_assert_cmpstr(writes->str, ==, "s1=1 ");
    g_string_truncate(writes, 0);
    create("s2");
    g_assert_cmpstr(writes->str, ==, "s1=0 s2=1 ");
    g_string_truncate(writes, 0);

    g_assert_true(manage_set_current(store, "vm", "s1", &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(writes->str, ==, "s2=0 s1=1 ");
    g_string_truncate(writes, 0);
    g_clear_pointer(&result, g_free);

    g_assert_true(manage_revert(store, "vm", "s2", &result, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(writes->str, ==, "s1=0 s2=1 ");
    g_string_truncate(writes, 0);
    g_clear_pointer(&result, g_free);

    redefine = g_strdup("<domainsnapshot><name>s1</name><creationTime>1</creationTime>"
                        "<state>shutoff</state></domainsnapshot>");
    g_assert_true(manage_create(store, "vm", redefine, strlen(redefine),
                                MANAGE_CREATE_REDEFINE | MANAGE_CREATE_CURRENT, &result,
                                &error));
    g_assert_no_error(error);
    g_assert_cmpstr(writes->str, ==, "s2=0 s1=1 ");
    g_string_truncate(writes, 0);
    g_clear_pointer(&result, g_free);

    g_assert_true(manage_set_current(store, "vm", NULL, &result, &error));
    g_assert_cmpstr(writes->str, ==, "s1=0 ");
    g_string_free(writes, TRUE);
}

static void
add(const char *path, GTestFixtureFunc func)
{
    g_test_add_vtable(path, 0, NULL, (GTestFixtureFunc)setup, func,
                      (GTestFixtureFunc)teardown);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    add("/manage/create", (GTestFixtureFunc)test_create);
    add("/manage/current", (GTestFixtureFunc)test_current);
    add("/manage/delete", (GTestFixtureFunc)test_delete);
    add("/manage/revert", (GTestFixtureFunc)test_revert);
    add("/manage/undefine", (GTestFixtureFunc)test_undefine);
    add("/manage/genid-define", (GTestFixtureFunc)test_genid_define);
    add("/manage/busy", (GTestFixtureFunc)test_busy);
    add("/manage/crash-order", (GTestFixtureFunc)test_crash_order);
    return g_test_run();
}
