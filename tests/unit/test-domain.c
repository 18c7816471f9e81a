/* test-domain.c: the <domain> model: genid, secure output, disks, chains, ABI checks. */
#include <string.h>

#include "domain.h"
#include "error.h"
#include "xmlutil.h"

#include <libxml/parser.h>

#include "xml2xml.h"

#define UUID1 "c7a5fdbd-edaf-9455-926a-d65c16db1809"

/* A small valid domain with @head after <uuid> and @disks inside <devices>. */
static char *
test_domain_xml(const char *head, const char *disks, const char *extra)
{
    return g_strdup_printf("<domain type='kvm'>\n"
                           "  <name>demo</name>\n"
                           "  <uuid>" UUID1 "</uuid>\n"
                           "%s"
                           "  <memory unit='KiB'>1048576</memory>\n"
                           "  <vcpu>2</vcpu>\n"
                           "  <os>\n"
                           "    <type>hvm</type>\n"
                           "  </os>\n"
                           "  <devices>\n"
                           "%s%s"
                           "  </devices>\n"
                           "</domain>\n",
                           head ? head : "", disks ? disks : "", extra ? extra : "");
}

static DomainDef *
test_parse(const char *xml, guint flags)
{
    g_autoptr(GError) error = NULL;
    DomainDef *def = domain_parse(xml, strlen(xml), flags, &error);

    g_assert_no_error(error);
    g_assert_nonnull(def);
    return def;
}

static void
test_parse_fails(const char *xml, guint flags, const char *message)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_parse(xml, strlen(xml), flags, &error);

    g_assert_null(def);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, message);
}

static char *
test_xml2xml(const char *name, const char *buf, gsize len, GError **error)
{
    g_autoptr(DomainDef) def = NULL;
    guint pflags = DOMAIN_PARSE_INACTIVE;
    guint fflags = DOMAIN_FORMAT_SECURE;

    if (g_str_has_prefix(name, "public-"))
        fflags = 0;
    if (g_str_has_prefix(name, "live-")) {
        pflags = DOMAIN_PARSE_LIVE;
        fflags |= DOMAIN_FORMAT_LIVE;
    }
    if (!(def = domain_parse(buf, len, pflags, error)))
        return NULL;
    return domain_format(def, fflags);
}

static void
test_genid_generated(void)
{
    g_autofree char *xml = test_domain_xml("  <genid/>\n", NULL, NULL);
    g_autofree char *xml2 = test_domain_xml("  <genid></genid>\n", NULL, NULL);
    g_autoptr(DomainDef) a = test_parse(xml, 0);
    g_autoptr(DomainDef) b = test_parse(xml2, 0);
    g_autoptr(DomainDef) again = NULL;
    g_autofree char *out = domain_format(a, DOMAIN_FORMAT_SECURE);
    g_autofree char *out2 = NULL;
    char s[UTIL_UUID_STRLEN + 1];
    g_autofree char *line = NULL;

    g_assert_true(a->has_genid);
    g_assert_true(b->has_genid);
    /* RFC 4122 v4: version nibble 4, variant bits 10 */
    g_assert_cmpint(a->genid[6] >> 4, ==, 4);
    g_assert_cmpint(a->genid[8] >> 6, ==, 2);
    g_assert_cmpint(b->genid[6] >> 4, ==, 4);
    g_assert_cmpint(memcmp(a->genid, b->genid, UTIL_UUID_LEN), !=, 0);
    /* generated at parse time and written into the document, right after <uuid> */
    util_uuid_format(a->genid, s);
    line = g_strdup_printf("  <uuid>" UUID1 "</uuid>\n  <genid>%s</genid>\n", s);
    g_assert_nonnull(strstr(out, line));
    /* the formatted value is stable: a second parse keeps it */
    again = test_parse(out, 0);
    g_assert_cmpmem(again->genid, UTIL_UUID_LEN, a->genid, UTIL_UUID_LEN);
    out2 = domain_format(again, DOMAIN_FORMAT_SECURE);
    g_assert_cmpstr(out, ==, out2);
}

