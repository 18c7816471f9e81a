/* test-qcow2.c: L1/L2 entry decoding and the allocation walk over tables in memory. */
#include <string.h>

#include "error.h"
#include "qcow2.h"

#define CB 16                          /* 64 KiB clusters */
#define CS (1ULL << CB)
#define HOST(n) ((guint64)(n) * CS)    /* the host offset of cluster n */

/* Tables in memory: L2 tables live at host offsets HOST(1), HOST(2), ... */
typedef struct {
    guint64 *tables[4];
    guint loads;
} Tables;

static const guint64 *
tables_load(gpointer data, guint64 offset, GError **error)
{
    Tables *t = data;
    guint64 n = offset / CS;

    t->loads++;
    if (n < 1 || n > G_N_ELEMENTS(t->tables) || !t->tables[n - 1]) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "no table at %" G_GUINT64_FORMAT,
                    offset);
        return NULL;
    }
    return t->tables[n - 1];
}

static void
tables_clear(Tables *t)
{
    for (guint i = 0; i < G_N_ELEMENTS(t->tables); i++)
        g_free(t->tables[i]);
}

static void
map_setup(Qcow2Map *m, guint32 version, guint64 incompatible, guint64 size)
{
    QcowHeader hdr = { .version = version, .cluster_bits = CB, .size = size,
                       .incompatible = incompatible };
    g_autoptr(GError) error = NULL;

    g_assert_true(qcow2_map_init(m, &hdr, "t.qcow2", &error));
    g_assert_no_error(error);
}

