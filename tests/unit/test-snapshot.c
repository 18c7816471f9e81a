/* test-snapshot.c: <domainsnapshot> parse modes, defaults, libvirt texts, alignment, names. */
#include <glib/gstdio.h>
#include <string.h>

#include "error.h"
#include "snapshot.h"

#include "xml2xml.h"

/* xml2xml cases: the flags come from the case name's prefix.
 *   create-    create on an inactive VM (SNAPSHOT_PARSE_OFFLINE). creationTime is
 *              "now" on create, so the callback forces it to TEST_CREATION_TIME
 *              before formatting; create cases therefore name their snapshot
 *              (the default name is checked in /snapshot/create/defaults).
 *   redefine-  REDEFINE, formatted SECURE (as metadata files and dumpxml
 *              --security-info are).
 *   internal-  REDEFINE|INTERNAL (a metadata file), formatted SECURE|INTERNAL.
 *   public-    REDEFINE, formatted without SECURE (plain snapshot-dumpxml).
 *   align-     REDEFINE, then snapshot_redefine_prep() against the snapshot's own
 *              <domain> as a new snapshot, formatted SECURE. */
#define TEST_CREATION_TIME G_GINT64_CONSTANT(1600000000)

#define TEST_UUID "c7a5fdbd-edaf-9455-926a-d65c16db1809"

static char *
test_snapshot_xml2xml(const char *name, const char *buf, gsize len, GError **error)
{
    g_autoptr(SnapshotDef) def = NULL;
    guint pflags = 0;
    guint fflags = SNAPSHOT_FORMAT_SECURE;
    gboolean create = FALSE;
    gboolean align = FALSE;

    if (g_str_has_prefix(name, "create-")) {
        pflags = SNAPSHOT_PARSE_OFFLINE;
        create = TRUE;
    } else if (g_str_has_prefix(name, "redefine-")) {
        pflags = SNAPSHOT_PARSE_REDEFINE;
    } else if (g_str_has_prefix(name, "internal-")) {
        pflags = SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_INTERNAL;
        fflags |= SNAPSHOT_FORMAT_INTERNAL;
    } else if (g_str_has_prefix(name, "public-")) {
        pflags = SNAPSHOT_PARSE_REDEFINE;
        fflags = 0;
    } else if (g_str_has_prefix(name, "align-")) {
        pflags = SNAPSHOT_PARSE_REDEFINE;
        align = TRUE;
    } else {
        g_error("snapshot xml2xml case '%s' has no known prefix", name);
    }
    if (!(def = snapshot_parse(buf, len, pflags, error)))
        return NULL;
    if (create)
        def->creation_time = TEST_CREATION_TIME;
    if (align && !snapshot_redefine_prep(def, NULL, def->dom, FALSE, error))
        return NULL;
    return snapshot_format(def, fflags);
}

/* A domain with @ndisks file disks vda, vdb... whose sources are @paths. */
static DomainDef *
test_domain(const char *const *paths, const char *extra)
{
    g_autoptr(GString) xml = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    DomainDef *dom;

    g_string_append(xml, "<domain type='kvm'>\n  <name>test</name>\n  <uuid>" TEST_UUID
                         "</uuid>\n  <memory unit='KiB'>1048576</memory>\n"
                         "  <vcpu placement='static'>1</vcpu>\n"
                         "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n"
                         "  <devices>\n");
    for (guint i = 0; paths && paths[i]; i++) {
        g_autofree char *esc = g_markup_escape_text(paths[i], -1);

        g_string_append_printf(xml,
                               "    <disk type='file' device='disk'>\n"
                               "      <driver name='qemu' type='qcow2'/>\n"
                               "      <source file='%s'/>\n"
                               "      <target dev='vd%c' bus='virtio'/>\n"
                               "    </disk>\n", esc, 'a' + i);
    }
    if (extra)
        g_string_append(xml, extra);
    g_string_append(xml, "  </devices>\n</domain>\n");
    dom = domain_parse(xml->str, xml->len, DOMAIN_PARSE_INACTIVE, &error);
    g_assert_no_error(error);
    g_assert_nonnull(dom);
    return dom;
}

static SnapshotDef *
test_parse(const char *xml, guint flags)
{
    g_autoptr(GError) error = NULL;
    SnapshotDef *def = snapshot_parse(xml, strlen(xml), flags, &error);

    g_assert_no_error(error);
    g_assert_nonnull(def);
    return def;
}

static SnapDiskDef *
test_disk(const SnapshotDef *def, guint i)
{
    g_assert_cmpuint(i, <, def->disks->len);
    return def->disks->pdata[i];
}

static void
test_create_defaults(void)
{
    const char *xml = "<domainsnapshot>\n"
                      "  <state>running</state>\n"
                      "  <parent><name>p</name></parent>\n"
                      "  <creationTime>5</creationTime>\n"
                      "  <domain type='kvm'><name>x</name></domain>\n"
                      "  <inactiveDomain type='kvm'><name>x</name></inactiveDomain>\n"
                      "  <cookie><cpu mode='host-model'/></cookie>\n"
                      "  <active>1</active>\n"
                      "</domainsnapshot>\n";
    gint64 before = g_get_real_time() / G_USEC_PER_SEC;
    g_autoptr(SnapshotDef) def = test_parse(xml, 0);
    gint64 after = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *expect_name = g_strdup_printf("%" G_GINT64_FORMAT, def->creation_time);
    g_autofree char *out = NULL;
    g_autofree char *expect = NULL;

    /* creationTime = now in whole seconds, the name its decimal form. */
    g_assert_cmpint(def->creation_time, >=, before);
    g_assert_cmpint(def->creation_time, <=, after);
    g_assert_cmpstr(def->name, ==, expect_name);
    /* state, parent, creationTime, domains, cookie, active come from elsewhere. */
    g_assert_cmpint(def->state, ==, SNAP_STATE_NOSTATE);
    g_assert_null(def->parent);
    g_assert_null(def->dom);
    g_assert_null(def->inactive_dom);
    g_assert_false(def->has_legacy_uuid);
    g_assert_null(def->cookie);
    g_assert_cmpint(def->active, ==, -1);
    /* No memory default on create: the caller decides from the VM state. */
    g_assert_cmpint(def->memory, ==, SNAP_LOC_DEFAULT);
    out = snapshot_format(def, SNAPSHOT_FORMAT_SECURE | SNAPSHOT_FORMAT_INTERNAL);
    expect = g_strdup_printf("<domainsnapshot>\n  <name>%s</name>\n"
                             "  <creationTime>%s</creationTime>\n  <active>0</active>\n"
                             "</domainsnapshot>\n", expect_name, expect_name);
    g_assert_cmpstr(out, ==, expect);
}