static void
test_genid_liberal(void)
{
    static const char *const spellings[] = {
        "d1e2f3a4-b5c6-d7e8-f9a0-b1c2d3e4f5a6",
        "D1E2F3A4-B5C6-D7E8-F9A0-B1C2D3E4F5A6",
        "d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6",
        "  d1 e2 f3 a4 b5 c6 d7 e8 f9 a0 b1 c2 d3 e4 f5 a6\n ",
        "d1e2-f3a4-b5c6-d7e8-f9a0-b1c2-d3e4-f5a6",
    };

    for (guint i = 0; i < G_N_ELEMENTS(spellings); i++) {
        g_autofree char *head = g_strdup_printf("  <genid>%s</genid>\n", spellings[i]);
        g_autofree char *xml = test_domain_xml(head, NULL, NULL);
        g_autoptr(DomainDef) def = test_parse(xml, 0);
        g_autofree char *out = domain_format(def, 0);
        char s[UTIL_UUID_STRLEN + 1];

        g_assert_true(def->has_genid);
        util_uuid_format(def->genid, s);
        g_assert_cmpstr(s, ==, "d1e2f3a4-b5c6-d7e8-f9a0-b1c2d3e4f5a6");
        g_assert_nonnull(strstr(out, "<genid>d1e2f3a4-b5c6-d7e8-f9a0-b1c2d3e4f5a6</genid>"));
    }
}

