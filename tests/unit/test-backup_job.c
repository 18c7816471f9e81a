/* test-backup_job.c: push backup jobs on real images: full raw/qcow2, incremental, cancel, refusals. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libxml/tree.h>

#include "chain.h"
#include "error.h"
#include "image.h"
#include "backup_job.h"
#include "qcow2w.h"
#include "qcow.h"
#include "xmlutil.h"

/* The store: images/{base.raw, mid.qcow2, top.qcow2} is vda's chain (top first);
 * s1 was taken on base.raw (overlay mid.qcow2), s2 on mid.qcow2 (overlay
 * top.qcow2); vdb is a raw file, hdc an empty read-only cdrom; domain "nodisk" has
 * no disk at all. ref.raw is qemu-img convert of vda. */
static const char setup_script[] =
    "set -eu\n"
    "d=$1; img=$d/images; q=$d/qemu\n"
    "mkdir -p $img $q/snapshot/vm $d/out\n"
    "qio() { qemu-io -f \"$1\" -c \"$3\" \"$2\" >/dev/null; }\n"
    "qemu-img create -q -f raw $img/base.raw 48M\n"
    "qio raw $img/base.raw 'write -P 0x11 0 2M'\n"
    "qio raw $img/base.raw 'write -P 0x12 6M 100k'\n"
    "qio raw $img/base.raw 'write -P 0x13 8M 32M'\n"
    "qemu-img create -q -f qcow2 -F raw -b $img/base.raw $img/mid.qcow2\n"
    "qio qcow2 $img/mid.qcow2 'write -P 0x21 1M 2M'\n"
    "qio qcow2 $img/mid.qcow2 'write -z 0 256k'\n"
    "qio qcow2 $img/mid.qcow2 'write -P 0x22 12M 1M'\n"
    "qemu-img create -q -f qcow2 -o cluster_size=4096 -F qcow2 -b $img/mid.qcow2 $img/top.qcow2\n"
    "qio qcow2 $img/top.qcow2 'write -P 0x31 3M 100k'\n"
    "qio qcow2 $img/top.qcow2 'write -z 6M 64k'\n"
    "qio qcow2 $img/top.qcow2 'write -P 0 5M 128k'\n"
    "qio qcow2 $img/top.qcow2 'write -P 0x32 47M 4k'\n"
    "qemu-img create -q -f raw $img/vdb.raw 1049576\n"   /* 1 MiB + 1000: a partial cluster */
    "qio raw $img/vdb.raw 'write -P 0x41 4k 8k'\n"
    "qio raw $img/vdb.raw 'write -P 0x42 1048576 1000'\n"
    "qemu-img convert -O raw $img/top.qcow2 $d/ref.raw\n"
    "qemu-img convert -O raw $img/vdb.raw $d/ref-vdb.raw\n";

static char *root;

static const char dom_head[] =
    "<domain type='kvm'>\n"
    "  <name>%s</name>\n"
    "  <uuid>%s</uuid>\n"
    "  <memory unit='KiB'>1048576</memory>\n"
    "  <vcpu placement='static'>1</vcpu>\n"
    "  <os>\n"
    "    <type arch='x86_64'>hvm</type>\n"
    "  </os>\n"
    "  <devices>\n";