static void
test_create_named(void)
{
    g_autoptr(SnapshotDef) def = test_parse("<domainsnapshot><name>c1</name>"
                                            "<memory file='/m.save'/></domainsnapshot>", 0);

    g_assert_cmpstr(def->name, ==, "c1");
    g_assert_cmpint(def->memory, ==, SNAP_LOC_EXTERNAL);
    g_assert_cmpstr(def->memory_file, ==, "/m.save");
    g_assert_true(snapshot_is_external(def));
}

static void
test_redefine_memory_defaults(void)
{
    static const struct {
        const char *state;
        const char *memory;
        SnapLocation expect;
    } cases[] = {
        { "running", "", SNAP_LOC_INTERNAL },
        { "paused", "", SNAP_LOC_INTERNAL },
        { "crashed", "", SNAP_LOC_INTERNAL },
        { "shutoff", "", SNAP_LOC_NO },
        { "disk-snapshot", "", SNAP_LOC_NO },
        { "running", "<memory file='/m'/>", SNAP_LOC_EXTERNAL },
        { "running", "<memory snapshot='no'/>", SNAP_LOC_NO },
        { "shutoff", "<memory snapshot='no'/>", SNAP_LOC_NO },
        { "running", "<memory/>", SNAP_LOC_INTERNAL },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *xml = g_strdup_printf("<domainsnapshot><name>s</name><state>%s</state>"
                                               "<creationTime>1</creationTime>%s"
                                               "</domainsnapshot>", cases[i].state,
                                               cases[i].memory);
        g_autoptr(SnapshotDef) def = test_parse(xml, SNAPSHOT_PARSE_REDEFINE);

        g_assert_cmpint(def->memory, ==, cases[i].expect);
        g_assert_cmpint(def->creation_time, ==, 1);
    }
}

static void
test_redefine_fields(void)
{
    g_autoptr(SnapshotDef) def = test_parse(
        "<domainsnapshot><name>s1</name><description>d</description><state>running</state>"
        "<parent><name>p0</name></parent><creationTime> 42</creationTime>"
        "<domain><uuid>C7A5FDBD-EDAF-9455-926A-D65C16DB1809</uuid></domain>"
        "<cookie><cpu mode='host-model'/></cookie>"
        "<disks><disk name='vda' snapshot='no'/><disk name='vdb'><source file='/x.s1'/>"
        "<snapshotDeleteInProgress/></disk></disks></domainsnapshot>",
        SNAPSHOT_PARSE_REDEFINE);
    char uuid[UTIL_UUID_STRLEN + 1];

    g_assert_cmpstr(def->name, ==, "s1");
    g_assert_cmpstr(def->description, ==, "d");
    g_assert_cmpint(def->state, ==, SNAP_STATE_RUNNING);
    g_assert_cmpstr(def->parent, ==, "p0");
    g_assert_cmpint(def->creation_time, ==, 42);
    g_assert_null(def->dom);
    g_assert_true(def->has_legacy_uuid);
    util_uuid_format(def->legacy_uuid, uuid);
    g_assert_cmpstr(uuid, ==, TEST_UUID);
    g_assert_cmpstr(def->cookie, ==, "<cookie>\n  <cpu mode='host-model'/>\n</cookie>\n");
    g_assert_cmpuint(def->disks->len, ==, 2);
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_NO);
    g_assert_false(test_disk(def, 0)->delete_in_progress);
    g_assert_cmpint(test_disk(def, 1)->snapshot, ==, SNAP_LOC_EXTERNAL);
    g_assert_cmpint(test_disk(def, 1)->src->type, ==, STORAGE_TYPE_FILE);
    g_assert_cmpstr(test_disk(def, 1)->src->path, ==, "/x.s1");
    g_assert_true(test_disk(def, 1)->delete_in_progress);
    g_assert_true(snapshot_is_external(def));
}

static void
test_delete_in_progress_create(void)
{
    /* <snapshotDeleteInProgress/> is read only under REDEFINE. */
    g_autoptr(SnapshotDef) def = test_parse(
        "<domainsnapshot><name>c</name><disks><disk name='vda'>"
        "<snapshotDeleteInProgress/></disk></disks></domainsnapshot>", SNAPSHOT_PARSE_OFFLINE);
    g_autofree char *out = NULL;

    g_assert_false(test_disk(def, 0)->delete_in_progress);
    test_disk(def, 0)->delete_in_progress = TRUE;
    def->creation_time = 0;
    out = snapshot_format(def, 0);
    g_assert_cmpstr(out, ==, "<domainsnapshot>\n  <name>c</name>\n  <disks>\n"
                             "    <disk name='vda'>\n      <snapshotDeleteInProgress/>\n"
                             "    </disk>\n  </disks>\n</domainsnapshot>\n");
}

