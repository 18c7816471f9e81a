/* test-backup.c: <domainbackup> parse/format (xml2xml), RNG validation and disk alignment. */
#include <glib.h>
#include <string.h>

#include "backup.h"
#include "error.h"
#include "xmlutil.h"

#include "xml2xml.h"

/* The domain the "aligned-" xml2xml cases are aligned against (suffix "SUFFIX"):
 * vda, vdb files, vdc a block device, hda an empty cdrom, vde a read-only file. */
static const char dom_main[] =
    "<domain type='kvm'>\n"
    "  <name>backup-test</name>\n"
    "  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>\n"
    "  <memory unit='KiB'>219136</memory>\n"
    "  <vcpu placement='static'>1</vcpu>\n"
    "  <os>\n"
    "    <type arch='x86_64' machine='pc'>hvm</type>\n"
    "  </os>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/fake/vda.qcow2'/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/fake/vdb.img'/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='block' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source dev='/dev/sdc'/>\n"
    "      <target dev='vdc' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <target dev='hda' bus='ide'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/fake/vde.iso'/>\n"
    "      <target dev='vde' bus='virtio'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "  </devices>\n"
    "</domain>\n";

/* Files only: everything can get a generated target. */
static const char dom_files[] =
    "<domain type='kvm'>\n"
    "  <name>files</name>\n"
    "  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n"
    "  <memory unit='KiB'>219136</memory>\n"
    "  <os>\n"
    "    <type arch='x86_64'>hvm</type>\n"
    "  </os>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'>\n"
    "      <source file='/var/lib/libvirt/images/root.qcow2'/>\n"
    "      <target dev='sda' bus='scsi'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <target dev='sdb' bus='scsi'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <source file='/var/lib/libvirt/images/data'/>\n"
    "      <target dev='vdextradisk' bus='virtio'/>\n"
    "    </disk>\n"
    "  </devices>\n"
    "</domain>\n";

static const char dom_nodisks[] =
    "<domain type='kvm'>\n"
    "  <name>nodisks</name>\n"
    "  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1801</uuid>\n"
    "  <memory unit='KiB'>219136</memory>\n"
    "  <os>\n"
    "    <type arch='x86_64'>hvm</type>\n"
    "  </os>\n"
    "  <devices>\n"
    "  </devices>\n"
    "</domain>\n";

static DomainDef *
test_domain(const char *xml)
{
    g_autoptr(GError) error = NULL;
    DomainDef *dom = domain_parse(xml, strlen(xml), 0, &error);

    g_assert_no_error(error);
    g_assert_nonnull(dom);
    return dom;
}

/* xml2xml callback: case names containing "aligned-" are aligned against
 * dom_main; names containing "internal" use the status (internal) parse and
 * format. The RNG is not applied here: the invalid cases pin the parser's own
 * rules (the RNG cases are below). */
static char *
test_backup_xml2xml(const char *name, const char *buf, gsize len, GError **error)
{
    gboolean internal = strstr(name, "internal") != NULL;
    g_autoptr(BackupDef) def = NULL;

    def = backup_parse_flags(buf, len, NULL, internal ? BACKUP_PARSE_INTERNAL : 0, error);
    if (!def)
        return NULL;
    if (strstr(name, "aligned-")) {
        g_autoptr(DomainDef) dom = test_domain(dom_main);

        if (!backup_align_disks(def, dom, "SUFFIX", error))
            return NULL;
    }
    return backup_format(def, internal);
}

static const char *
test_schema_dir(void)
{
    return xmlutil_schema_dir();
}

/* Every backup-*.in.xml except norng-* passes the public parse, RNG included. */
static void
test_backup_rng_inputs(void)
{
    g_autofree char *dir = g_test_build_filename(G_TEST_DIST, "data", "xml2xml", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *ent;
    guint n = 0;

    g_assert_nonnull(d);
    while ((ent = g_dir_read_name(d))) {
        g_autofree char *path = NULL;
        g_autofree char *buf = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(BackupDef) def = NULL;
        gsize len = 0;

        if (!g_str_has_prefix(ent, "backup-") || !g_str_has_suffix(ent, ".in.xml") ||
            g_str_has_prefix(ent, "backup-norng-"))
            continue;
        path = g_build_filename(dir, ent, NULL);
        g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
        def = backup_parse(buf, len, test_schema_dir(), &error);
        if (error)
            g_test_message("%s: %s", ent, error->message);
        g_assert_no_error(error);
        g_assert_nonnull(def);
        n++;
    }
    g_assert_cmpuint(n, >=, 12);
}

/* libvirt's text: the schema path, a newline, then libxml2's reasons. */
static void
test_backup_rng_error(const char *xml, const char *reason)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(BackupDef) def = NULL;
    g_autofree char *rng = g_build_filename(test_schema_dir(), "domainbackup.rng", NULL);
    g_autofree char *expect = g_strdup_printf("XML document failed to validate against schema: "
                                              "Unable to validate doc against %s\n%s",
                                              rng, reason);

    def = backup_parse(xml, strlen(xml), test_schema_dir(), &error);
    g_assert_null(def);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_assert_cmpstr(error->message, ==, expect);
}