static char *
vm_xml(const char *vda, const char *vda_format)
{
    GString *s = g_string_new(NULL);

    g_string_append_printf(s, dom_head, "vm", "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
    g_string_append_printf(s,
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='%s'/>\n"
        "      <source file='%s/images/%s'/>\n"
        "      <target dev='vda' bus='virtio'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='disk'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <source file='%s/images/vdb.raw'/>\n"
        "      <target dev='vdb' bus='virtio'/>\n"
        "    </disk>\n"
        "    <disk type='file' device='cdrom'>\n"
        "      <driver name='qemu' type='raw'/>\n"
        "      <target dev='hdc' bus='ide'/>\n"
        "      <readonly/>\n"
        "    </disk>\n"
        "  </devices>\n"
        "</domain>\n", vda_format, root, vda, root);
    return g_string_free(s, FALSE);
}

static void
write_file(const char *path, const char *contents)
{
    g_autoptr(GError) error = NULL;

    g_file_set_contents(path, contents, -1, &error);
    g_assert_no_error(error);
}

static void
write_snapshot(const char *name, const char *parent, const char *before,
               const char *before_format, const char *overlay, const char *location)
{
    g_autofree char *dom = vm_xml(before, before_format);
    g_autofree char *path = g_strdup_printf("%s/qemu/snapshot/vm/%s.xml", root, name);
    g_autofree char *parent_xml = parent ? g_strdup_printf("  <parent>\n    <name>%s</name>\n"
                                                           "  </parent>\n", parent)
                                         : g_strdup("");
    g_autofree char *disk = NULL;
    g_autofree char *xml = NULL;

    if (g_str_equal(location, "external"))
        disk = g_strdup_printf("    <disk name='vda' snapshot='external' type='file'>\n"
                               "      <driver type='qcow2'/>\n"
                               "      <source file='%s/images/%s'/>\n"
                               "    </disk>\n", root, overlay);
    else
        disk = g_strdup_printf("    <disk name='vda' snapshot='%s'/>\n", location);
    xml = g_strdup_printf("<domainsnapshot>\n"
                          "  <name>%s</name>\n"
                          "  <state>shutoff</state>\n"
                          "%s"
                          "  <creationTime>1700000000</creationTime>\n"
                          "  <memory snapshot='no'/>\n"
                          "  <disks>\n"
                          "%s"
                          "    <disk name='vdb' snapshot='no'/>\n"
                          "    <disk name='hdc' snapshot='no'/>\n"
                          "  </disks>\n"
                          "%s"
                          "  <active>0</active>\n"
                          "</domainsnapshot>\n", name, parent_xml, disk, dom);
    write_file(path, xml);
}

static void
run_ok(const char *const *argv, char **out)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH |
                      (out ? 0 : G_SPAWN_STDOUT_TO_DEV_NULL), NULL, NULL, out, &err, &status,
                      &error))
        g_error("cannot run %s: %s", argv[0], error->message);
    if (!g_spawn_check_wait_status(status, &error))
        g_error("%s failed: %s\n%s", argv[0], error->message, err);
}

static void
setup(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *vm = NULL;
    g_autofree char *path = NULL;
    g_autofree char *nodisk = NULL;
    g_autofree char *head = NULL;
    const char *argv[] = { "bash", "-c", setup_script, "setup", NULL, NULL };

    root = g_dir_make_tmp("snapfs-job-XXXXXX", &error);
    g_assert_no_error(error);
    argv[4] = root;
    run_ok(argv, NULL);
    vm = vm_xml("top.qcow2", "qcow2");
    path = g_strdup_printf("%s/qemu/vm.xml", root);
    write_file(path, vm);
    g_free(path);
    path = g_strdup_printf("%s/qemu/nodisk.xml", root);
    head = g_strdup_printf(dom_head, "nodisk", "1b2c3d4e-1d52-d8f3-2516-782e98ab3fa0");
    nodisk = g_strconcat(head, "  </devices>\n</domain>\n", NULL);
    write_file(path, nodisk);
    g_free(path);
    g_free(nodisk);
    path = g_strdup_printf("%s/qemu/blk.xml", root);
    g_free(head);
    head = g_strdup_printf(dom_head, "blk", "2b2c3d4e-1d52-d8f3-2516-782e98ab3fa0");
    nodisk = g_strconcat(head, "    <disk type='block' device='disk'>\n"
                         "      <driver name='qemu' type='raw'/>\n"
                         "      <source dev='/dev/null'/>\n"
                         "      <target dev='vda' bus='virtio'/>\n"
                         "    </disk>\n  </devices>\n</domain>\n", NULL);
    write_file(path, nodisk);
    write_snapshot("s1", NULL, "base.raw", "raw", "mid.qcow2", "external");
    write_snapshot("s2", "s1", "mid.qcow2", "qcow2", "top.qcow2", "external");
    write_snapshot("s3", "s2", "top.qcow2", "qcow2", NULL, "internal");
}

static void
teardown(void)
{
    const char *argv[] = { "rm", "-rf", root, NULL };

    run_ok(argv, NULL);
    g_free(root);
}