static void
test_genid_errors(void)
{
    static const struct {
        const char *head;
        const char *message;
    } cases[] = {
        { "  <genid/>\n  <genid/>\n", "element 'genid' can only appear once" },
        { "  <genid>d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a</genid>\n", "malformed genid element" },
        { "  <genid>d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6a</genid>\n", "malformed genid element" },
        { "  <genid>g1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6</genid>\n", "malformed genid element" },
        { "  <genid>-d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6</genid>\n", "malformed genid element" },
        { "  <genid> </genid>\n", "malformed genid element" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *xml = test_domain_xml(cases[i].head, NULL, NULL);

        test_parse_fails(xml, 0, cases[i].message);
    }
}

static void
test_genid_set(void)
{
    g_autofree char *xml = test_domain_xml("  <title>t</title>\n", NULL, NULL);
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    g_autofree char *out = NULL;
    g_autofree char *out2 = NULL;
    guint8 g[UTIL_UUID_LEN];

    g_assert_false(def->has_genid);
    g_assert_true(util_uuid_parse("0123456789ABCDEF0123456789ABCDEF", g));
    domain_set_genid(def, g);
    g_assert_true(def->has_genid);
    out = domain_format(def, 0);
    g_assert_nonnull(strstr(out, "  <uuid>" UUID1 "</uuid>\n"
                                 "  <genid>01234567-89ab-cdef-0123-456789abcdef</genid>\n"
                                 "  <title>t</title>\n"));
    domain_set_genid(def, NULL);
    g_assert_false(def->has_genid);
    out2 = domain_format(def, 0);
    g_assert_null(strstr(out2, "genid"));
}

static void
test_uuid_missing(void)
{
    const char *xml = "<domain type='qemu'><name>n</name><memory>1024</memory>"
                      "<os><type>hvm</type></os></domain>";
    g_autoptr(DomainDef) def = NULL;
    g_autofree char *out = NULL;
    g_autofree char *line = NULL;
    char s[UTIL_UUID_STRLEN + 1];

    test_parse_fails(xml, 0, "missing UUID");
    def = test_parse(xml, DOMAIN_PARSE_NO_UUID_OK);
    g_assert_true(def->has_uuid);
    g_assert_cmpint(def->uuid[6] >> 4, ==, 4);
    util_uuid_format(def->uuid, s);
    out = domain_format(def, 0);
    line = g_strdup_printf("<domain type='qemu'>\n  <name>n</name>\n  <uuid>%s</uuid>\n", s);
    g_assert_true(g_str_has_prefix(out, line));
}

static void
test_secure(void)
{
    const char *gfx = "    <graphics type='vnc' port='5900' passwd='pw'"
                      " passwdValidTo='2030-01-01T00:00:00'/>\n";
    const char *disk = "    <disk type='network' device='disk'>\n"
                       "      <source protocol='http' name='/a.img'>\n"
                       "        <host name='h'/>\n"
                       "        <cookies>\n"
                       "          <cookie name='c'>secret</cookie>\n"
                       "        </cookies>\n"
                       "      </source>\n"
                       "      <target dev='vda' bus='virtio'/>\n"
                       "    </disk>\n";
    g_autofree char *xml = test_domain_xml(NULL, disk, gfx);
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    g_autofree char *pub = domain_format(def, 0);
    g_autofree char *sec = domain_format(def, DOMAIN_FORMAT_SECURE);
    g_autofree char *dpub = domain_disk_format(def, def->disks->pdata[0], 0);
    g_autofree char *dsec = domain_disk_format(def, def->disks->pdata[0], DOMAIN_FORMAT_SECURE);

    g_assert_null(strstr(pub, "passwd='pw'"));
    g_assert_nonnull(strstr(pub, "passwdValidTo='2030-01-01T00:00:00'"));
    g_assert_null(strstr(pub, "cookie"));
    g_assert_nonnull(strstr(pub, "<host name='h' port='80'/>"));
    g_assert_nonnull(strstr(sec, "passwd='pw'"));
    g_assert_nonnull(strstr(sec, "<cookie name='c'>secret</cookie>"));
    g_assert_null(strstr(dpub, "cookie"));
    g_assert_nonnull(strstr(dsec, "<cookie name='c'>secret</cookie>"));
    /* formatting twice without SECURE did not strip the model's document */
    g_clear_pointer(&sec, g_free);
    sec = domain_format(def, DOMAIN_FORMAT_SECURE);
    g_assert_nonnull(strstr(sec, "passwd='pw'"));
}

static const char *const two_disks =
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/img/a.qcow2'/>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='raw'/>\n"
    "      <source file='/img/b.raw'/>\n"
    "      <target dev='vdb' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <source file='/img/b.raw'/>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <target dev='sdb' bus='sata'/>\n"
    "    </disk>\n";

static void
test_disk_by_name(void)
{
    g_autofree char *xml = test_domain_xml(NULL, two_disks, NULL);
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    DiskDef *vda;

    g_assert_cmpuint(def->disks->len, ==, 4);
    vda = domain_disk_by_name(def, "vda");
    g_assert_nonnull(vda);
    g_assert_cmpstr(vda->dst, ==, "vda");
    g_assert_cmpstr(vda->src->format, ==, "qcow2");
    g_assert_true(domain_disk_by_name(def, "/img/a.qcow2") == vda);
    g_assert_true(domain_disk_by_name(def, "sdb") == def->disks->pdata[3]);
    g_assert_true(((DiskDef *)def->disks->pdata[2])->readonly);
    g_assert_cmpint(((DiskDef *)def->disks->pdata[3])->src->type, ==, STORAGE_TYPE_FILE);
    g_assert_null(((DiskDef *)def->disks->pdata[3])->src->path);
    /* a path used by two disks is ambiguous */
    g_assert_null(domain_disk_by_name(def, "/img/b.raw"));
    g_assert_null(domain_disk_by_name(def, "vdz"));
    g_assert_null(domain_disk_by_name(def, "/img/none"));
    /* a name without a slash is never a path */
    g_assert_null(domain_disk_by_name(def, "img/a.qcow2"));
}

static StorageSource *
test_file_source(const char *path, const char *format)
{
    StorageSource *src = storage_source_new();

    src->type = STORAGE_TYPE_FILE;
    src->path = g_strdup(path);
    src->format = g_strdup(format);
    return src;
}

static void
test_set_source(void)
{
    const char *disks = "    <disk type='file' device='disk'>\n"
                        "      <driver name='qemu' type='raw' cache='none'/>\n"
                        "      <source file='/img/base.raw'>\n"
                        "        <seclabel model='dac' relabel='no'/>\n"
                        "      </source>\n"
                        "      <backingStore/>\n"
                        "      <target dev='vda' bus='virtio'/>\n"
                        "    </disk>\n"
                        "    <disk type='block' device='disk'>\n"
                        "      <source dev='/dev/sdz'/>\n"
                        "      <target dev='vdb' bus='virtio'/>\n"
                        "    </disk>\n";
    g_autofree char *xml = test_domain_xml(NULL, disks, NULL);
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    g_autoptr(DomainDef) reparsed = NULL;
    DiskDef *vda = domain_disk_by_name(def, "vda");
    DiskDef *vdb = domain_disk_by_name(def, "vdb");
    StorageSource *over = test_file_source("/img/base.s1", "qcow2");
    g_autofree char *out = NULL;
    g_autofree char *out2 = NULL;
    g_autofree char *dout = NULL;

    domain_disk_set_source(def, vda, over, TRUE);
    g_assert_true(vda->src == over);
    g_assert_nonnull(over->backing);
    g_assert_cmpstr(over->backing->path, ==, "/img/base.raw");
    g_assert_cmpstr(over->backing->format, ==, "raw");
    g_assert_true(over->backing->backing_terminated);
    dout = domain_disk_format(def, vda, 0);
    g_assert_cmpstr(dout, ==,
                    "<disk type='file' device='disk'>\n"
                    "  <driver name='qemu' type='qcow2' cache='none'/>\n"
                    "  <source file='/img/base.s1'/>\n"
                    "  <backingStore type='file'>\n"
                    "    <format type='raw'/>\n"
                    "    <source file='/img/base.raw'>\n"
                    "      <seclabel model='dac' relabel='no'/>\n"
                    "    </source>\n"
                    "    <backingStore/>\n"
                    "  </backingStore>\n"
                    "  <target dev='vda' bus='virtio'/>\n"
                    "</disk>\n");

    /* vdb's chain is unknown: the old source is dropped, as a shut-off qemu domain shows */
    domain_disk_set_source(def, vdb, test_file_source("/img/vdb.s1", "qcow2"), TRUE);
    g_clear_pointer(&dout, g_free);
    dout = domain_disk_format(def, vdb, 0);
    g_assert_cmpstr(dout, ==,
                    "<disk type='file' device='disk'>\n"
                    "  <driver name='qemu' type='qcow2'/>\n"
                    "  <source file='/img/vdb.s1'/>\n"
                    "  <target dev='vdb' bus='virtio'/>\n"
                    "</disk>\n");
    g_assert_null(vdb->src->backing);

    /* the document and the model agree: a reparse gives the same model and text */
    out = domain_format(def, DOMAIN_FORMAT_SECURE);
    reparsed = test_parse(out, 0);
    out2 = domain_format(reparsed, DOMAIN_FORMAT_SECURE);
    g_assert_cmpstr(out, ==, out2);
    g_assert_cmpstr(((DiskDef *)reparsed->disks->pdata[0])->src->backing->path, ==,
                    "/img/base.raw");
    g_assert_cmpint(((DiskDef *)reparsed->disks->pdata[1])->src->type, ==, STORAGE_TYPE_FILE);

    /* without keep_old_as_backing the old chain goes away */
    domain_disk_set_source(def, vda, test_file_source("/img/other.raw", NULL), FALSE);
    g_clear_pointer(&dout, g_free);
    dout = domain_disk_format(def, vda, 0);
    g_assert_cmpstr(dout, ==,
                    "<disk type='file' device='disk'>\n"
                    "  <driver name='qemu' cache='none'/>\n"
                    "  <source file='/img/other.raw'/>\n"
                    "  <target dev='vda' bus='virtio'/>\n"
                    "</disk>\n");
}

static void
test_detected_chain(void)
{
    const char *disks = "    <disk type='file' device='disk'>\n"
                        "      <driver name='qemu' type='qcow2'/>\n"
                        "      <source file='/img/top.qcow2'/>\n"
                        "      <target dev='vda' bus='virtio'/>\n"
                        "    </disk>\n";
    g_autofree char *xml = test_domain_xml(NULL, disks, NULL);
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    DiskDef *vda = def->disks->pdata[0];
    StorageSource *top = test_file_source("/img/top.qcow2", "qcow2");
    StorageSource *base = test_file_source("/img/base.qcow2", "qcow2");
    g_autofree char *inactive = NULL;
    g_autofree char *live = NULL;

    base->detected = TRUE;
    base->index = 2;
    base->backing_terminated = TRUE;
    top->backing = base;
    domain_disk_set_source(def, vda, top, FALSE);
    inactive = domain_disk_format(def, vda, DOMAIN_FORMAT_SECURE);
    live = domain_disk_format(def, vda, DOMAIN_FORMAT_SECURE | DOMAIN_FORMAT_LIVE);
    g_assert_null(strstr(inactive, "backingStore"));
    g_assert_nonnull(strstr(live, "  <backingStore type='file' index='2'>\n"
                                  "    <format type='qcow2'/>\n"
                                  "    <source file='/img/base.qcow2'/>\n"
                                  "    <backingStore/>\n"
                                  "  </backingStore>\n"));
}

static void
test_chain_model(void)
{
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "data", "xml2xml",
                                                  "domain-live-backing-index.in.xml", NULL);
    g_autofree char *buf = NULL;
    gsize len = 0;
    g_autoptr(DomainDef) live = NULL;
    g_autoptr(DomainDef) inactive = NULL;
    const StorageSource *s;

    g_assert_true(g_file_get_contents(path, &buf, &len, NULL));
    live = test_parse(buf, DOMAIN_PARSE_LIVE);
    inactive = test_parse(buf, 0);
    s = ((DiskDef *)live->disks->pdata[0])->src;
    g_assert_cmpuint(s->index, ==, 3);
    g_assert_cmpuint(s->backing->index, ==, 2);
    g_assert_true(s->backing->readonly);
    g_assert_cmpuint(s->backing->backing->index, ==, 1);
    g_assert_cmpstr(s->backing->backing->format, ==, "raw");
    g_assert_true(s->backing->backing->backing_terminated);
    g_assert_null(s->backing->backing->backing);
    s = ((DiskDef *)inactive->disks->pdata[0])->src;
    g_assert_cmpuint(s->index, ==, 0);
    g_assert_cmpuint(s->backing->index, ==, 0);
    g_assert_false(s->backing->backing_terminated);
}