static void
test_backup_rng_extra_element(void)
{
    const char *xml = "<domainbackup mode='push'>\n  <bogus/>\n</domainbackup>\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(BackupDef) def = NULL;

    test_backup_rng_error(xml, "Element domainbackup has extra content: bogus\n");
    /* without the RNG, unknown elements are ignored */
    def = backup_parse(xml, strlen(xml), NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(def);
}

/* The docs' first example does not validate: push disks need type=. */
static void
test_backup_rng_docs_example(void)
{
    const char *xml = "<domainbackup>\n  <disks>\n    <disk name='vda' backup='yes'/>\n"
                      "  </disks>\n</domainbackup>\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(BackupDef) def = NULL;

    def = backup_parse(xml, strlen(xml), test_schema_dir(), &error);
    g_assert_null(def);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_assert_true(g_str_has_prefix(error->message,
                                   "XML document failed to validate against schema: "
                                   "Unable to validate doc against "));
    g_clear_error(&error);
    def = backup_parse(xml, strlen(xml), NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(def);
    g_assert_cmpuint(def->disks->len, ==, 1);
}

/* Errors libvirt's public parse reports from the RNG before its own checks. */
static void
test_backup_rng_mode(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(BackupDef) def = NULL;
    const char *xml = "<domainbackup mode='pull'>\n  <disks>\n    <disk name='vda'/>\n"
                      "  </disks>\n</domainbackup>\n";

    /* pull mode needs <server> in the RNG (not in the parser) */
    def = backup_parse(xml, strlen(xml), test_schema_dir(), &error);
    g_assert_null(def);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    g_clear_error(&error);
    def = backup_parse(xml, strlen(xml), NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(def->mode, ==, BACKUP_MODE_PULL);
    g_assert_false(def->has_server);
}

/* A missing schema is an error, never a silent pass. */
static void
test_backup_rng_missing_schema(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(BackupDef) def = NULL;
    const char *xml = "<domainbackup/>\n";

    def = backup_parse(xml, strlen(xml), "/nonexistent/schemas", &error);
    g_assert_null(def);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED);
    g_assert_true(g_str_has_prefix(error->message,
                                   "Unable to parse RNG /nonexistent/schemas/domainbackup.rng: "));
}

static gpointer
test_backup_rng_thread(gpointer data)
{
    const char *good = "<domainbackup><disks><disk name='vda' type='file'/></disks></domainbackup>";
    const char *bad = "<domainbackup><disks><disk name='vda'/></disks></domainbackup>";

    for (guint i = 0; i < 20; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(BackupDef) def = backup_parse(good, strlen(good), test_schema_dir(), &error);

        g_assert_no_error(error);
        g_clear_pointer(&def, backup_def_free);
        def = backup_parse(bad, strlen(bad), test_schema_dir(), &error);
        g_assert_null(def);
        g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
    }
    return NULL;
}

/* The schema cache is shared: validation from several threads at once. */
static void
test_backup_rng_threads(void)
{
    GThread *threads[4];

    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("rng", test_backup_rng_thread, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(threads); i++)
        g_thread_join(threads[i]);
}

static char *
test_align(const char *dom_xml, const char *xml, const char *suffix, GError **error)
{
    g_autoptr(DomainDef) dom = test_domain(dom_xml);
    g_autoptr(BackupDef) def = backup_parse(xml, strlen(xml), test_schema_dir(), error);

    if (!def || !backup_align_disks(def, dom, suffix, error))
        return NULL;
    return backup_format(def, FALSE);
}

/* No <disks>: every non-empty, writable disk, targets = path + '.' + suffix. */
static void
test_backup_align_all(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *got = test_align(dom_files, "<domainbackup/>", "1700000000", &error);

    g_assert_no_error(error);
    g_assert_cmpstr(got, ==,
        "<domainbackup mode='push'>\n"
        "  <disks>\n"
        "    <disk name='sda' backup='yes' type='file' backupmode='full'>\n"
        "      <target file='/var/lib/libvirt/images/root.qcow2.1700000000'/>\n"
        "    </disk>\n"
        "    <disk name='sdb' backup='no'/>\n"
        "    <disk name='vdextradisk' backup='yes' type='file' backupmode='full'>\n"
        "      <target file='/var/lib/libvirt/images/data.1700000000'/>\n"
        "    </disk>\n"
        "  </disks>\n"
        "</domainbackup>\n");
}

/* Global incremental: every selected disk inherits it. */
static void
test_backup_align_incremental(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *got = test_align(dom_files,
                                      "<domainbackup><incremental>c1</incremental>"
                                      "</domainbackup>", "c2", &error);

    g_assert_no_error(error);
    g_assert_cmpstr(got, ==,
        "<domainbackup mode='push'>\n"
        "  <incremental>c1</incremental>\n"
        "  <disks>\n"
        "    <disk name='sda' backup='yes' type='file' backupmode='incremental' "
        "incremental='c1'>\n"
        "      <target file='/var/lib/libvirt/images/root.qcow2.c2'/>\n"
        "    </disk>\n"
        "    <disk name='sdb' backup='no'/>\n"
        "    <disk name='vdextradisk' backup='yes' type='file' backupmode='incremental' "
        "incremental='c1'>\n"
        "      <target file='/var/lib/libvirt/images/data.c2'/>\n"
        "    </disk>\n"
        "  </disks>\n"
        "</domainbackup>\n");
}

/* Listed disks first (in the given order), then the others in domain order, off. */
static void
test_backup_align_order(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) dom = test_domain(dom_main);
    const char *xml = "<domainbackup><disks>"
                      "<disk name='vde' backup='no'/>"
                      "<disk name='vdb' type='file'/>"
                      "</disks></domainbackup>";
    g_autoptr(BackupDef) def = backup_parse(xml, strlen(xml), test_schema_dir(), &error);
    const char *expect[] = { "vde", "vdb", "vda", "vdc", "hda" };
    const gboolean backup[] = { FALSE, TRUE, FALSE, FALSE, FALSE };

    g_assert_no_error(error);
    g_assert_true(backup_align_disks(def, dom, "S", &error));
    g_assert_no_error(error);
    g_assert_cmpuint(def->disks->len, ==, G_N_ELEMENTS(expect));
    for (guint i = 0; i < G_N_ELEMENTS(expect); i++) {
        BackupDiskDef *disk = def->disks->pdata[i];

        g_assert_cmpstr(disk->name, ==, expect[i]);
        g_assert_cmpint(disk->backup, ==, backup[i]);
        g_assert_cmpint(disk->backupmode, ==, BACKUP_DISK_MODE_FULL);
    }
    /* the suffix is appended, the extension is kept */
    g_assert_cmpstr(((BackupDiskDef *)def->disks->pdata[1])->store->path, ==,
                    "/fake/vdb.img.S");
    g_assert_cmpint(((BackupDiskDef *)def->disks->pdata[1])->store->type, ==,
                    STORAGE_TYPE_FILE);
}

static void
test_backup_align_errors(void)
{
    static const struct {
        const char *dom;
        const char *xml;
        const char *err;
    } cases[] = {
        { dom_nodisks, "<domainbackup/>", "domain must have at least one disk to perform backup" },
        { dom_main, "<domainbackup/>", "refusing to generate file name for disk 'vdc'" },
        { dom_main, "<domainbackup><disks><disk name='hda' backup='yes' type='file'/>"
          "</disks></domainbackup>", "disk 'hda' has no media" },
        { dom_main, "<domainbackup><disks><disk name='vdz' backup='no'/>"
          "</disks></domainbackup>", "no disk named 'vdz'" },
        { dom_files, "<domainbackup><disks><disk name='sda' backup='no'/>"
          "<disk name='sda' backup='no'/></disks></domainbackup>",
          "disk 'sda' specified twice" },
        { dom_files, "<domainbackup><disks><disk name='sda' type='file' "
          "backupmode='incremental'/></disks></domainbackup>",
          "'incremental' backup mode of disk 'sda' requires setting 'incremental' field "
          "for disk or backup" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *got = test_align(cases[i].dom, cases[i].xml, "S", &error);

        g_assert_null(got);
        g_assert_nonnull(error);
        g_assert_cmpstr(error->message, ==, cases[i].err);
    }
}

/* An empty disk not listed is simply not backed up; backup='no' on an empty
 * disk is fine too. */
static void
test_backup_align_empty_unlisted(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *got = test_align(dom_files,
                                      "<domainbackup><disks><disk name='sdb' backup='no'/>"
                                      "</disks></domainbackup>", "S", &error);

    g_assert_no_error(error);
    g_assert_cmpstr(got, ==,
        "<domainbackup mode='push'>\n"
        "  <disks>\n"
        "    <disk name='sdb' backup='no'/>\n"
        "    <disk name='sda' backup='no'/>\n"
        "    <disk name='vdextradisk' backup='no'/>\n"
        "  </disks>\n"
        "</domainbackup>\n");
}

/* internal adds state= and index=, the public format never shows them. */
static void
test_backup_format_internal(void)
{
    g_autoptr(GError) error = NULL;
    const char *xml = "<domainbackup><disks><disk name='vda' type='file' state='failed' "
                      "index='4'><target file='/b/vda'/></disk></disks></domainbackup>";
    g_autoptr(BackupDef) def = backup_parse_flags(xml, strlen(xml), NULL,
                                                  BACKUP_PARSE_INTERNAL, &error);
    g_autofree char *pub = NULL;
    g_autofree char *priv = NULL;

    g_assert_no_error(error);
    pub = backup_format(def, FALSE);
    priv = backup_format(def, TRUE);
    g_assert_cmpstr(pub, ==,
        "<domainbackup mode='push'>\n  <disks>\n"
        "    <disk name='vda' backup='yes' type='file'>\n"
        "      <target file='/b/vda'/>\n    </disk>\n  </disks>\n</domainbackup>\n");
    g_assert_cmpstr(priv, ==,
        "<domainbackup mode='push'>\n  <disks>\n"
        "    <disk name='vda' backup='yes' state='failed' type='file' index='4'>\n"
        "      <target file='/b/vda'/>\n    </disk>\n  </disks>\n</domainbackup>\n");
    /* the public parse ignores state= and index= */
    g_clear_pointer(&def, backup_def_free);
    def = backup_parse(xml, strlen(xml), NULL, &error);
    g_assert_no_error(error);
    g_assert_null(((BackupDiskDef *)def->disks->pdata[0])->state);
    g_assert_cmpuint(((BackupDiskDef *)def->disks->pdata[0])->store->index, ==, 0);
}

/* A hand-built definition formats without a parse. */
static void
test_backup_format_built(void)
{
    g_autoptr(BackupDef) def = backup_def_new();
    BackupDiskDef *disk = backup_disk_def_new();
    g_autofree char *got = NULL;

    def->mode = BACKUP_MODE_PULL;
    def->has_server = TRUE;
    def->server_name = g_strdup("localhost");
    def->server_port = g_strdup("10809");
    disk->name = g_strdup("vda");
    disk->store = storage_source_new();
    disk->store->type = STORAGE_TYPE_BLOCK;
    disk->store->path = g_strdup("/dev/scratch");
    g_ptr_array_add(def->disks, disk);
    got = backup_format(def, FALSE);
    g_assert_cmpstr(got, ==,
        "<domainbackup mode='pull'>\n"
        "  <server transport='tcp' name='localhost' port='10809'/>\n"
        "  <disks>\n"
        "    <disk name='vda' backup='yes' type='block'>\n"
        "      <scratch dev='/dev/scratch'/>\n"
        "    </disk>\n"
        "  </disks>\n"
        "</domainbackup>\n");
    backup_def_free(NULL);
    backup_disk_def_free(NULL);
}

int
main(int argc, char **argv)
{
    guint n;

    g_test_init(&argc, &argv, NULL);
    n = xml2xml_add_cases("backup", test_backup_xml2xml);
    g_assert_cmpuint(n, >=, 27);
    g_test_add_func("/backup/rng/inputs", test_backup_rng_inputs);
    g_test_add_func("/backup/rng/extra-element", test_backup_rng_extra_element);
    g_test_add_func("/backup/rng/docs-example", test_backup_rng_docs_example);
    g_test_add_func("/backup/rng/pull-needs-server", test_backup_rng_mode);
    g_test_add_func("/backup/rng/missing-schema", test_backup_rng_missing_schema);
    g_test_add_func("/backup/rng/threads", test_backup_rng_threads);
    g_test_add_func("/backup/align/all", test_backup_align_all);
    g_test_add_func("/backup/align/incremental", test_backup_align_incremental);
    g_test_add_func("/backup/align/order", test_backup_align_order);
    g_test_add_func("/backup/align/errors", test_backup_align_errors);
    g_test_add_func("/backup/align/empty-unlisted", test_backup_align_empty_unlisted);
    g_test_add_func("/backup/format/internal", test_backup_format_internal);
    g_test_add_func("/backup/format/built", test_backup_format_built);
    return g_test_run();
}