static void
test_disk_sources(void)
{
    /* Any element under <disks> is a disk; raw is a known driver (the RNG
     * refuses it, libvirt's parser does not); tcp is not printed. */
    g_autoptr(SnapshotDef) def = test_parse(
        "<domainsnapshot><name>s</name><state>disk-snapshot</state><creationTime>1</creationTime>"
        "<disks><disk name='vda'><driver type='raw'/></disk>"
        "<thing name='vdb' type='network'><source protocol='rbd' name='pool/img'>"
        "<host name='mon' port='6789' transport='tcp'/></source></thing>"
        "<disk name='vdc' type='network'><source protocol='nbd'/></disk>"
        "<disk name='vdd' type='nvme'/></disks></domainsnapshot>",
        SNAPSHOT_PARSE_REDEFINE);
    g_autofree char *out = snapshot_format(def, 0);

    g_assert_cmpuint(def->disks->len, ==, 4);
    g_assert_cmpstr(test_disk(def, 0)->src->format, ==, "raw");
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_EXTERNAL);
    g_assert_cmpstr(test_disk(def, 1)->name, ==, "vdb");
    g_assert_cmpint(test_disk(def, 1)->snapshot, ==, SNAP_LOC_EXTERNAL);
    g_assert_cmpstr(test_disk(def, 1)->src->protocol, ==, "rbd");
    /* an nbd source without a name is not a path: the mode stays unset */
    g_assert_cmpint(test_disk(def, 2)->snapshot, ==, SNAP_LOC_DEFAULT);
    g_assert_cmpint(test_disk(def, 3)->src->type, ==, STORAGE_TYPE_NVME);
    g_assert_cmpstr(out, ==,
                    "<domainsnapshot>\n  <name>s</name>\n  <state>disk-snapshot</state>\n"
                    "  <creationTime>1</creationTime>\n  <memory snapshot='no'/>\n  <disks>\n"
                    "    <disk name='vda' snapshot='external' type='file'>\n"
                    "      <driver type='raw'/>\n    </disk>\n"
                    "    <disk name='vdb' snapshot='external' type='network'>\n"
                    "      <source protocol='rbd' name='pool/img'>\n"
                    "        <host name='mon' port='6789'/>\n      </source>\n    </disk>\n"
                    "    <disk name='vdc'/>\n    <disk name='vdd'/>\n"
                    "  </disks>\n</domainsnapshot>\n");
}

static void
test_internal_active(void)
{
    static const struct {
        const char *text;
        int expect;
    } cases[] = { { "0", 0 }, { "1", 1 }, { "-3", 1 }, { " 2", 1 } };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *xml = g_strdup_printf("<domainsnapshot><name>s</name>"
                                               "<state>shutoff</state>"
                                               "<creationTime>1</creationTime>"
                                               "<active>%s</active></domainsnapshot>",
                                               cases[i].text);
        g_autoptr(SnapshotDef) def = test_parse(xml, SNAPSHOT_PARSE_REDEFINE |
                                                         SNAPSHOT_PARSE_INTERNAL);
        g_autoptr(SnapshotDef) plain = test_parse(xml, SNAPSHOT_PARSE_REDEFINE);

        g_assert_cmpint(def->active, ==, cases[i].expect);
        g_assert_cmpint(plain->active, ==, -1);
    }
}

/* Every parse error text, with its code. */
static void
test_parse_errors(void)
{
#define RD SNAPSHOT_PARSE_REDEFINE
#define HDR "<domainsnapshot><name>s</name><state>shutoff</state><creationTime>1</creationTime>"
#define HDRON "<domainsnapshot><name>s</name><state>running</state><creationTime>1</creationTime>"
#define DISK(x) HDR "<disks>" x "</disks></domainsnapshot>"
    static const struct {
        guint flags;
        const char *xml;
        int code;
        const char *msg;
    } cases[] = {
        { RD, "<domainsnapshot/>", CORE_ERROR_PARSE, "a redefined snapshot must have a name" },
        { RD, "<domainsnapshot><name>s</name><state>shutoff</state></domainsnapshot>",
          CORE_ERROR_PARSE, "missing creationTime from existing snapshot" },
        { RD, "<domainsnapshot><name>s</name><creationTime>99999999999999999999</creationTime>"
              "</domainsnapshot>", CORE_ERROR_PARSE,
          "missing creationTime from existing snapshot" },
        { RD, "<domainsnapshot><name>s</name><creationTime>1</creationTime></domainsnapshot>",
          CORE_ERROR_PARSE, "missing state from existing snapshot" },
        { RD, "<domainsnapshot><name>s</name><creationTime>1</creationTime><state>nostate</state>"
              "</domainsnapshot>", CORE_ERROR_PARSE,
          "Invalid state 'nostate' in domain snapshot XML" },
        { RD, HDRON "<memory snapshot='manual'/></domainsnapshot>", CORE_ERROR_UNSUPPORTED,
          "'manual' memory snapshot mode not supported" },
        { RD, HDRON "<memory snapshot='x'/></domainsnapshot>", CORE_ERROR_PARSE,
          "Invalid value for attribute 'snapshot' in element 'memory': 'x'." },
        { RD, HDRON "<memory snapshot='no' file='/m'/></domainsnapshot>", CORE_ERROR_INVALID,
          "memory filename '/m' requires external snapshot" },
        { RD, HDRON "<memory snapshot='external'/></domainsnapshot>", CORE_ERROR_INVALID,
          "external memory snapshots require a filename" },
        { RD, HDR "<memory snapshot='internal'/></domainsnapshot>", CORE_ERROR_INVALID,
          "memory state cannot be saved with offline or disk-only snapshot" },
        { SNAPSHOT_PARSE_OFFLINE, "<domainsnapshot><memory file='/m'/></domainsnapshot>",
          CORE_ERROR_INVALID, "memory state cannot be saved with offline or disk-only snapshot" },
        { 0, "<domainsnapshot><memory file='m'/></domainsnapshot>", CORE_ERROR_INVALID,
          "memory snapshot file path (m) must be absolute" },
        { RD, DISK("<disk/>"), CORE_ERROR_PARSE, "missing name from disk snapshot element" },
        { RD, DISK("<disk name='vda' snapshot='default'/>"), CORE_ERROR_PARSE,
          "Invalid value for attribute 'snapshot' in element 'disk': 'default'." },
        { RD, DISK("<foo name='vda' type='bar'/>"), CORE_ERROR_PARSE,
          "Invalid value for attribute 'type' in element 'foo': 'bar'." },
        { RD, DISK("<disk name='vda' type='volume'/>"), CORE_ERROR_UNSUPPORTED,
          "unsupported disk snapshot type 'volume'" },
        { RD, DISK("<disk name='vda' type='dir'/>"), CORE_ERROR_UNSUPPORTED,
          "unsupported disk snapshot type 'dir'" },
        { RD, DISK("<disk name='vda'><driver type='bogus'/></disk>"), CORE_ERROR_UNSUPPORTED,
          "unknown disk snapshot driver 'bogus'" },
        { RD, DISK("<disk name='vda'><source file='a/b'/></disk>"), CORE_ERROR_INVALID,
          "disk snapshot image path 'a/b' must be absolute" },
        { RD, DISK("<disk name='vda' type='network'><source name='x'/></disk>"), CORE_ERROR_PARSE,
          "missing network source protocol type" },
        { RD, DISK("<disk name='vda' type='network'><source protocol='x'/></disk>"),
          CORE_ERROR_PARSE, "unknown protocol type 'x'" },
        { RD, DISK("<disk name='vda'><driver><metadata_cache><max_size unit='zz'>1</max_size>"
                   "</metadata_cache></driver></disk>"), CORE_ERROR_INVALID,
          "unknown suffix 'zz'" },
        { RD, DISK("<disk name='vda'><driver><metadata_cache><max_size unit='EiB'>100</max_size>"
                   "</metadata_cache></driver></disk>"), CORE_ERROR_INVALID,
          "value too large: 100EiB" },
        { RD | SNAPSHOT_PARSE_INTERNAL, HDR "</domainsnapshot>", CORE_ERROR_PARSE,
          "Could not find 'active' element" },
        { RD | SNAPSHOT_PARSE_INTERNAL, HDR "<active></active></domainsnapshot>", CORE_ERROR_PARSE,
          "Could not find 'active' element" },
        { 0, "<snapshot/>", CORE_ERROR_PARSE,
          "unexpected root element <snapshot>, expecting <domainsnapshot>" },
    };
#undef DISK
#undef HDRON
#undef HDR
#undef RD

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(SnapshotDef) def = snapshot_parse(cases[i].xml, strlen(cases[i].xml),
                                                    cases[i].flags, &error);

        if (g_test_verbose())
            g_printerr("case %u: %s\n", i, cases[i].xml);
        g_assert_null(def);
        g_assert_error(error, CORE_ERROR, cases[i].code);
        g_assert_cmpstr(error->message, ==, cases[i].msg);
    }
}