static void
test_describe(void)
{
    static const struct {
        const char *source;
        const char *expect;
    } cases[] = {
        { "<source protocol='nbd' name='export'>"
          "<host transport='unix' socket='/run/x.sock'/></source>",
          "nbd+unix:///export?socket=/run/x.sock" },
        { "<source protocol='nbd'><host name='h'/></source>", "nbd://h:10809" },
        { "<source protocol='gluster' name='vol/img'><host name='host'/></source>",
          "gluster://host:24007/vol/img" },
        { "<source protocol='rbd' name='pool/img'/>", "rbd:pool/img" },
        { "<source protocol='rbd' name='pool/img'>"
          "<host name='m1'/><host name='m2' port='6789'/></source>",
          "rbd:pool/img:mon_host=m1\\;m2\\:6789" },
        { "<source protocol='http' name='/path/a.iso'><host name='host'/></source>",
          "http://host:80/path/a.iso" },
        { "<source protocol='iscsi' name='iqn.2013-07.com.example:t/1'><host name='h'/></source>",
          "iscsi://h:3260/iqn.2013-07.com.example:t/1" },
        { "<source protocol='https' name='x'><host name='::1' port='8443'/></source>",
          "https://[::1]:8443/x" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *disk = g_strdup_printf("<disk type='network'>%s<target dev='vda'/></disk>",
                                                cases[i].source);
        g_autofree char *xml = test_domain_xml(NULL, disk, NULL);
        g_autoptr(DomainDef) def = test_parse(xml, 0);
        g_autofree char *got = storage_source_describe(((DiskDef *)def->disks->pdata[0])->src);

        g_assert_cmpstr(got, ==, cases[i].expect);
    }
    {
        g_autoptr(StorageSource) f = test_file_source("/a/b.qcow2", NULL);
        g_autofree char *got = storage_source_describe(f);

        g_assert_cmpstr(got, ==, "/a/b.qcow2");
    }
    g_assert_cmpuint(storage_source_default_port("vxhs"), ==, 9999);
    g_assert_cmpuint(storage_source_default_port("rbd"), ==, 0);
    g_assert_cmpuint(storage_source_default_port("bogus"), ==, 0);
    g_assert_cmpint(storage_type_from_string("vhostuser"), ==, STORAGE_TYPE_VHOST_USER);
    g_assert_cmpint(storage_type_from_string("floppy"), ==, -1);
    g_assert_cmpstr(storage_type_to_string(STORAGE_TYPE_NONE), ==, "");
    g_assert_cmpstr(storage_type_to_string(STORAGE_TYPE_NETWORK), ==, "network");
}

static void
test_abi(void)
{
    static const struct {
        const char *from;
        const char *to;
        const char *message;
    } cases[] = {
        { "<name>demo</name>", "<name>other</name>",
          "Target domain name 'other' does not match source 'demo'" },
        { "<uuid>" UUID1 "</uuid>", "<uuid>00000000-0000-4000-8000-000000000001</uuid>",
          "Target domain uuid 00000000-0000-4000-8000-000000000001 does not match source " UUID1 },
        { "<vcpu>2</vcpu>", "<vcpu>3</vcpu>", "Target domain vCPU max 3 does not match source 2" },
        { "<vcpu>2</vcpu>", "<currentMemory unit='MiB'>512</currentMemory><vcpu>2</vcpu>",
          "Target domain current memory 524288 does not match source 1048576" },
        { "<memory unit='KiB'>1048576</memory>", "<memory unit='GiB'>2</memory>",
          "Target domain max memory 2097152 does not match source 1048576" },
        { "<title/>", "<genid>11111111-2222-4333-8444-555555555555</genid>",
          "Target domain requested genid does not match source" },
        { "<disk type='file'><source file='/a'/><target dev='vdb'/></disk>", "",
          "Target domain disk count 1 does not match source 2" },
        { "<target dev='vdb'/>", "<target dev='vdc'/>",
          "Target disk vdc does not match source vdb" },
    };
    const char *disk = "<disk type='file'><source file='/a'/><target dev='vdb'/></disk>";
    g_autofree char *head = g_strdup("  <genid>11111111-2222-4333-8444-555555555555</genid>\n");
    g_autofree char *base = test_domain_xml("  <title/>\n", disk, disk);

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_auto(GStrv) parts = g_strsplit(base, cases[i].from, 2);
        g_autofree char *changed = NULL;
        g_autoptr(DomainDef) a = test_parse(base, 0);
        g_autoptr(DomainDef) b = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpuint(g_strv_length(parts), ==, 2);
        changed = g_strjoin(cases[i].to, parts[0], parts[1], NULL);
        b = test_parse(changed, 0);
        g_assert_true(domain_check_abi(a, a, NULL));
        g_assert_false(domain_check_abi(a, b, &error));
        g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
        g_assert_cmpstr(error->message, ==, cases[i].message);
    }
    {
        g_autofree char *x1 = test_domain_xml(head, NULL, NULL);
        g_autofree char *x2 =
            test_domain_xml("  <genid>11111111-2222-4333-8444-555555555556</genid>\n", NULL, NULL);
        g_autofree char *x3 = test_domain_xml("  <genid/>\n", NULL, NULL);
        g_autoptr(DomainDef) a = test_parse(x1, 0);
        g_autoptr(DomainDef) b = test_parse(x2, 0);
        g_autoptr(DomainDef) c = test_parse(x3, 0);
        g_autoptr(DomainDef) c2 = domain_copy(c);
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) error2 = NULL;

        g_assert_false(domain_check_abi(a, b, &error));
        g_assert_cmpstr(error->message, ==,
                        "Target domain genid 11111111-2222-4333-8444-555555555556 does not match "
                        "source 11111111-2222-4333-8444-555555555555");
        /* <genid/> generates a new value, which differs */
        g_assert_false(domain_check_abi(a, c, &error2));
        g_assert_true(g_str_has_prefix(error2->message, "Target domain genid "));
        g_assert_true(domain_check_abi(c, c2, NULL));
    }
}