static void
test_init(void)
{
    Qcow2Map m;
    QcowHeader small = { .version = 3, .cluster_bits = 13, .size = 1 << 20,
                         .incompatible = QCOW_INCOMPAT_EXTL2 };
    g_autoptr(GError) error = NULL;

    map_setup(&m, 3, 0, 1000);
    g_assert_cmpuint(m.cluster_size, ==, CS);
    g_assert_cmpuint(m.l2_bits, ==, CB - 3);
    g_assert_cmpuint(m.sub_bits, ==, CB);
    g_assert_cmpuint(m.size, ==, 512);          /* whole sectors, as qemu */
    g_assert_false(m.extl2);
    g_assert_false(m.data_file);
    map_setup(&m, 3, QCOW_INCOMPAT_EXTL2 | QCOW_INCOMPAT_DATA_FILE, 1 << 20);
    g_assert_true(m.extl2);
    g_assert_true(m.data_file);
    g_assert_cmpuint(m.l2_bits, ==, CB - 4);
    g_assert_cmpuint(m.sub_bits, ==, CB - 5);
    g_assert_false(qcow2_map_init(&m, &small, "t.qcow2", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    g_assert_cmpstr(error->message, ==, "qcow2 image 't.qcow2' is corrupt: extended L2 entries "
                    "need clusters of 16 KiB or more (offset 0)");
}

/* Decodes @entry/@bitmap at guest offset @off; NULL @corrupt = must succeed. */
static Qcow2Cluster
decode(const Qcow2Map *m, guint64 entry, guint64 bitmap, guint64 off, const char *corrupt)
{
    g_autoptr(GError) error = NULL;
    Qcow2Cluster c;
    gboolean ok = qcow2_entry_decode(m, entry, bitmap, off, &c, &error);

    if (!corrupt) {
        g_assert_no_error(error);
        g_assert_true(ok);
    } else {
        g_assert_false(ok);
        g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
        g_assert_cmpstr(error->message, ==, corrupt);
    }
    return c;
}

static void
test_decode_standard(void)
{
    Qcow2Map v3;
    Qcow2Map v2;
    Qcow2Map df;
    Qcow2Cluster c;

    map_setup(&v3, 3, 0, 1 << 30);
    map_setup(&v2, 2, 0, 1 << 30);
    map_setup(&df, 3, QCOW_INCOMPAT_DATA_FILE, 1 << 30);

    c = decode(&v3, 0, 0, 0, NULL);
    g_assert_true(!c.compressed && !c.mapped && c.data == 0 && c.zero == 0);
    c = decode(&v3, HOST(7) | QCOW2_OFLAG_COPIED, 0, 5, NULL);
    g_assert_true(c.mapped);
    g_assert_cmpuint(c.host, ==, HOST(7));
    g_assert_cmpuint(c.data, ==, 1);
    g_assert_cmpuint(c.zero, ==, 0);
    /* zero flag: zero, with or without a preallocated host cluster */
    c = decode(&v3, QCOW2_OFLAG_ZERO, 0, 0, NULL);
    g_assert_true(!c.mapped && c.zero == 1 && c.data == 0);
    c = decode(&v3, HOST(3) | QCOW2_OFLAG_ZERO, 0, 0, NULL);
    g_assert_true(c.mapped && c.zero == 1 && c.data == 0);
    decode(&v3, (HOST(3) + 512) | QCOW2_OFLAG_ZERO, 0, 0,
           "qcow2 image 't.qcow2' is corrupt: cluster allocation offset is unaligned "
           "(offset 197120)");
    decode(&v2, QCOW2_OFLAG_ZERO, 0, 4096,
           "qcow2 image 't.qcow2' is corrupt: zero cluster in a version 2 image (offset 4096)");
    /* compressed: the entry itself describes the data */
    c = decode(&v3, QCOW2_OFLAG_COMPRESSED | 12345, 0, 0, NULL);
    g_assert_true(c.compressed);
    g_assert_cmpuint(c.entry, ==, QCOW2_OFLAG_COMPRESSED | 12345);
    decode(&df, QCOW2_OFLAG_COMPRESSED | 12345, 0, 77,
           "qcow2 image 't.qcow2' is corrupt: compressed cluster in an image with an external "
           "data file (offset 77)");
    /* a data file: offset 0 is a cluster when "copied" says so; offsets are the guest's */
    c = decode(&df, QCOW2_OFLAG_COPIED, 0, 100, NULL);
    g_assert_true(c.mapped && c.data == 1 && c.host == 0);
    c = decode(&df, 0, 0, 100, NULL);
    g_assert_true(!c.mapped && c.data == 0);
    c = decode(&df, HOST(2) | QCOW2_OFLAG_COPIED, 0, HOST(2) + 9, NULL);
    g_assert_cmpuint(c.host, ==, HOST(2));
    decode(&df, HOST(2) | QCOW2_OFLAG_COPIED, 0, HOST(3),
           "qcow2 image 't.qcow2' is corrupt: data file offset does not match the guest "
           "offset (offset 131072)");
}

static void
test_decode_extended(void)
{
    Qcow2Map m;
    Qcow2Cluster c;

    map_setup(&m, 3, QCOW_INCOMPAT_EXTL2, 1 << 30);
    /* no host offset: only zero bits may be set */
    c = decode(&m, 0, 0x5ULL << 32, 0, NULL);
    g_assert_true(!c.mapped && c.zero == 5 && c.data == 0);
    decode(&m, 0, 1, 0, "qcow2 image 't.qcow2' is corrupt: unallocated cluster has "
           "allocated subclusters (offset 0)");
    /* a host offset: data and zero bits, never both for one subcluster */
    c = decode(&m, HOST(4) | QCOW2_OFLAG_COPIED, (0x2ULL << 32) | 0x9, 0, NULL);
    g_assert_true(c.mapped && c.host == HOST(4));
    g_assert_cmpuint(c.data, ==, 0x9);
    g_assert_cmpuint(c.zero, ==, 0x2);
    decode(&m, HOST(4), (0x8ULL << 32) | 0x9, 2048, "qcow2 image 't.qcow2' is corrupt: a "
           "subcluster is both allocated and zero (offset 2048)");
    /* a host offset with an empty bitmap: mapped, yet every subcluster unallocated */
    c = decode(&m, HOST(4), 0, 0, NULL);
    g_assert_true(c.mapped && c.data == 0 && c.zero == 0);
}

static void
test_map_unit(void)
{
    Qcow2Map m;
    Tables t = { { 0 } };
    guint64 l1[3] = { 0, HOST(1) | QCOW2_OFLAG_COPIED, HOST(2) + 512 };
    guint64 per_l1 = CS / 8 * CS;            /* guest bytes one L2 table covers */
    Qcow2ClusterType type;
    guint64 host;
    guint64 span;
    g_autoptr(GError) error = NULL;

    map_setup(&m, 3, 0, 3 * per_l1);
    m.l1 = l1;
    m.l1_size = G_N_ELEMENTS(l1);
    m.load = tables_load;
    m.load_data = &t;
    t.tables[0] = g_new0(guint64, CS / 8);
    t.tables[0][0] = HOST(9) | QCOW2_OFLAG_COPIED;
    t.tables[0][1] = QCOW2_OFLAG_ZERO;
    t.tables[0][2] = QCOW2_OFLAG_COMPRESSED | 42;

    /* no L2 table: the rest of its range is unallocated, without a load */
    g_assert_true(qcow2_map_unit(&m, 1000, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_UNALLOCATED);
    g_assert_cmpuint(span, ==, per_l1 - 1000);
    g_assert_cmpuint(t.loads, ==, 0);
    g_assert_true(qcow2_map_unit(&m, per_l1 + 100, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_DATA);
    g_assert_cmpuint(host, ==, HOST(9));
    g_assert_cmpuint(span, ==, 0);
    g_assert_true(qcow2_map_unit(&m, per_l1 + CS, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_ZERO);
    g_assert_true(qcow2_map_unit(&m, per_l1 + 2 * CS + 1, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_COMPRESSED);
    g_assert_cmpuint(host, ==, QCOW2_OFLAG_COMPRESSED | 42);
    g_assert_true(qcow2_map_unit(&m, per_l1 + 3 * CS, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_UNALLOCATED);
    g_assert_no_error(error);
    /* an unaligned L2 table is corrupt; beyond the L1 table all is unallocated */
    g_assert_false(qcow2_map_unit(&m, 2 * per_l1, &type, &host, &span, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    g_assert_cmpstr(error->message, ==, "qcow2 image 't.qcow2' is corrupt: L2 table offset is "
                    "unaligned (offset 131584)");
    g_clear_error(&error);
    m.l1_size = 1;
    g_assert_true(qcow2_map_unit(&m, per_l1 + 5, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_UNALLOCATED);
    g_assert_cmpuint(span, ==, per_l1 - 5);
    /* the loader's error passes through */
    m.l1_size = 3;
    l1[2] = HOST(3);
    g_assert_false(qcow2_map_unit(&m, 2 * per_l1, &type, &host, &span, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_IO);
    tables_clear(&t);
}

static void
test_map_unit_subclusters(void)
{
    Qcow2Map m;
    Tables t = { { 0 } };
    guint64 l1[1] = { HOST(1) };
    Qcow2ClusterType type;
    guint64 host;
    guint64 span;
    g_autoptr(GError) error = NULL;

    map_setup(&m, 3, QCOW_INCOMPAT_EXTL2, CS * 4);
    m.l1 = l1;
    m.l1_size = 1;
    m.load = tables_load;
    m.load_data = &t;
    t.tables[0] = g_new0(guint64, CS / 8);
    t.tables[0][2] = HOST(5);                      /* cluster 1 */
    t.tables[0][3] = (1ULL << (32 + 1)) | (1ULL << 3);
    /* subcluster 3 of cluster 1: data at host + 3 subclusters */
    g_assert_true(qcow2_map_unit(&m, CS + 3 * (CS / 32) + 7, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_DATA);
    g_assert_cmpuint(host, ==, HOST(5) + 3 * (CS / 32));
    g_assert_true(qcow2_map_unit(&m, CS + (CS / 32), &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_ZERO);
    g_assert_true(qcow2_map_unit(&m, CS, &type, &host, &span, &error));
    g_assert_cmpint(type, ==, QCOW2_CLUSTER_UNALLOCATED);
    g_assert_no_error(error);
    tables_clear(&t);
}

typedef struct {
    GArray *runs;       /* guint64 pairs: offset, length */
    guint stop_after;   /* 0 = never stop */
} Runs;

static gboolean
runs_add(gpointer data, guint64 offset, guint64 len, GError **error)
{
    Runs *r = data;

    g_array_append_val(r->runs, offset);
    g_array_append_val(r->runs, len);
    if (r->stop_after && r->runs->len / 2 >= r->stop_after) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID, "stop");
        return FALSE;
    }
    return TRUE;
}

static void
test_walk(void)
{
    Qcow2Map m;
    Tables t = { { 0 } };
    guint64 per_l1 = CS / 16 * CS;             /* extended entries: 16 bytes each */
    guint64 l1[3] = { HOST(1), 0, HOST(2) };
    Runs r = { g_array_new(FALSE, FALSE, sizeof(guint64)), 0 };
    guint64 *v;
    g_autoptr(GError) error = NULL;

    map_setup(&m, 3, QCOW_INCOMPAT_EXTL2, 2 * per_l1 + 3 * CS + 512);
    m.l1 = l1;
    m.l1_size = 3;
    m.load = tables_load;
    m.load_data = &t;
    t.tables[0] = g_new0(guint64, CS / 8);
    t.tables[1] = g_new0(guint64, CS / 8);
    /* table 0: clusters 0 (zero), 1 (mapped, empty bitmap), 3 (compressed), 4 (data) */
    t.tables[0][0 * 2 + 1] = 1ULL << 40;
    t.tables[0][1 * 2] = HOST(8);
    t.tables[0][3 * 2] = QCOW2_OFLAG_COMPRESSED | 1;
    t.tables[0][4 * 2] = HOST(9);
    t.tables[0][4 * 2 + 1] = 1;
    /* table 2: its last cluster holds data; the one after lies past the virtual size */
    t.tables[1][3 * 2] = HOST(10);
    t.tables[1][3 * 2 + 1] = 1;
    t.tables[1][4 * 2] = HOST(11);
    t.tables[1][4 * 2 + 1] = 1;

    g_assert_true(qcow2_map_walk(&m, G_MAXUINT64, runs_add, &r, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(r.runs->len, ==, 6);
    v = (guint64 *)r.runs->data;
    g_assert_cmpuint(v[0], ==, 0);                  /* clusters 0 and 1, merged */
    g_assert_cmpuint(v[1], ==, 2 * CS);
    g_assert_cmpuint(v[2], ==, 3 * CS);             /* clusters 3 and 4 */
    g_assert_cmpuint(v[3], ==, 2 * CS);
    g_assert_cmpuint(v[4], ==, 2 * per_l1 + 3 * CS);   /* a whole cluster past the size */
    g_assert_cmpuint(v[5], ==, CS);
    g_assert_cmpuint(t.loads, ==, 2);

    /* @end cuts the walk; the callback stops it */
    g_array_set_size(r.runs, 0);
    g_assert_true(qcow2_map_walk(&m, 4 * CS, runs_add, &r, &error));
    g_assert_cmpuint(r.runs->len, ==, 4);
    g_assert_cmpuint(((guint64 *)r.runs->data)[3], ==, CS);
    g_array_set_size(r.runs, 0);
    r.stop_after = 1;
    g_assert_false(qcow2_map_walk(&m, G_MAXUINT64, runs_add, &r, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpuint(r.runs->len, ==, 2);
    g_clear_error(&error);

    /* a corrupt entry fails the walk as it fails a read */
    t.tables[1][0 * 2 + 1] = 1;
    r.stop_after = 0;
    g_assert_false(qcow2_map_walk(&m, G_MAXUINT64, runs_add, &r, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    g_array_unref(r.runs);
    tables_clear(&t);
}

static void
test_compressed_extent(void)
{
    Qcow2Map m;
    guint64 off;
    guint64 len;
    /* 64 KiB clusters: offset in bits 0..53, additional sectors in bits 54..61 */
    guint64 entry = QCOW2_OFLAG_COMPRESSED | (3ULL << 54) | 0x12345;

    map_setup(&m, 3, 0, 1 << 20);
    qcow2_compressed_extent(&m, entry, &off, &len);
    g_assert_cmpuint(off, ==, 0x12345);
    g_assert_cmpuint(len, ==, 4 * 512 - (0x12345 & 511));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qcow2/init", test_init);
    g_test_add_func("/qcow2/decode/standard", test_decode_standard);
    g_test_add_func("/qcow2/decode/extended", test_decode_extended);
    g_test_add_func("/qcow2/map-unit", test_map_unit);
    g_test_add_func("/qcow2/map-unit/subclusters", test_map_unit_subclusters);
    g_test_add_func("/qcow2/walk", test_walk);
    g_test_add_func("/qcow2/compressed-extent", test_compressed_extent);
    return g_test_run();
}