static void
test_strings(void)
{
    static const char *const states[] = {
        "nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed",
        "pmsuspended", "disk-snapshot",
    };

    for (guint i = 0; i < G_N_ELEMENTS(states); i++) {
        g_assert_cmpstr(snapshot_state_to_string(i), ==, states[i]);
        g_assert_cmpint(snapshot_state_from_string(states[i]), ==, (int)i);
    }
    g_assert_cmpint(snapshot_state_from_string("Running"), ==, -1);
    g_assert_cmpint(snapshot_state_from_string(NULL), ==, -1);
    g_assert_cmpstr(snapshot_location_to_string(SNAP_LOC_DEFAULT), ==, "");
    g_assert_cmpstr(snapshot_location_to_string(SNAP_LOC_NO), ==, "no");
    g_assert_cmpstr(snapshot_location_to_string(SNAP_LOC_INTERNAL), ==, "internal");
    g_assert_cmpstr(snapshot_location_to_string(SNAP_LOC_EXTERNAL), ==, "external");
    g_assert_cmpstr(snapshot_location_to_string(SNAP_LOC_MANUAL), ==, "manual");
    g_assert_cmpint(snapshot_location_from_string("default"), ==, SNAP_LOC_DEFAULT);
    g_assert_cmpint(snapshot_location_from_string("external"), ==, SNAP_LOC_EXTERNAL);
    g_assert_cmpint(snapshot_location_from_string("bogus"), ==, -1);
}