static void
test_copy(void)
{
    g_autofree char *xml =
        test_domain_xml("  <genid>11111111-2222-4333-8444-555555555555</genid>\n", two_disks, NULL);
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    g_autoptr(DomainDef) copy = domain_copy(def);
    g_autofree char *a = domain_format(def, DOMAIN_FORMAT_SECURE);
    g_autofree char *b = domain_format(copy, DOMAIN_FORMAT_SECURE);
    g_autofree char *c = NULL;
    g_autofree char *d = NULL;
    DiskDef *vda;

    g_assert_cmpstr(a, ==, b);
    g_assert_cmpstr(copy->name, ==, "demo");
    g_assert_cmpuint(copy->disks->len, ==, 4);
    g_assert_cmpuint(copy->vcpus_max, ==, 2);
    g_assert_cmpuint(copy->memory_kib, ==, 1048576);
    g_assert_true(domain_check_abi(def, copy, NULL));
    /* the copy is independent: mutate it, the original does not change */
    vda = domain_disk_by_name(copy, "vda");
    g_assert_true(vda != domain_disk_by_name(def, "vda"));
    g_assert_true(vda->node->doc == copy->doc);
    domain_disk_set_source(copy, vda, test_file_source("/img/a.s1", "qcow2"), FALSE);
    domain_set_genid(copy, NULL);
    c = domain_format(def, DOMAIN_FORMAT_SECURE);
    d = domain_format(copy, DOMAIN_FORMAT_SECURE);
    g_assert_cmpstr(a, ==, c);
    g_assert_nonnull(strstr(d, "/img/a.s1"));
    g_assert_null(strstr(d, "genid"));
    g_assert_cmpstr(domain_disk_by_name(def, "vda")->src->path, ==, "/img/a.qcow2");
}