static Store *
open_store(void)
{
    g_autoptr(GError) error = NULL;
    Store *store = store_open(root, NULL, NULL, &error);

    g_assert_no_error(error);
    return store;
}

static char *
at(const char *rel)
{
    return g_build_filename(root, rel, NULL);
}

/* Removes everything in out/, so each case starts clean. */
static void
clean_out(void)
{
    g_autofree char *out = at("out");
    g_autoptr(GDir) dir = g_dir_open(out, 0, NULL);
    const char *name;

    g_assert_nonnull(dir);
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *p = g_build_filename(out, name, NULL);
        g_assert_cmpint(unlink(p), ==, 0);
    }
}

static gint
cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The names in out/, sorted and joined with spaces. */
static char *
list_out(void)
{
    g_autofree char *out = at("out");
    g_autoptr(GDir) dir = g_dir_open(out, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    while ((name = g_dir_read_name(dir)))
        g_ptr_array_add(names, g_strdup(name));
    g_ptr_array_sort(names, cmp_names);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static void
assert_same_file(const char *a, const char *b)
{
    g_autofree char *ca = NULL;
    g_autofree char *cb = NULL;
    gsize la = 0;
    gsize lb = 0;

    g_assert_true(g_file_get_contents(a, &ca, &la, NULL));
    g_assert_true(g_file_get_contents(b, &cb, &lb, NULL));
    g_assert_cmpuint(la, ==, lb);
    g_assert_true(memcmp(ca, cb, la) == 0);
}

/* qemu-img convert -O raw of @path (as @format) compared with @ref. */
static void
assert_converts_to(const char *path, const char *format, const char *ref)
{
    g_autofree char *raw = at("out/converted.raw");
    const char *argv[] = { "qemu-img", "convert", "-f", format, "-O", "raw", path, raw, NULL };

    run_ok(argv, NULL);
    assert_same_file(raw, ref);
    g_assert_cmpint(unlink(raw), ==, 0);
}

static void
assert_check_clean(const char *path)
{
    const char *argv[] = { "qemu-img", "check", "-f", "qcow2", path, NULL };
    g_autofree char *out = NULL;

    run_ok(argv, &out);   /* exit status 0: no errors, no leaks */
    g_assert_nonnull(strstr(out, "No errors were found on the image."));
}

static BackupJob *
start(Store *store, const char *domain, const char *xml, GError **error)
{
    return backup_job_start(store, domain, xml, strlen(xml), NULL, error);
}

static BackupJob *
start_ok(Store *store, const char *xml)
{
    g_autoptr(GError) error = NULL;
    BackupJob *job = start(store, "vm", xml, &error);

    g_assert_no_error(error);
    g_assert_nonnull(job);
    return job;
}

static void
assert_completed(BackupJob *job)
{
    g_autofree char *line = NULL;
    g_autofree char *reason = NULL;
    BackupJobState state;
    guint64 done;
    guint64 total;

    g_assert_cmpint(backup_job_wait(job), ==, BACKUP_JOB_COMPLETED);
    backup_job_status(job, &state, &done, &total, NULL, &reason);
    g_assert_null(reason);
    g_assert_cmpuint(total, >, 0);
    g_assert_cmpuint(done, ==, total);
    g_assert_false(backup_job_is_running(job));
    line = backup_job_describe(job);
    g_assert_true(g_regex_match_simple("^backup completed ([0-9]+)/\\1 bytes [0-9]+\\.[0-9] MB/s\n$",
                                       line, 0, 0));
}

static char *
disk_xml(const char *name, const char *format, const char *target)
{
    return g_strdup_printf("    <disk name='%s' type='file'>\n"
                           "      <driver type='%s'/>\n"
                           "      <target file='%s'/>\n"
                           "    </disk>\n", name, format, target);
}

static void
test_full_raw(void)
{
    g_autoptr(Store) store = open_store();
    g_autofree char *target = at("out/vda.raw");
    g_autofree char *target_b = at("out/vdb.raw");
    g_autofree char *ref = at("ref.raw");
    g_autofree char *ref_b = at("ref-vdb.raw");
    g_autofree char *d1 = disk_xml("vda", "raw", target);
    g_autofree char *d2 = disk_xml("vdb", "raw", target_b);
    g_autofree char *xml = g_strdup_printf("<domainbackup mode='push'>\n  <disks>\n%s%s"
                                           "  </disks>\n</domainbackup>\n", d1, d2);
    g_autoptr(BackupJob) job = NULL;
    g_autofree char *names = NULL;
    struct stat st;

    clean_out();
    job = start_ok(store, xml);
    assert_completed(job);
    assert_same_file(target, ref);
    assert_same_file(target_b, ref_b);
    /* sparse: 48 MiB disk with about 35 MiB of non-zero data */
    g_assert_cmpint(stat(target, &st), ==, 0);
    g_assert_cmpint(st.st_size, ==, 48 << 20);
    g_assert_cmpint((gint64)st.st_blocks * 512, <, 40 << 20);
    names = list_out();
    g_assert_cmpstr(names, ==, "vda.raw vdb.raw");   /* no temporary file left */
}

static void
test_full_qcow2(void)
{
    g_autoptr(Store) store = open_store();
    g_autoptr(GError) error = NULL;
    g_autofree char *target = at("out/vda.qcow2");
    g_autofree char *ref = at("ref.raw");
    g_autofree char *d1 = disk_xml("vda", "qcow2", target);
    g_autofree char *xml = g_strdup_printf("<domainbackup>\n  <disks>\n%s"
                                           "  </disks>\n</domainbackup>\n", d1);
    g_autoptr(BackupJob) job = NULL;
    g_autoptr(QcowInfo) info = NULL;
    g_autoptr(StorageSource) src = storage_source_new();
    g_autoptr(Chain) chain = NULL;
    g_autoptr(Image) img = NULL;
    g_autofree char *names = NULL;
    guint64 data;

    clean_out();
    job = start_ok(store, xml);
    assert_completed(job);
    assert_check_clean(target);
    assert_converts_to(target, "qcow2", ref);
    info = qcow_info_read(target, "qcow2", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(info->version, ==, 3);
    g_assert_cmpuint(info->cluster_size, ==, 65536);
    g_assert_null(info->backing_name);
    g_assert_cmpuint(info->virtual_size, ==, 48 << 20);
    /* clusters that read as zero are not allocated: 0..256k (a zero cluster over
     * data), 5M..5M+128k (zeros written as data), 6M..6M+64k (zero cluster) */
    src->type = STORAGE_TYPE_FILE;
    src->path = g_strdup(target);
    src->format = g_strdup("qcow2");
    chain = chain_resolve(src, "vda");
    img = image_open(chain, 0, &error);
    g_assert_no_error(error);
    g_assert_true(image_seek(img, 0, TRUE, &data, &error));
    g_assert_cmpuint(data, ==, 256 << 10);
    g_assert_true(image_seek(img, 5 << 20, TRUE, &data, &error));   /* 5M..6M+64k: zeros */
    g_assert_cmpuint(data, ==, (6 << 20) + (64 << 10));
    g_assert_true(image_seek(img, 6 << 20, TRUE, &data, &error));
    g_assert_cmpuint(data, ==, (6 << 20) + (64 << 10));
    /* the allocated bytes are the non-zero clusters: ~35 MiB plus metadata */
    g_assert_cmpuint(info->file_size, <, 38 << 20);
    names = list_out();
    g_assert_cmpstr(names, ==, "vda.qcow2");
}

/* <domainbackup/>: every disk with media, default names next to the images,
 * qcow2 by default, and the aligned XML validates against libvirt's schema. */
static void
test_defaults(void)
{
    g_autoptr(Store) store = open_store();
    g_autoptr(GError) error = NULL;
    g_autoptr(BackupJob) job = start_ok(store, "<domainbackup/>");
    g_autofree char *xml = backup_job_xml(job);
    g_autofree char *rng = g_build_filename(xmlutil_schema_dir(), "domainbackup.rng", NULL);
    g_autoptr(GMatchInfo) m = NULL;
    g_autoptr(GRegex) re = NULL;
    g_autoptr(GRegex) re_b = NULL;
    g_autofree char *vda_target = NULL;
    g_autofree char *vdb_target = NULL;
    g_autofree char *ref = at("ref.raw");
    g_autofree char *ref_b = at("ref-vdb.raw");
    g_autofree char *pattern = g_strdup_printf("<target file='(%s/images/top\\.qcow2\\.[0-9]+)'/>",
                                               root);
    xmlDoc *doc;

    assert_completed(job);
    doc = xmlutil_read(xml, strlen(xml), "domainbackup", &error);
    g_assert_no_error(error);
    g_assert_true(xmlutil_validate_rng(doc, rng, &error));
    g_assert_no_error(error);
    xmlFreeDoc(doc);
    g_assert_nonnull(strstr(xml, "<disk name='vda' backup='yes' type='file' backupmode='full'>\n"
                                 "      <driver type='qcow2'/>\n"));
    g_assert_nonnull(strstr(xml, "<disk name='hdc' backup='no'/>"));
    g_assert_true(g_regex_match_simple(pattern, xml, 0, 0));
    re = g_regex_new(pattern, 0, 0, NULL);
    g_regex_match(re, xml, 0, &m);
    vda_target = g_match_info_fetch(m, 1);
    g_clear_pointer(&m, g_match_info_free);
    g_free(pattern);
    pattern = g_strdup_printf("<target file='(%s/images/vdb\\.raw\\.[0-9]+)'/>", root);
    re_b = g_regex_new(pattern, 0, 0, NULL);
    g_regex_match(re_b, xml, 0, &m);
    vdb_target = g_match_info_fetch(m, 1);
    g_assert_nonnull(vda_target);
    g_assert_nonnull(vdb_target);
    assert_check_clean(vda_target);
    assert_check_clean(vdb_target);   /* 1 MiB + 1000 bytes: a padded last cluster */
    assert_converts_to(vda_target, "qcow2", ref);
    assert_converts_to(vdb_target, "qcow2", ref_b);
    g_assert_cmpint(unlink(vda_target), ==, 0);
    g_assert_cmpint(unlink(vdb_target), ==, 0);
}

/* An increment since @snap rebuilt on a full backup of @snap's image equals the
 * current disk. */
static void
check_incremental(const char *snap, const char *snap_image, const char *snap_format,
                  const char *unchanged_off, const char *unchanged_len)
{
    g_autoptr(Store) store = open_store();
    g_autoptr(GError) error = NULL;
    g_autofree char *target = at("out/inc.qcow2");
    g_autofree char *full = at("out/full.qcow2");
    g_autofree char *image = at(snap_image);
    g_autofree char *ref = at("ref.raw");
    g_autofree char *xml = g_strdup_printf("<domainbackup>\n  <incremental>%s</incremental>\n"
                                           "  <disks>\n    <disk name='vda' type='file'>\n"
                                           "      <target file='%s'/>\n    </disk>\n"
                                           "    <disk name='vdb' backup='no'/>\n"
                                           "  </disks>\n</domainbackup>\n", snap, target);
    g_autoptr(BackupJob) job = NULL;
    g_autoptr(QcowInfo) info = NULL;
    g_autofree char *alloc = NULL;
    g_autofree char *cmd = g_strdup_printf("alloc %s %s", unchanged_off, unchanged_len);
    const char *qio[] = { "qemu-io", "-f", "qcow2", "-c", cmd, target, NULL };
    const char *fullargv[] = { "qemu-img", "convert", "-f", snap_format, "-O", "qcow2",
                               image, full, NULL };
    const char *rebase[] = { "qemu-img", "rebase", "-u", "-F", "qcow2", "-b", full, target,
                             NULL };
    g_autofree char *bxml = NULL;

    clean_out();
    job = start_ok(store, xml);
    assert_completed(job);
    bxml = backup_job_xml(job);
    g_assert_nonnull(strstr(bxml, "backupmode='incremental'"));
    info = qcow_info_read(target, "qcow2", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(info->backing_name, ==, image);
    g_assert_cmpstr(info->backing_format, ==, snap_format);
    assert_check_clean(target);
    /* the increment on S's own image is already the current disk */
    assert_converts_to(target, "qcow2", ref);
    /* what only S's chain holds is not in the increment */
    run_ok(qio, &alloc);
    g_free(cmd);
    cmd = g_strdup_printf("0/%s bytes allocated", unchanged_len);
    g_assert_nonnull(strstr(alloc, cmd));
    /* the documented restore: rebase onto a full backup of S, convert */
    run_ok(fullargv, NULL);
    run_ok(rebase, NULL);
    assert_converts_to(target, "qcow2", ref);
}

static void
test_incremental_s2(void)
{
    /* 1M..3M was written in mid.qcow2 only: below s2's overlay */
    check_incremental("s2", "images/mid.qcow2", "qcow2", "1048576", "2097152");
}

static void
test_incremental_s1(void)
{
    /* 8M+64k.. holds base.raw's data only */
    check_incremental("s1", "images/base.raw", "raw", "8454144", "1048576");
}

static void
test_cancel(void)
{
    g_autoptr(Store) store = open_store();
    g_autofree char *target = at("out/vda.raw");
    g_autofree char *d1 = disk_xml("vda", "raw", target);
    g_autofree char *xml = g_strdup_printf("<domainbackup>\n  <disks>\n%s"
                                           "  </disks>\n</domainbackup>\n", d1);
    g_autoptr(BackupJob) job = NULL;
    g_autofree char *names = NULL;
    g_autofree char *line = NULL;

    clean_out();
    job = start_ok(store, xml);
    backup_job_cancel(job);    /* checked before every 256 KiB chunk and before the rename */
    g_assert_cmpint(backup_job_wait(job), ==, BACKUP_JOB_CANCELLED);
    names = list_out();
    g_assert_cmpstr(names, ==, "");
    line = backup_job_describe(job);
    g_assert_true(g_str_has_prefix(line, "backup cancelled "));
}

static void
test_exists(void)
{
    g_autoptr(Store) store = open_store();
    g_autoptr(GError) error = NULL;
    g_autofree char *target = at("out/vda.qcow2");
    g_autofree char *d1 = disk_xml("vda", "qcow2", target);
    g_autofree char *xml = g_strdup_printf("<domainbackup>\n  <disks>\n%s"
                                           "  </disks>\n</domainbackup>\n", d1);
    g_autofree char *expected = g_strdup_printf("target file '%s' already exists", target);
    g_autofree char *contents = NULL;
    g_autofree char *names = NULL;
    BackupJob *job;

    clean_out();
    write_file(target, "precious");
    job = start(store, "vm", xml, &error);
    g_assert_null(job);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_EXISTS);
    g_assert_cmpstr(error->message, ==, expected);
    g_assert_true(g_file_get_contents(target, &contents, NULL, NULL));
    g_assert_cmpstr(contents, ==, "precious");
    names = list_out();
    g_assert_cmpstr(names, ==, "vda.qcow2");
}

static void
test_pull_refused(void)
{
    g_autoptr(Store) store = open_store();
    g_autoptr(GError) error = NULL;
    BackupJob *job = start(store, "vm", "<domainbackup mode='pull'>\n"
                           "  <server transport='tcp' name='localhost' port='10809'/>\n"
                           "</domainbackup>\n", &error);

    g_assert_null(job);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED);
    g_assert_cmpstr(error->message, ==, "pull mode backups need a running domain; "
                                        "snapfs only does push backups");
}

typedef struct {
    const char *domain;
    const char *xml;     /* %s: the out/ directory */
    int code;
    const char *message; /* substring */
} Refusal;

static void
test_refusals(void)
{
    static const Refusal cases[] = {
        { "vm", "<domainbackup mode='bogus'/>", CORE_ERROR_PARSE, "Invalid attribute mode" },
        { "vm", "<domainbackup><server name='localhost' port='1'/></domainbackup>", CORE_ERROR_PARSE,
          "Extra element server" },
        { "vm", "<domainbackup><disks><disk name='vdz' type='file'><target file='%s/z'/>"
                "</disk></disks></domainbackup>", CORE_ERROR_NOT_FOUND,
          "no disk named 'vdz'" },
        { "vm", "<domainbackup><disks><disk name='vda' type='file'><target file='%s/a'/>"
                "</disk><disk name='vda' type='file'><target file='%s/b'/></disk></disks>"
                "</domainbackup>", CORE_ERROR_INVALID, "disk 'vda' specified twice" },
        { "vm", "<domainbackup><disks><disk name='vda' type='file' backupmode='incremental'>"
                "<target file='%s/a'/></disk></disks></domainbackup>", CORE_ERROR_INVALID,
          "'incremental' backup mode of disk 'vda' requires setting 'incremental' field "
          "for disk or backup" },
        { "blk", "<domainbackup/>", CORE_ERROR_INVALID,
          "refusing to generate file name for disk 'vda'" },
        { "vm", "<domainbackup><disks><disk name='vda' type='network'><target file='%s/a'/>"
                "</disk></disks></domainbackup>", CORE_ERROR_PARSE, "Extra element disks" },
        /* the RNG refuses these before libvirt's own checks can */
        { "vm", "<domainbackup mode='pull'><server transport='rdma' name='h' port='1'/>"
                "</domainbackup>", CORE_ERROR_PARSE, "Extra element server" },
        { "vm", "<domainbackup mode='pull'><server transport='unix' socket='rel.sock'/>"
                "</domainbackup>", CORE_ERROR_PARSE, "Extra element server" },
        { "vm", "<domainbackup><disks><disk name='vda'/></disks></domainbackup>", CORE_ERROR_PARSE,
          "Extra element disks" },
        { "vm", "<domainbackup><disks><disk name='hdc' type='file'><target file='%s/c'/>"
                "</disk></disks></domainbackup>", CORE_ERROR_INVALID,
          "disk 'hdc' has no media" },
        { "nodisk", "<domainbackup/>", CORE_ERROR_INVALID,
          "domain must have at least one disk to perform backup" },
        { "vm", "<domainbackup><disks><disk name='vda' backup='no'/>"
                "<disk name='vdb' backup='no'/></disks></domainbackup>",
          CORE_ERROR_INVALID, "no disks selected for backup" },
        { "nosuch", "<domainbackup/>", CORE_ERROR_NOT_FOUND,
          "no domain with matching name 'nosuch'" },
        { "vm", "<domainbackup><incremental>nope</incremental><disks><disk name='vda' "
                "type='file'><target file='%s/a'/></disk></disks></domainbackup>",
          CORE_ERROR_NOT_FOUND,
          "Domain snapshot not found: no domain snapshot with matching name 'nope'" },
        { "vm", "<domainbackup><incremental>s3</incremental><disks><disk name='vda' "
                "type='file'><target file='%s/a'/></disk></disks></domainbackup>",
          CORE_ERROR_INVALID, "snapshot 's3' is not one" },
        { "vm", "<domainbackup><incremental>s2</incremental><disks><disk name='vda' "
                "type='file'><driver type='raw'/><target file='%s/a'/></disk></disks>"
                "</domainbackup>", CORE_ERROR_UNSUPPORTED,
          "incremental backup of disk 'vda' needs a qcow2 target" },
        { "vm", "<domainbackup><disks><disk name='vda' type='file'><driver type='vmdk'/>"
                "<target file='%s/a'/></disk></disks></domainbackup>",
          CORE_ERROR_UNSUPPORTED, "backup target format 'vmdk' of disk 'vda' is not supported" },
        { "vm", "<domainbackup><disks><disk name='vda' type='file'><target file='%s/a'/>"
                "</disk><disk name='vdb' type='file'><target file='%s/a'/></disk></disks>"
                "</domainbackup>", CORE_ERROR_INVALID, "have the same backup target" },
    };
    g_autoptr(Store) store = open_store();
    g_autofree char *out = at("out");

    clean_out();
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *xml = g_strdup_printf(cases[i].xml, out, out);
        g_autofree char *names = NULL;
        BackupJob *job = start(store, cases[i].domain, xml, &error);

        g_test_message("case %u: %s", i, error ? error->message : "(no error)");
        g_assert_null(job);
        g_assert_nonnull(error);
        g_assert_error(error, CORE_ERROR, cases[i].code);
        g_assert_nonnull(strstr(error->message, cases[i].message));
        names = list_out();
        g_assert_cmpstr(names, ==, "");   /* nothing written */
    }
}

static void
test_busy(void)
{
    g_autoptr(Store) store = open_store();
    g_autoptr(GError) error = NULL;
    g_autofree char *target = at("out/vda.raw");
    g_autofree char *d1 = disk_xml("vda", "raw", target);
    g_autofree char *xml = g_strdup_printf("<domainbackup>\n  <disks>\n%s"
                                           "  </disks>\n</domainbackup>\n", d1);
    g_autoptr(BackupJob) job = NULL;

    clean_out();
    g_assert_true(backup_job_check_idle(NULL, &error));
    job = start_ok(store, xml);
    backup_job_wait(job);
    g_assert_true(backup_job_check_idle(job, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(backup_job_domain(job), ==, "vm");
}

/* An empty overlay from qcow2w_create_overlay() is qemu-img create's file byte for
 * byte (qemu 7.2), for sizes up to the one-cluster L1 limit and odd names. */
static void
test_overlay_bytes(void)
{
    static const guint64 sizes[] = { 512, 1 << 20, 1ULL << 30, 10 * (1ULL << 30) + 3 * 512,
                                     (1ULL << 40) + (1 << 16), 4ULL << 40 };
    static const char *const formats[] = { "qcow2", "raw" };
    g_autofree char *dir = g_build_filename(root, "overlays", NULL);
    g_autofree char *longname = g_strnfill(900, 'b');
    const char *names[] = { "/images/base.qcow2", "relative base, with comma", NULL };

    names[2] = longname;
    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    for (guint i = 0; i < G_N_ELEMENTS(sizes); i++) {
        for (guint j = 0; j < G_N_ELEMENTS(formats); j++) {
            for (guint k = 0; k < G_N_ELEMENTS(names); k++) {
                g_autofree char *ours = g_build_filename(dir, "ours.qcow2", NULL);
                g_autofree char *theirs = g_build_filename(dir, "theirs.qcow2", NULL);
                g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, sizes[i]);
                g_autofree char *a = NULL;
                g_autofree char *b = NULL;
                g_autoptr(GError) error = NULL;
                gsize alen = 0, blen = 0;
                const char *argv[] = { "qemu-img", "create", "-q", "-u", "-f", "qcow2", "-F",
                                       formats[j], "-b", names[k], theirs, size, NULL };
                int fd;

                g_assert_true(qcow2w_overlay_supported(sizes[i], names[k], formats[j]));
                unlink(theirs);
                run_ok(argv, NULL);
                fd = open(ours, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                g_assert_cmpint(fd, >=, 0);
                g_assert_true(qcow2w_create_overlay(fd, ours, sizes[i], names[k], formats[j],
                                                   &error));
                g_assert_no_error(error);
                close(fd);
                g_assert_true(g_file_get_contents(ours, &a, &alen, NULL));
                g_assert_true(g_file_get_contents(theirs, &b, &blen, NULL));
                if (alen != blen || memcmp(a, b, alen) != 0)
                    g_error("overlay of %s bytes over '%s' (%s) differs from qemu-img's "
                            "(%zu vs %zu bytes)", size, names[k], formats[j], alen, blen);
            }
        }
    }
    /* Outside what it does: qemu-img create instead. */
    g_assert_false(qcow2w_overlay_supported(0, "b", "qcow2"));
    g_assert_false(qcow2w_overlay_supported(1000, "b", "qcow2"));
    g_assert_false(qcow2w_overlay_supported((4ULL << 40) + 512, "b", "qcow2"));
    g_assert_false(qcow2w_overlay_supported(1 << 20, "b", NULL));
    g_assert_false(qcow2w_overlay_supported(1 << 20, NULL, "qcow2"));
}

int
main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    setup();
    g_test_add_func("/job/full-raw", test_full_raw);
    g_test_add_func("/job/full-qcow2", test_full_qcow2);
    g_test_add_func("/job/defaults", test_defaults);
    g_test_add_func("/job/incremental-s2", test_incremental_s2);
    g_test_add_func("/job/incremental-s1", test_incremental_s1);
    g_test_add_func("/job/cancel", test_cancel);
    g_test_add_func("/job/exists", test_exists);
    g_test_add_func("/job/pull-refused", test_pull_refused);
    g_test_add_func("/job/refusals", test_refusals);
    g_test_add_func("/job/busy", test_busy);
    g_test_add_func("/job/overlay-bytes", test_overlay_bytes);
    ret = g_test_run();
    teardown();
    return ret;
}