static void
test_check_name(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(snapshot_check_name("s1", NULL));
    g_assert_true(snapshot_check_name("a.b c<&>", NULL));
    g_assert_false(snapshot_check_name("a/b", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "invalid snapshot name 'a/b': name can't contain '/'");
    g_clear_error(&error);
    g_assert_false(snapshot_check_name(".hidden", &error));
    g_assert_cmpstr(error->message, ==,
                    "invalid snapshot name '.hidden': name can't start with '.'");
    g_clear_error(&error);
    /* '/' is checked first. */
    g_assert_false(snapshot_check_name("./x", &error));
    g_assert_cmpstr(error->message, ==, "invalid snapshot name './x': name can't contain '/'");
}

static void
test_check_state(void)
{
    static const SnapState ok[] = {
        SNAP_STATE_RUNNING, SNAP_STATE_PAUSED, SNAP_STATE_SHUTDOWN, SNAP_STATE_SHUTOFF,
        SNAP_STATE_CRASHED,
    };
    g_autoptr(GError) error = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_assert_true(snapshot_check_state(ok[i], FALSE, NULL));
        g_assert_true(snapshot_check_state(ok[i], TRUE, NULL));
    }
    g_assert_true(snapshot_check_state(SNAP_STATE_DISK_SNAPSHOT, TRUE, NULL));
    g_assert_false(snapshot_check_state(SNAP_STATE_DISK_SNAPSHOT, FALSE, &error));
    g_assert_cmpstr(error->message, ==, "Invalid domain state disk-snapshot");
    g_clear_error(&error);
    g_assert_false(snapshot_check_state(SNAP_STATE_PMSUSPENDED, TRUE, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED);
    g_assert_cmpstr(error->message, ==,
                    "qemu doesn't support taking snapshots of PMSUSPENDED guests");
    g_clear_error(&error);
    g_assert_false(snapshot_check_state(SNAP_STATE_NOSTATE, TRUE, &error));
    g_assert_cmpstr(error->message, ==, "Invalid domain state nostate");
    g_clear_error(&error);
    g_assert_false(snapshot_check_state(SNAP_STATE_BLOCKED, TRUE, &error));
    g_assert_cmpstr(error->message, ==, "Invalid domain state blocked");
}

static void
test_external_name(void)
{
    static const char *const cases[][3] = {
        { "/images/base.qcow2", "s1", "/images/base.s1" },
        { "/images/data.raw", "ext1", "/images/data.ext1" },
        { "/images/base.ext1", "ext2", "/images/base.ext2" },
        { "/images/disk", "S", "/images/disk.S" },
        { "/var/lib/v1.d/disk", "S", "/var/lib/v1.d/disk.S" },
        { "/var/lib/v1.d/a.b.qcow2", "S", "/var/lib/v1.d/a.b.S" },
        { "/images/.hidden", "S", "/images/.S" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = snapshot_external_name(cases[i][0], cases[i][1]);

        g_assert_cmpstr(got, ==, cases[i][2]);
    }
}

static void
test_is_external(void)
{
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    SnapDiskDef *disk = snapshot_disk_def_new();

    g_assert_false(snapshot_is_external(def));
    disk->snapshot = SNAP_LOC_INTERNAL;
    g_ptr_array_add(def->disks, disk);
    g_assert_false(snapshot_is_external(def));
    disk->snapshot = SNAP_LOC_EXTERNAL;
    g_assert_true(snapshot_is_external(def));
    disk->snapshot = SNAP_LOC_NO;
    def->memory = SNAP_LOC_EXTERNAL;
    g_assert_true(snapshot_is_external(def));
}

static void
test_format_fields(void)
{
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    SnapDiskDef *disk = snapshot_disk_def_new();
    g_autofree char *out = NULL;

    def->name = g_strdup("n'1");
    def->description = g_strdup("a<b");
    def->state = SNAP_STATE_DISK_SNAPSHOT;
    def->parent = g_strdup("p&");
    def->creation_time = 7;
    def->memory = SNAP_LOC_NO;
    disk->name = g_strdup("vda");
    disk->snapshot = SNAP_LOC_EXTERNAL;
    disk->src->type = STORAGE_TYPE_BLOCK;
    disk->src->path = g_strdup("/dev/x");
    g_ptr_array_add(def->disks, disk);
    disk = snapshot_disk_def_new();
    disk->name = g_strdup("vdb");
    disk->snapshot = SNAP_LOC_EXTERNAL;
    disk->src->format = g_strdup("qcow2");
    disk->metadata_cache_max_size = 4096;
    g_ptr_array_add(def->disks, disk);
    def->has_legacy_uuid = TRUE;
    g_assert_true(util_uuid_parse(TEST_UUID, def->legacy_uuid));
    def->cookie = g_strdup("<cookie>\n  <cpu mode='host-model'/>\n</cookie>\n");
    def->active = 1;
    out = snapshot_format(def, SNAPSHOT_FORMAT_INTERNAL);
    g_assert_cmpstr(out, ==,
                    "<domainsnapshot>\n"
                    "  <name>n&apos;1</name>\n"
                    "  <description>a&lt;b</description>\n"
                    "  <state>disk-snapshot</state>\n"
                    "  <parent>\n    <name>p&amp;</name>\n  </parent>\n"
                    "  <creationTime>7</creationTime>\n"
                    "  <memory snapshot='no'/>\n"
                    "  <disks>\n"
                    "    <disk name='vda' snapshot='external' type='block'>\n"
                    "      <source dev='/dev/x'/>\n"
                    "    </disk>\n"
                    "    <disk name='vdb' snapshot='external' type='file'>\n"
                    "      <driver type='qcow2'>\n"
                    "        <metadata_cache>\n"
                    "          <max_size unit='bytes'>4096</max_size>\n"
                    "        </metadata_cache>\n"
                    "      </driver>\n"
                    "    </disk>\n"
                    "  </disks>\n"
                    "  <domain>\n    <uuid>" TEST_UUID "</uuid>\n  </domain>\n"
                    "  <cookie>\n    <cpu mode='host-model'/>\n  </cookie>\n"
                    "  <active>1</active>\n"
                    "</domainsnapshot>\n");
}

static void
test_copy(void)
{
    g_autoptr(SnapshotDef) def = test_parse(
        "<domainsnapshot><name>s1</name><description>d</description><state>running</state>"
        "<parent><name>p0</name></parent><creationTime>42</creationTime>"
        "<memory file='/m.save'/>"
        "<domain><uuid>" TEST_UUID "</uuid></domain><cookie><cpu/></cookie>"
        "<disks><disk name='vda' snapshot='no'/><disk name='vdb' type='network'>"
        "<source protocol='nbd' name='e'><host name='h' port='1'/></source></disk></disks>"
        "<active>1</active></domainsnapshot>",
        SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_INTERNAL);
    g_autoptr(SnapshotDef) copy = snapshot_def_copy(def);
    g_autofree char *a = snapshot_format(def, SNAPSHOT_FORMAT_SECURE | SNAPSHOT_FORMAT_INTERNAL);
    g_autofree char *b = snapshot_format(copy, SNAPSHOT_FORMAT_SECURE | SNAPSHOT_FORMAT_INTERNAL);

    g_assert_cmpstr(a, ==, b);
    g_assert_true(strstr(a, "<host name='h' port='1'/>") != NULL);
    g_assert_true(strstr(a, "<memory snapshot='external' file='/m.save'/>") != NULL);
    g_assert_true(copy->disks->pdata[1] != def->disks->pdata[1]);
}

/* ---- alignment (needs domain.c) ---- */

static void
test_align_basic(void)
{
    static const char *const paths[] = { "/img/a.qcow2", "/img/b.qcow2", "/img/c.qcow2", NULL };
    g_autoptr(DomainDef) dom = test_domain(paths,
                                           "    <disk type='file' device='cdrom'>\n"
                                           "      <target dev='sda' bus='sata'/>\n"
                                           "    </disk>\n");
    g_autoptr(SnapshotDef) def = test_parse(
        "<domainsnapshot><name>s</name><disks>"
        "<disk name='/img/c.qcow2' snapshot='internal'/><disk name='vda'/></disks>"
        "</domainsnapshot>",
        0);
    g_autoptr(GError) error = NULL;

    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_INTERNAL, TRUE, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(def->disks->len, ==, 4);
    /* Domain order, path names rewritten to targets, defaults, empty cdrom -> no. */
    g_assert_cmpstr(test_disk(def, 0)->name, ==, "vda");
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_INTERNAL);
    g_assert_cmpstr(test_disk(def, 1)->name, ==, "vdb");
    g_assert_cmpint(test_disk(def, 1)->snapshot, ==, SNAP_LOC_INTERNAL);
    g_assert_cmpstr(test_disk(def, 2)->name, ==, "vdc");
    g_assert_cmpint(test_disk(def, 2)->snapshot, ==, SNAP_LOC_INTERNAL);
    g_assert_cmpstr(test_disk(def, 3)->name, ==, "sda");
    g_assert_cmpint(test_disk(def, 3)->snapshot, ==, SNAP_LOC_NO);
    g_assert_cmpint(test_disk(def, 3)->src->type, ==, STORAGE_TYPE_FILE);
}

static void
test_align_errors(void)
{
    static const char *const paths[] = { "/img/a.qcow2", "/img/b.qcow2", NULL };
    static const struct {
        const char *disks;
        SnapLocation loc;
        const char *msg;
    } cases[] = {
        { "<disk name='vda'/><disk name='vdb'/><disk name='vdc'/>", SNAP_LOC_INTERNAL,
          "too many disk snapshot requests for domain" },
        /* too many is checked before duplicates */
        { "<disk name='vda'/><disk name='vda'/><disk name='vda'/>", SNAP_LOC_INTERNAL,
          "too many disk snapshot requests for domain" },
        { "<disk name='hda'/>", SNAP_LOC_INTERNAL, "no disk named 'hda'" },
        { "<disk name='/img/zz.qcow2'/>", SNAP_LOC_INTERNAL, "no disk named '/img/zz.qcow2'" },
        { "<disk name='/img/b.qcow2'/><disk name='vdb'/>", SNAP_LOC_INTERNAL,
          "disk 'vdb' specified twice" },
        { "<disk name='vda' snapshot='external'/>", SNAP_LOC_INTERNAL,
          "disk 'vda' must use snapshot mode 'internal'" },
        { "<disk name='vda' snapshot='no'/>", SNAP_LOC_INTERNAL,
          "disk 'vda' must use snapshot mode 'internal'" },
        { "<disk name='vda' snapshot='internal'><source file='/x'/></disk>", SNAP_LOC_EXTERNAL,
          "file '/x' for disk 'vda' requires use of external snapshot mode" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(DomainDef) dom = test_domain(paths, NULL);
        g_autofree char *xml = g_strdup_printf("<domainsnapshot><name>s</name><disks>%s</disks>"
                                               "</domainsnapshot>", cases[i].disks);
        g_autoptr(SnapshotDef) def = test_parse(xml, 0);
        guint before = def->disks->len;
        g_autoptr(GError) error = NULL;

        g_assert_false(snapshot_align_disks(def, dom, cases[i].loc, FALSE, &error));
        g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, cases[i].msg);
        /* A failed alignment leaves the request as it was. */
        g_assert_cmpuint(def->disks->len, ==, before);
    }
}

static void
test_align_no_match_both_no(void)
{
    /* Under internal, "no" is allowed when the domain disk says "no" too; an
     * unspecified disk takes the domain disk's own attribute. */
    g_autoptr(DomainDef) dom = NULL;
    g_autoptr(SnapshotDef) def = NULL;
    g_autoptr(GError) error = NULL;
    const char *xml = "<domain type='kvm'><name>t</name><uuid>" TEST_UUID "</uuid>"
                      "<memory>1024</memory><os><type>hvm</type></os><devices>"
                      "<disk type='file' device='disk' snapshot='no'><source file='/img/a.qcow2'/>"
                      "<target dev='vda'/></disk>"
                      "<disk type='file' device='disk' snapshot='external'>"
                      "<source file='/img/b.qcow2'/><target dev='vdb'/></disk>"
                      "</devices></domain>";

    dom = domain_parse(xml, strlen(xml), DOMAIN_PARSE_INACTIVE, &error);
    g_assert_no_error(error);
    def = test_parse("<domainsnapshot><name>s</name><disks><disk name='vda' snapshot='no'/>"
                     "</disks></domainsnapshot>", 0);
    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_INTERNAL, FALSE, &error));
    g_assert_no_error(error);
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_NO);
    /* unspecified disks take the domain's attribute even under internal */
    g_assert_cmpint(test_disk(def, 1)->snapshot, ==, SNAP_LOC_EXTERNAL);
    g_assert_null(test_disk(def, 1)->src->path);
}