static void
test_parse_node(void)
{
    const char *snap = "<domainsnapshot>\n"
                       "  <name>s1</name>\n"
                       "  <inactiveDomain type='kvm'>\n"
                       "    <name>demo</name>\n"
                       "    <uuid>" UUID1 "</uuid>\n"
                       "    <metadata><app:x xmlns:app='urn:a' k='v&quot;'>t</app:x></metadata>\n"
                       "    <os><type>hvm</type></os>\n"
                       "  </inactiveDomain>\n"
                       "</domainsnapshot>\n";
    g_autoptr(GError) error = NULL;
    g_autoptr(xmlDoc) doc = xmlReadMemory(snap, strlen(snap), NULL, NULL, XML_PARSE_NONET);
    xmlNode *node = xmlutil_child(xmlDocGetRootElement(doc), "inactiveDomain");
    g_autoptr(DomainDef) def = domain_parse_node(node, 0, &error);
    g_autoptr(GString) out = g_string_new("<x>\n");

    g_assert_no_error(error);
    g_assert_nonnull(def);
    g_assert_true(def->doc != doc);
    g_assert_cmpstr(def->name, ==, "demo");
    /* the source document is untouched */
    g_assert_cmpstr((const char *)node->name, ==, "inactiveDomain");
    domain_format_buf(out, def, 0, 2, "inactiveDomain");
    g_string_append(out, "</x>\n");
    g_assert_cmpstr(out->str, ==,
                    "<x>\n"
                    "  <inactiveDomain type='kvm'>\n"
                    "    <name>demo</name>\n"
                    "    <uuid>" UUID1 "</uuid>\n"
                    "    <metadata>\n"
                    "      <app:x xmlns:app=\"urn:a\" k=\"v&quot;\">t</app:x>\n"
                    "    </metadata>\n"
                    "    <os>\n"
                    "      <type>hvm</type>\n"
                    "    </os>\n"
                    "  </inactiveDomain>\n"
                    "</x>\n");
}