static void
test_align_readonly(void)
{
    /* libvirt's disk post-parse makes a read-only disk snapshot='no', so an
     * explicit "no" for it passes the internal uniformity rule. */
    g_autoptr(DomainDef) dom = NULL;
    g_autoptr(SnapshotDef) def = NULL;
    g_autoptr(GError) error = NULL;
    const char *xml = "<domain type='kvm'><name>t</name><uuid>" TEST_UUID "</uuid>"
                      "<memory>1024</memory><os><type>hvm</type></os><devices>"
                      "<disk type='file' device='disk'><source file='/img/a.qcow2'/>"
                      "<target dev='vda'/></disk>"
                      "<disk type='file' device='cdrom'><source file='/img/cd.iso'/>"
                      "<target dev='sda'/><readonly/></disk>"
                      "</devices></domain>";

    dom = domain_parse(xml, strlen(xml), DOMAIN_PARSE_INACTIVE, &error);
    g_assert_no_error(error);
    def = test_parse("<domainsnapshot><name>s</name><disks><disk name='sda' snapshot='no'/>"
                     "</disks></domainsnapshot>", 0);
    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_INTERNAL, TRUE, &error));
    g_assert_no_error(error);
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_INTERNAL);
    g_assert_cmpint(test_disk(def, 1)->snapshot, ==, SNAP_LOC_NO);
    /* unspecified, the read-only disk is "no" as well */
    g_clear_pointer(&def, snapshot_def_free);
    def = test_parse("<domainsnapshot><name>s</name></domainsnapshot>", 0);
    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, FALSE, &error));
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_EXTERNAL);
    g_assert_cmpint(test_disk(def, 1)->snapshot, ==, SNAP_LOC_NO);
}

static void
test_align_missing_domain(void)
{
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    g_autoptr(GError) error = NULL;

    g_assert_false(snapshot_align_disks(def, NULL, SNAP_LOC_INTERNAL, TRUE, &error));
    g_assert_cmpstr(error->message, ==, "missing domain in snapshot");
}

static void
test_align_external_names(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-snapshot-XXXXXX", NULL);
    g_autofree char *a = g_build_filename(dir, "base.qcow2", NULL);
    g_autofree char *b = g_build_filename(dir, "data", NULL);
    g_autofree char *b_expect = g_build_filename(dir, "data.S1", NULL);
    g_autofree char *a_expect = g_build_filename(dir, "base.S1", NULL);
    const char *paths[] = { a, b, NULL };
    g_autoptr(DomainDef) dom = NULL;
    g_autoptr(SnapshotDef) def = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_nonnull(dir);
    g_assert_true(g_file_set_contents(a, "", 0, NULL));
    g_assert_true(g_file_set_contents(b, "", 0, NULL));
    dom = test_domain(paths, NULL);
    def = test_parse("<domainsnapshot><name>S1</name></domainsnapshot>", 0);
    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, TRUE, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(test_disk(def, 0)->src->path, ==, a_expect);
    g_assert_cmpstr(test_disk(def, 1)->src->path, ==, b_expect);
    g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_EXTERNAL);

    /* Without assign_names the paths stay unset. */
    g_clear_pointer(&def, snapshot_def_free);
    def = test_parse("<domainsnapshot><name>S1</name></domainsnapshot>", 0);
    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, FALSE, &error));
    g_assert_null(test_disk(def, 0)->src->path);

    /* An explicit path is kept, only the other disk gets a name. */
    g_clear_pointer(&def, snapshot_def_free);
    def = test_parse("<domainsnapshot><name>S2</name><disks><disk name='vdb'>"
                     "<source file='/elsewhere/x'/></disk></disks></domainsnapshot>", 0);
    g_assert_true(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, TRUE, &error));
    g_assert_cmpstr(test_disk(def, 1)->src->path, ==, "/elsewhere/x");
    g_assert_true(g_str_has_suffix(test_disk(def, 0)->src->path, "/base.S2"));

    /* The source must stat as a regular file. */
    g_assert_cmpint(g_unlink(b), ==, 0);
    g_clear_pointer(&def, snapshot_def_free);
    def = test_parse("<domainsnapshot><name>S1</name></domainsnapshot>", 0);
    g_assert_false(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, TRUE, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED);
    g_assert_cmpstr(error->message, ==, "source for disk 'vdb' is not a regular file; "
                                        "refusing to generate external snapshot name");
    g_assert_cmpuint(def->disks->len, ==, 0);   /* untouched on failure */
    g_clear_error(&error);
    g_assert_cmpint(g_mkdir(b, 0700), ==, 0);
    g_assert_false(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, TRUE, &error));
    g_assert_cmpstr(error->message, ==, "source for disk 'vdb' is not a regular file; "
                                        "refusing to generate external snapshot name");
    g_clear_error(&error);
    g_assert_cmpint(g_rmdir(b), ==, 0);

    /* Collision: base.qcow2 and base.raw both give base.S1. */
    {
        g_autofree char *c = g_build_filename(dir, "base.raw", NULL);
        const char *paths2[] = { a, c, NULL };
        g_autoptr(DomainDef) dom2 = NULL;

        g_assert_true(g_file_set_contents(c, "", 0, NULL));
        dom2 = test_domain(paths2, NULL);
        g_clear_pointer(&def, snapshot_def_free);
        def = test_parse("<domainsnapshot><name>S1</name></domainsnapshot>", 0);
        g_assert_false(snapshot_align_disks(def, dom2, SNAP_LOC_EXTERNAL, TRUE, &error));
        g_assert_cmpstr(error->message, ==, "cannot generate external snapshot name for disk "
                                            "'vdb': collision with disk 'vda'");
        g_clear_error(&error);
        g_assert_cmpint(g_unlink(c), ==, 0);
    }

    /* Non-file snapshot disk type and a domain disk without a source. */
    g_clear_pointer(&def, snapshot_def_free);
    def = test_parse("<domainsnapshot><name>S1</name><disks><disk name='vda' type='block' "
                     "snapshot='external'/></disks></domainsnapshot>", 0);
    g_assert_false(snapshot_align_disks(def, dom, SNAP_LOC_EXTERNAL, TRUE, &error));
    g_assert_cmpstr(error->message, ==, "cannot generate external snapshot name for disk 'vda' "
                                        "on a 'block' device");
    g_clear_error(&error);
    {
        g_autoptr(DomainDef) dom3 = test_domain(NULL, "    <disk type='file' device='cdrom'>\n"
                                                      "      <target dev='sda' bus='sata'/>\n"
                                                      "    </disk>\n");

        g_clear_pointer(&def, snapshot_def_free);
        def = test_parse("<domainsnapshot><name>S1</name><disks><disk name='sda' "
                         "snapshot='external'/></disks></domainsnapshot>", 0);
        g_assert_false(snapshot_align_disks(def, dom3, SNAP_LOC_EXTERNAL, TRUE, &error));
        g_assert_cmpstr(error->message, ==, "cannot generate external snapshot name for disk "
                                            "'sda' without source");
        g_clear_error(&error);
    }
    g_assert_cmpint(g_unlink(a), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* ---- redefine validation (virDomainSnapshotRedefineValidate) ---- */

static SnapshotDef *
test_redef(const char *state, const char *domain_xml, const char *disks)
{
    g_autofree char *xml = g_strdup_printf("<domainsnapshot><name>s1</name><state>%s</state>"
                                           "<creationTime>1</creationTime>%s%s</domainsnapshot>",
                                           state, disks ? disks : "", domain_xml ? domain_xml : "");

    return test_parse(xml, SNAPSHOT_PARSE_REDEFINE);
}

#define DOMXML(name, uuid, vcpus) \
    "<domain type='kvm'><name>" name "</name><uuid>" uuid "</uuid><memory>1024</memory>" \
    "<vcpu>" vcpus "</vcpu><os><type>hvm</type></os><devices><disk type='file' device='disk'>" \
    "<source file='/img/a.qcow2'/><target dev='vda'/></disk></devices></domain>"
#define OTHER_UUID "11111111-2222-3333-4444-555555555555"

static void
test_redefine_validate(void)
{
    static const char *const paths[] = { "/img/a.qcow2", NULL };
    g_autoptr(DomainDef) vm = test_domain(paths, NULL);
    g_autoptr(GError) error = NULL;

    {   /* Check 2: disk-only flag */
        g_autoptr(SnapshotDef) def = test_redef("shutoff", DOMXML("test", TEST_UUID, "1"), NULL);
        g_autoptr(SnapshotDef) ds = test_redef("disk-snapshot", DOMXML("test", TEST_UUID, "1"),
                                               "<disks><disk name='vda' snapshot='external'>"
                                               "<source file='/img/a.s1'/></disk></disks>");

        g_assert_false(snapshot_redefine_validate(def, NULL, vm, TRUE, &error));
        g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==,
                        "disk-only flag for snapshot s1 requires disk-snapshot state");
        g_clear_error(&error);
        g_assert_true(snapshot_redefine_validate(ds, NULL, vm, TRUE, &error));
        g_assert_no_error(error);
        g_assert_true(snapshot_redefine_validate(def, NULL, vm, FALSE, &error));
        g_assert_no_error(error);
        /* validate does not modify the definition */
        g_assert_cmpuint(def->disks->len, ==, 0);
    }
    {   /* Check 3: uuid */
        g_autoptr(SnapshotDef) def = test_redef("shutoff", DOMXML("test", OTHER_UUID, "1"), NULL);

        g_assert_false(snapshot_redefine_validate(def, NULL, vm, FALSE, &error));
        g_assert_cmpstr(error->message, ==, "definition for snapshot s1 must use uuid " TEST_UUID);
        g_clear_error(&error);
    }
    {   /* Check 4: existing name */
        g_autoptr(SnapshotDef) old_off = test_redef("shutoff", DOMXML("test", TEST_UUID, "1"),
                                                    NULL);
        g_autoptr(SnapshotDef) old_ds = test_redef("disk-snapshot", DOMXML("test", TEST_UUID, "1"),
                                                   "<disks><disk name='vda' snapshot='external'>"
                                                   "<source file='/img/a.s1'/></disk></disks>");
        g_autoptr(SnapshotDef) run = test_redef("running", DOMXML("test", TEST_UUID, "1"), NULL);
        g_autoptr(SnapshotDef) crashed = test_redef("crashed", NULL, NULL);
        g_autoptr(SnapshotDef) vcpu = test_redef("shutoff", DOMXML("test", TEST_UUID, "3"), NULL);
        g_autoptr(SnapshotDef) nodom = test_redef("shutoff", NULL, NULL);

        g_assert_false(snapshot_redefine_validate(run, old_off, vm, FALSE, &error));
        g_assert_cmpstr(error->message, ==, "cannot change between online and offline snapshot "
                                            "state in snapshot s1");
        g_clear_error(&error);
        g_assert_false(snapshot_redefine_validate(crashed, old_ds, vm, FALSE, &error));
        g_assert_cmpstr(error->message, ==, "cannot change between disk only and full system in "
                                            "snapshot s1");
        g_clear_error(&error);
        /* offline -> offline, other host details: fine; crashed is offline too */
        g_assert_true(snapshot_redefine_validate(crashed, old_off, vm, FALSE, &error));
        g_assert_no_error(error);
        /* ABI check between old and new dom */
        g_assert_false(snapshot_redefine_validate(vcpu, old_off, vm, FALSE, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
        /* Check 5: a new name gets no ABI check */
        g_assert_true(snapshot_redefine_validate(vcpu, NULL, vm, FALSE, &error));
        g_assert_no_error(error);
        /* Check 6: no dom anywhere -> missing domain; the old one's dom is used */
        g_assert_false(snapshot_redefine_validate(nodom, NULL, vm, FALSE, &error));
        g_assert_cmpstr(error->message, ==, "missing domain in snapshot");
        g_clear_error(&error);
        g_assert_true(snapshot_redefine_validate(nodom, old_off, vm, FALSE, &error));
        g_assert_no_error(error);
    }
    {   /* Check 6: alignment texts through redefine */
        g_autoptr(SnapshotDef) def = test_redef("shutoff", DOMXML("test", TEST_UUID, "1"),
                                                "<disks><disk name='vdq'/></disks>");

        g_assert_false(snapshot_redefine_validate(def, NULL, vm, FALSE, &error));
        g_assert_cmpstr(error->message, ==, "no disk named 'vdq'");
        g_clear_error(&error);
    }
    {   /* prep aligns in place: external location for disk-snapshot */
        g_autoptr(SnapshotDef) def = test_redef("disk-snapshot", DOMXML("test", TEST_UUID, "1"),
                                                "<disks><disk name='/img/a.qcow2'>"
                                                "<source file='/img/a.s1'/></disk></disks>");

        g_assert_true(snapshot_redefine_prep(def, NULL, vm, TRUE, &error));
        g_assert_no_error(error);
        g_assert_cmpstr(test_disk(def, 0)->name, ==, "vda");
        g_assert_cmpint(test_disk(def, 0)->snapshot, ==, SNAP_LOC_EXTERNAL);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/snapshot/create/defaults", test_create_defaults);
    g_test_add_func("/snapshot/create/named", test_create_named);
    g_test_add_func("/snapshot/redefine/memory-defaults", test_redefine_memory_defaults);
    g_test_add_func("/snapshot/redefine/fields", test_redefine_fields);
    g_test_add_func("/snapshot/redefine/delete-in-progress", test_delete_in_progress_create);
    g_test_add_func("/snapshot/redefine/disk-sources", test_disk_sources);
    g_test_add_func("/snapshot/internal/active", test_internal_active);
    g_test_add_func("/snapshot/parse/errors", test_parse_errors);
    g_test_add_func("/snapshot/strings", test_strings);
    g_test_add_func("/snapshot/check-name", test_check_name);
    g_test_add_func("/snapshot/check-state", test_check_state);
    g_test_add_func("/snapshot/external-name", test_external_name);
    g_test_add_func("/snapshot/is-external", test_is_external);
    g_test_add_func("/snapshot/format/fields", test_format_fields);
    g_test_add_func("/snapshot/copy", test_copy);
    g_test_add_func("/snapshot/align/basic", test_align_basic);
    g_test_add_func("/snapshot/align/errors", test_align_errors);
    g_test_add_func("/snapshot/align/both-no", test_align_no_match_both_no);
    g_test_add_func("/snapshot/align/readonly", test_align_readonly);
    g_test_add_func("/snapshot/align/missing-domain", test_align_missing_domain);
    g_test_add_func("/snapshot/align/external-names", test_align_external_names);
    g_test_add_func("/snapshot/redefine/validate", test_redefine_validate);
    xml2xml_add_cases("snapshot", test_snapshot_xml2xml);
    return g_test_run();
}