static void
test_legacy_uuid_only(void)
{
    const char *xml = "<domain>\n  <uuid>" UUID1 "</uuid>\n</domain>\n";
    g_autoptr(DomainDef) def = test_parse(xml, 0);
    g_autofree char *out = domain_format(def, 0);

    g_assert_null(def->type);
    g_assert_null(def->name);
    g_assert_true(def->has_uuid);
    g_assert_cmpstr(out, ==, xml);
    test_parse_fails("<domain>\n  <name>x</name>\n  <uuid>" UUID1 "</uuid>\n</domain>\n", 0,
                     "missing domain type attribute");
}

static void
test_not_xml(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_parse("<domain", 7, 0, &error);

    g_assert_null(def);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_PARSE);
}

/* virStorageSourceIsEmpty and the path attribute of each local type. */
static void
test_storage_source_empty(void)
{
    g_autoptr(StorageSource) src = storage_source_new();

    g_assert_cmpstr(storage_source_path_attr(STORAGE_TYPE_FILE), ==, "file");
    g_assert_cmpstr(storage_source_path_attr(STORAGE_TYPE_BLOCK), ==, "dev");
    g_assert_cmpstr(storage_source_path_attr(STORAGE_TYPE_DIR), ==, "dir");
    g_assert_null(storage_source_path_attr(STORAGE_TYPE_NETWORK));
    g_assert_null(storage_source_path_attr(STORAGE_TYPE_NONE));

    g_assert_true(storage_source_is_empty(NULL));
    src->type = STORAGE_TYPE_NONE;
    src->path = g_strdup("/x");
    g_assert_true(storage_source_is_empty(src));
    for (StorageType t = STORAGE_TYPE_FILE; t <= STORAGE_TYPE_DIR; t++) {
        src->type = t;
        g_assert_false(storage_source_is_empty(src));
    }
    g_clear_pointer(&src->path, g_free);
    for (StorageType t = STORAGE_TYPE_FILE; t <= STORAGE_TYPE_DIR; t++) {
        src->type = t;
        g_assert_true(storage_source_is_empty(src));
    }
    src->type = STORAGE_TYPE_NETWORK;
    g_assert_true(storage_source_is_empty(src));
    src->protocol = g_strdup("nbd");
    g_assert_false(storage_source_is_empty(src));
    src->type = STORAGE_TYPE_VOLUME;   /* a volume is never empty by this rule */
    g_assert_false(storage_source_is_empty(src));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/domain/genid/generated", test_genid_generated);
    g_test_add_func("/domain/genid/liberal", test_genid_liberal);
    g_test_add_func("/domain/genid/errors", test_genid_errors);
    g_test_add_func("/domain/genid/set", test_genid_set);
    g_test_add_func("/domain/uuid-missing", test_uuid_missing);
    g_test_add_func("/domain/secure", test_secure);
    g_test_add_func("/domain/disk-by-name", test_disk_by_name);
    g_test_add_func("/domain/set-source", test_set_source);
    g_test_add_func("/domain/detected-chain", test_detected_chain);
    g_test_add_func("/domain/chain-model", test_chain_model);
    g_test_add_func("/domain/describe", test_describe);
    g_test_add_func("/domain/abi", test_abi);
    g_test_add_func("/domain/copy", test_copy);
    g_test_add_func("/domain/parse-node", test_parse_node);
    g_test_add_func("/domain/legacy-uuid-only", test_legacy_uuid_only);
    g_test_add_func("/domain/not-xml", test_not_xml);
    g_test_add_func("/domain/storage-source-empty", test_storage_source_empty);
    g_assert_cmpuint(xml2xml_add_cases("domain", test_xml2xml), >=, 40);
    return g_test_run();
}
