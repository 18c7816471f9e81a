/* test-image.c: the byte-exact chain reader against qemu-img convert, random reads, SEEK_DATA/HOLE, hostile images. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "image.h"
#include "util.h"

#include "fixtures.h"
}

typedef struct {
    const char *name;
    const char *top;
    guint nreads;       /* random reads on the top layer */
    const char *format; /* of the top; NULL = qcow2 */
} GoodCase;

static const GoodCase good_cases[] = {
    { "chain3", "chain3-top.qcow2", 1000 },
    { "c512", "c512-top.qcow2", 1000 },
    { "c2m", "c2m-top.qcow2", 700 },
    { "comp-overlay-zstd", "comp-top.qcow2", 700 },
    { "comp-zlib", "comp-zlib.qcow2", 500 },
    { "comp-4k", "comp-4k.qcow2", 500 },
    { "short-backing", "short-top.qcow2", 600 },
    { "v2", "v2-top.qcow2", 600 },
    { "probed-base", "probe-top.qcow2", 400 },
    { "extended-l2", "extl2-top.qcow2", 600 },
    { "odd-raw", "odd.raw", 50, "raw" },
    { "odd-qcow2", "odd.qcow2", 50 },
    { "odd-backing", "odd-top.qcow2", 200 },
    { "odd-raw-backing", "odd-raw-top.qcow2", 200 },
    { "data-file", "datafile-top.qcow2", 400 },
    { "data-file-raw", "datafile-raw.qcow2", 400 },
    { "beyond-eof", "beyond-eof.qcow2", 200 },
    { "l2-beyond-eof", "bad-l1.qcow2", 200 },
};

static guint64 total_reads;

/* qemu-img convert -O raw of one chain element, loaded in memory. */
static GBytes *
reference(const ChainLayer *layer)
{
    g_autofree char *base = g_path_get_basename(layer->src->path);
    g_autofree char *name = g_strdup_printf("ref-%s.raw", base);
    g_autofree char *out = fix(name);
    const char *argv[] = { "qemu-img", "convert", "-f", layer->src->format, "-O", "raw",
                           layer->src->path, out, NULL };
    g_autoptr(GError) error = NULL;
    char *data = NULL;
    gsize len = 0;

    run_cmd(argv);
    g_file_get_contents(out, &data, &len, &error);
    g_assert_no_error(error);
    unlink(out);
    return g_bytes_new_take(data, len);
}

static void
compare_whole(Image *img, GBytes *ref, gsize chunk, const char *what)
{
    gsize len = 0;
    const guint8 *want = g_bytes_get_data(ref, &len);
    g_autofree guint8 *buf = g_malloc(chunk);
    guint64 off = 0;

    g_assert_cmpuint(image_size(img), ==, len);
    while (off < len) {
        g_autoptr(GError) error = NULL;
        gssize n = image_pread(img, buf, chunk, off, &error);

        g_assert_no_error(error);
        g_assert_cmpint(n, ==, (gssize)MIN(chunk, len - off));
        if (memcmp(buf, want + off, n) != 0)
            g_error("%s: whole-image compare differs in [%" G_GUINT64_FORMAT ", +%zd) "
                    "(request size %zu)", what, off, n, chunk);
        off += n;
    }
    g_assert_cmpint(image_pread(img, buf, chunk, len, NULL), ==, 0);
}

static void
random_reads(Image *img, GBytes *ref, guint count, const char *what)
{
    gsize len = 0;
    const guint8 *want = g_bytes_get_data(ref, &len);
    g_autofree guint8 *buf = g_malloc(1024 * 1024);
    guint32 seed = g_test_rand_int();
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    guint i;

    g_test_message("%s: %u random reads, seed %u", what, count, seed);
    for (i = 0; i < count; i++) {
        g_autoptr(GError) error = NULL;
        /* sizes spread over 1 B .. 1 MiB on a log scale, offsets anywhere */
        guint64 size = MIN((guint64)1 << g_rand_int_range(rand, 0, 21),
                           (guint64)g_rand_int_range(rand, 1, 1024 * 1024 + 1));
        guint64 off = ((guint64)g_rand_int(rand) << 20 ^ g_rand_int(rand)) % (len + 1);
        gssize want_n = MIN(size, len - off);
        gssize n = image_pread(img, buf, size, off, &error);

        g_assert_no_error(error);
        if (n != want_n || memcmp(buf, want + off, n) != 0)
            g_error("%s: read %u (seed %u) at %" G_GUINT64_FORMAT " size %" G_GUINT64_FORMAT
                    " differs", what, i, seed, off, size);
    }
    total_reads += count;
}

typedef struct {
    guint64 start;
    guint64 length;
    gboolean data;
} Extent;

static GArray *
qemu_map(const ChainLayer *layer)
{
    const char *argv[] = { "qemu-img", "map", "--output=json", "-f", layer->src->format,
                           layer->src->path, NULL };
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    int status = 0;
    g_autoptr(GRegex) re = g_regex_new("\"start\": (\\d+), \"length\": (\\d+),.*\"data\": "
                                       "(true|false)", 0, 0, NULL);
    g_autoptr(GMatchInfo) match = NULL;
    GArray *extents = g_array_new(FALSE, FALSE, sizeof(Extent));

    g_spawn_sync(fixdir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                 NULL, NULL, &out, NULL, &status, &error);
    g_assert_no_error(error);
    g_regex_match(re, out, 0, &match);
    while (g_match_info_matches(match)) {
        g_autofree char *s = g_match_info_fetch(match, 1);
        g_autofree char *l = g_match_info_fetch(match, 2);
        g_autofree char *d = g_match_info_fetch(match, 3);
        Extent e = { g_ascii_strtoull(s, NULL, 10), g_ascii_strtoull(l, NULL, 10),
                     g_str_equal(d, "true") };
        g_array_append_val(extents, e);
        g_match_info_next(match, NULL);
    }
    g_assert_cmpuint(extents->len, >, 0);
    return extents;
}

static void
check_seek(Image *img, const ChainLayer *layer)
{
    g_autoptr(GArray) map = qemu_map(layer);
    guint ndata = 0;
    guint nhole = 0;
    guint i;

    for (i = 0; i < map->len; i++) {
        const Extent *e = &g_array_index(map, Extent, i);
        guint64 at = 0;
        guint64 other = 0;

        g_assert_true(image_seek(img, e->start, e->data, &at, NULL));
        g_assert_true(image_seek(img, e->start, !e->data, &other, NULL));
        if (at != e->start || other < e->start + e->length)
            g_error("%s: extent [%" G_GUINT64_FORMAT ", +%" G_GUINT64_FORMAT ") data=%d: "
                    "seek same %" G_GUINT64_FORMAT " other %" G_GUINT64_FORMAT,
                    layer->src->path, e->start, e->length, e->data, at, other);
        if (e->data)
            ndata++;
        else
            nhole++;
    }
    g_test_message("%s: %u data and %u hole extents agree with qemu-img map",
                   layer->label, ndata, nhole);
}

/* One byte per cluster of @unit bytes: 1 = allocated. */
typedef struct {
    GByteArray *map;
    guint64 unit;
} UnitMap;

static gboolean
mark_units(gpointer data, guint64 offset, guint64 len, GError **error)
{
    UnitMap *m = data;

    g_assert_cmpuint(len, >, 0);
    for (guint64 u = offset / m->unit; u < m->map->len && u * m->unit < offset + len; u++)
        m->map->data[u] = 1;
    return TRUE;
}

/* The allocation walk of the top layer counts the clusters that qemu-img map says the
 * top layer decides (depth 0 and present: data, compressed or zero), no more, no fewer. */
static void
check_layer_allocated(Image *img, const ChainLayer *layer)
{
    const char *argv[] = { "qemu-img", "map", "--output=json", "-f", layer->src->format,
                           layer->src->path, NULL };
    guint64 unit = layer->info->cluster_size ? layer->info->cluster_size : 512;
    guint64 n = (image_size(img) + unit - 1) / unit;
    g_autoptr(GByteArray) want = g_byte_array_new();
    g_autoptr(GByteArray) got = g_byte_array_new();
    g_autoptr(GRegex) re = g_regex_new("\"start\": (\\d+), \"length\": (\\d+), \"depth\": "
                                       "(\\d+), \"present\": (true|false)", 0, 0, NULL);
    g_autoptr(GMatchInfo) match = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    UnitMap walked = { got, unit };
    UnitMap mapped = { want, unit };
    guint nalloc = 0;
    int status = 0;

    g_byte_array_set_size(want, n);
    g_byte_array_set_size(got, n);
    memset(want->data, 0, n);
    memset(got->data, 0, n);
    g_spawn_sync(fixdir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                 NULL, NULL, &out, NULL, &status, &error);
    g_assert_no_error(error);
    g_regex_match(re, out, 0, &match);
    g_assert_true(g_match_info_matches(match));
    while (g_match_info_matches(match)) {
        g_autofree char *s = g_match_info_fetch(match, 1);
        g_autofree char *l = g_match_info_fetch(match, 2);
        g_autofree char *d = g_match_info_fetch(match, 3);
        g_autofree char *present = g_match_info_fetch(match, 4);

        /* without a backing file, what is unallocated is depth 0 too, but not present */
        if (g_str_equal(d, "0") && g_str_equal(present, "true"))
            mark_units(&mapped, g_ascii_strtoull(s, NULL, 10), g_ascii_strtoull(l, NULL, 10), NULL);
        g_match_info_next(match, NULL);
    }
    g_assert_true(image_layer_allocated(img, 0, mark_units, &walked, &error));
    g_assert_no_error(error);
    for (guint64 u = 0; u < n; u++) {
        if (want->data[u] != got->data[u])
            g_error("%s: cluster %" G_GUINT64_FORMAT " (of %" G_GUINT64_FORMAT " bytes): "
                    "qemu-img map says %s, the walk %s", layer->label, u, unit,
                    want->data[u] ? "allocated" : "not", got->data[u] ? "allocated" : "not");
        nalloc += got->data[u];
    }
    g_test_message("%s: %u of %" G_GUINT64_FORMAT " clusters allocated, as qemu-img map says",
                   layer->label, nalloc, n);
}

static void
test_good(gconstpointer data)
{
    const GoodCase *tc = data;
    g_autoptr(Chain) chain = resolve(tc->top, tc->format ? tc->format : "qcow2");
    guint i;

    g_assert_null(chain->error);
    for (i = 0; i < chain->layers->len; i++) {
        const ChainLayer *layer = layer_at(chain, i);
        g_autoptr(GError) error = NULL;
        g_autoptr(Image) img = image_open(chain, i, &error);
        g_autoptr(GBytes) ref = NULL;
        g_autofree char *what = g_strdup_printf("%s/%s", tc->name, layer->label);
        static const gsize chunks[] = { 131072, 1048576, 4096 * 3 + 17 };

        g_assert_no_error(error);
        ref = reference(layer);
        /* the size stat() and info show is the size qemu reads */
        g_assert_cmpuint(layer->info->virtual_size, ==, g_bytes_get_size(ref));
        compare_whole(img, ref, chunks[i % G_N_ELEMENTS(chunks)], what);
        random_reads(img, ref, i == 0 ? tc->nreads : 50, what);
        if (i == 0)
            check_seek(img, layer);
        check_layer_allocated(img, layer);
    }
    g_test_message("%" G_GUINT64_FORMAT " random reads so far", total_reads);
}

/* One layer, no chain rules: exercises the reader's own checks. */
static Chain *
chain_single(const char *name, const char *format)
{
    Chain *chain = g_new0(Chain, 1);
    ChainLayer *layer = g_new0(ChainLayer, 1);

    layer->src = src_file(name, format);
    layer->label = g_strdup("vda");
    chain->layers = g_ptr_array_new();
    g_ptr_array_add(chain->layers, layer);
    return chain;
}

static void
chain_single_free(Chain *chain)
{
    ChainLayer *layer = g_ptr_array_index(chain->layers, 0);

    storage_source_free(layer->src);
    g_free(layer->label);
    g_free(layer);
    g_ptr_array_unref(chain->layers);
    g_free(chain);
}

static void
expect_open_error(const char *name, int code, const char *substring)
{
    Chain *chain = chain_single(name, "qcow2");
    g_autoptr(GError) error = NULL;
    Image *img = image_open(chain, 0, &error);

    g_assert_null(img);
    g_assert_error(error, CORE_ERROR, code);
    g_test_message("%s: %s", name, error->message);
    g_assert_nonnull(strstr(error->message, substring));
    chain_single_free(chain);
}

static void
test_truncated(void)
{
    expect_open_error("trunc-header.qcow2", CORE_ERROR_CORRUPT, "truncated");
    expect_open_error("trunc-l1.qcow2", CORE_ERROR_CORRUPT, "L1 table");
}

static void
test_huge(void)
{
    expect_open_error("huge-size.qcow2", CORE_ERROR_CORRUPT, "1152921504606846976 bytes");
    expect_open_error("huge-l1.qcow2", CORE_ERROR_CORRUPT, "L1 table that is too large");
}

static void
test_encrypted(void)
{
    g_autoptr(Chain) chain = resolve("encrypted.qcow2", "qcow2");
    g_autoptr(GError) error = NULL;
    Image *img = NULL;

    g_assert_cmpuint(chain->layers->len, ==, 1);
    g_assert_true(layer_at(chain, 0)->info->encrypted);
    img = image_open(chain, 0, &error);
    g_assert_null(img);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED);
    g_assert_nonnull(strstr(error->message, "encrypted"));
}

/* Where qemu fails with EIO, so do we: qemu-img convert fails and so does a
 * read of the damaged cluster, with the reason. */
static void
test_qemu_eio(void)
{
    static const struct {
        const char *name;
        const char *reason;
    } cases[] = {
        { "zero-unaligned.qcow2", "offset is unaligned" },
        { "extl2-both.qcow2", "both allocated and zero" },
        { "v2-zero.qcow2", "zero cluster in a version 2 image" },
        { "l2-unaligned.qcow2", "L2 table offset is unaligned" },
        { "datafile-moved.qcow2", "does not match the guest offset" },
        { "datafile-comp.qcow2", "compressed cluster in an image with an external data file" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = fix(cases[i].name);
        const char *argv[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path,
                               "/dev/null", NULL };
        g_autoptr(Chain) chain = resolve(cases[i].name, "qcow2");
        g_autoptr(GError) error = NULL;
        g_autoptr(GError) serror = NULL;
        g_autoptr(Image) img = NULL;
        g_autofree guint8 *buf = g_malloc(65536);
        int status = 0;
        guint64 at = 0;

        g_assert_true(g_spawn_sync(fixdir, (char **)argv, NULL,
                                   G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                                   G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                                   &status, NULL));
        g_assert_false(g_spawn_check_wait_status(status, NULL));
        g_assert_null(chain->error);
        img = image_open(chain, 0, &error);
        g_assert_no_error(error);
        g_assert_cmpint(image_pread(img, buf, 65536, 65536, &error), ==, -1);
        g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
        g_test_message("%s: %s", cases[i].name, error->message);
        g_assert_nonnull(strstr(error->message, cases[i].reason));
        g_assert_false(image_seek(img, 65536, FALSE, &at, &serror));
        g_assert_error(serror, CORE_ERROR, CORE_ERROR_CORRUPT);
    }
}

/* A data file that is missing or not a regular file or block device: the chain
 * element's error, and the reader's own check (without the chain) names it too,
 * at once (a FIFO is never waited on). */
static void
test_data_file_broken(void)
{
    g_autofree char *dir = fix("datafile-broken");
    g_autofree char *src = fix("datafile.qcow2");
    g_autofree char *img_path = g_build_filename(dir, "datafile.qcow2", NULL);
    g_autofree char *data = g_build_filename(dir, "datafile.raw", NULL);
    g_autofree char *contents = NULL;
    gsize len = 0;

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    g_assert_true(g_file_get_contents(src, &contents, &len, NULL));
    g_assert_true(g_file_set_contents(img_path, contents, len, NULL));
    for (guint round = 0; round < 2; round++) {
        g_autoptr(Chain) chain = NULL;
        g_autoptr(GError) error = NULL;
        Chain *single;

        if (round == 1)
            g_assert_cmpint(mkfifo(data, 0600), ==, 0);
        chain = resolve("datafile-broken/datafile.qcow2", "qcow2");
        g_assert_nonnull(layer_at(chain, 0)->error);
        g_test_message("%s", layer_at(chain, 0)->error);
        g_assert_nonnull(strstr(layer_at(chain, 0)->error, data));
        g_assert_nonnull(strstr(layer_at(chain, 0)->error, round == 0 ? "Cannot access data file"
                                : "not a regular file or block device"));
        g_assert_null(image_open(chain, 0, NULL));
        single = chain_single("datafile-broken/datafile.qcow2", "qcow2");
        g_assert_null(image_open(single, 0, &error));
        chain_single_free(single);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, data));
        if (round == 0)
            g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        else
            g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    }
    unlink(data);
    unlink(img_path);
    rmdir(dir);
}

/* VmRSS of this process in KiB. */
static guint64
rss_kib(void)
{
    g_autofree char *status = NULL;
    const char *p;

    g_assert_true(g_file_get_contents("/proc/self/status", &status, NULL, NULL));
    p = strstr(status, "VmRSS:");
    g_assert_nonnull(p);
    return g_ascii_strtoull(p + 6, NULL, 10);
}

/* The L1 table is read once per unchanged image, not once per reader: ten
 * readers of an image with a 32 MiB L1 table (the largest qemu accepts) hold
 * it once; a changed image is read again. */
static void
test_l1_shared(void)
{
    g_autofree char *path = fix("big-l1.qcow2");
    /* 128 GiB in 512-byte clusters: 4 Mi L1 entries (32 MiB) at 1 MiB, sparse */
    g_autofree char *script = g_strdup_printf(
        "set -e; qemu-img create -q -f qcow2 -o cluster_size=512 %s 1M; "
        "printf '\\000\\000\\000\\040\\000\\000\\000\\000' | "
        "dd of=%s bs=1 seek=24 conv=notrunc status=none; "
        "printf '\\000\\100\\000\\000\\000\\000\\000\\000\\000\\020\\000\\000' | "
        "dd of=%s bs=1 seek=36 conv=notrunc status=none; "
        "truncate -s 34603008 %s", path, path, path, path);
    const char *argv[] = { "sh", "-c", script, NULL };
    g_autoptr(GPtrArray) imgs = g_ptr_array_new_with_free_func((GDestroyNotify)image_close);
    g_autoptr(Chain) chain = NULL;
    guint64 before;
    guint64 grown;
    char buf[4096];

    run_cmd(argv);
    chain = resolve("big-l1.qcow2", "qcow2");
    g_assert_null(chain->error);
    g_assert_cmpuint(layer_at(chain, 0)->info->virtual_size, ==, 128ULL << 30);
    before = rss_kib();
    for (guint i = 0; i < 10; i++) {
        g_autoptr(GError) error = NULL;
        Image *img = image_open(chain, 0, &error);

        g_assert_no_error(error);
        g_assert_cmpint(image_pread(img, buf, sizeof(buf), (guint64)i << 33, &error), ==,
                        sizeof(buf));
        g_assert_true(util_is_zero((const guint8 *)buf, sizeof(buf)));
        g_ptr_array_add(imgs, img);
    }
    grown = rss_kib() - before;
    g_test_message("10 readers of a 32 MiB L1 table: RSS grew by %" G_GUINT64_FORMAT " KiB",
                   grown);
    g_assert_cmpuint(grown, <, 3 * 32 * 1024);
    /* a changed file has another table: a new reader sees the change */
    {
        const char *touch[] = { "qemu-io", "-f", "qcow2", "-c", "write -P 7 5G 512", path,
                                NULL };
        g_autoptr(Chain) chain2 = NULL;
        g_autoptr(Image) img = NULL;
        g_autoptr(GError) error = NULL;

        run_cmd(touch);
        chain2 = resolve("big-l1.qcow2", "qcow2");
        img = image_open(chain2, 0, &error);
        g_assert_no_error(error);
        g_assert_cmpint(image_pread(img, buf, 512, 5ULL << 30, &error), ==, 512);
        g_assert_cmpint(buf[0], ==, 7);
    }
    g_ptr_array_set_size(imgs, 0);
    unlink(path);
}

/* A chain whose layers are in error cannot be opened from any element above. */
static void
test_broken_chain(void)
{
    static const char *const tops[] = { "missing.qcow2", "loop-self.qcow2", "loop-a.qcow2",
                                        "evil-top.qcow2", "trunc-header.qcow2" };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(tops); i++) {
        g_autoptr(Chain) chain = resolve(tops[i], "qcow2");
        g_autoptr(GError) error = NULL;
        Image *img = image_open(chain, 0, &error);

        g_assert_null(img);
        g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    }
}

/* Random damage to the metadata of a real image: errors, never a crash
 * (valgrind checks reads stay in bounds). */
static void
test_mutations(void)
{
    static const char *const sources[] = { "chain3-top.qcow2", "extl2-top.qcow2",
                                           "comp-4k.qcow2" };
    g_autofree char *path = fix("mutant.qcow2");
    g_autofree guint8 *buf = g_malloc(1024 * 1024);
    guint32 seed = g_test_rand_int();
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    guint ok = 0;
    guint i;

    g_test_message("mutations: seed %u", seed);
    for (i = 0; i < 180; i++) {
        g_autofree char *orig = fix(sources[i % G_N_ELEMENTS(sources)]);
        g_autofree char *copy = NULL;
        gsize len = 0;
        Chain *chain;
        Image *img;
        guint j;

        g_assert_true(g_file_get_contents(orig, &copy, &len, NULL));
        for (j = 0; j < 8; j++) {   /* the header sometimes, the metadata clusters after it */
            gsize at = (j == 0 && i % 3 == 0) ? (gsize)g_rand_int_range(rand, 0, 128)
                       : (gsize)g_rand_int_range(rand, 0, MIN(len, 6 * 65536));
            copy[at] = g_rand_int_range(rand, 0, 256);
        }
        g_assert_true(g_file_set_contents(path, copy, len, NULL));
        chain = chain_single("mutant.qcow2", "qcow2");
        img = image_open(chain, 0, NULL);
        if (img) {
            guint64 off;
            guint64 at = 0;

            for (off = 0; off < MIN(image_size(img), 16 * 1024 * 1024); off += 1024 * 1024)
                image_pread(img, buf, 1024 * 1024, off, NULL);
            image_seek(img, 0, FALSE, &at, NULL);
            image_seek(img, 0, TRUE, &at, NULL);
            image_close(img);
            ok++;
        }
        chain_single_free(chain);
    }
    g_test_message("mutations: %u of 180 opened", ok);
    g_assert_cmpuint(ok, >, 0);
    unlink(path);
}

static void
test_total_reads(void)
{
    g_assert_cmpuint(total_reads, >=, 5000);
}

/* -m perf: 1 GiB of a 3-layer chain (raw base with 256 MiB of data, two qcow2
 * overlays with scattered writes) in 128 KiB and 1 MiB requests, page cache warm. */
static void
test_perf(void)
{
    g_autofree char *base = fix("perf-base.raw");
    g_autofree char *mid = fix("perf-mid.qcow2");
    g_autofree char *top = fix("perf-top.qcow2");
    g_autofree char *script = g_strdup_printf(
        "set -e; truncate -s 1G %s; head -c 268435456 /dev/urandom | "
        "dd of=%s bs=1M seek=300 conv=notrunc status=none; "
        "qemu-img create -q -f qcow2 -b %s -F raw %s 1G; "
        "qemu-img create -q -f qcow2 -b %s -F qcow2 %s 1G; "
        "for i in $(seq 0 63); do echo \"write -P $i $((i * 16))M 1M\"; done | "
        "qemu-io -f qcow2 %s >/dev/null; "
        "for i in $(seq 0 255); do echo \"write -P $i $((i * 4 + 1))M 300k\"; done | "
        "qemu-io -f qcow2 %s >/dev/null", base, base, base, mid, mid, top, mid, top);
    const char *argv[] = { "sh", "-c", script, NULL };
    static const gsize sizes[] = { 128 * 1024, 1024 * 1024 };
    g_autoptr(Chain) chain = NULL;
    g_autoptr(Image) img = NULL;
    g_autofree guint8 *buf = g_malloc(1024 * 1024);
    guint s;

    run_cmd(argv);
    chain = resolve("perf-top.qcow2", "qcow2");
    g_assert_cmpuint(chain->layers->len, ==, 3);
    img = image_open(chain, 0, NULL);
    g_assert_nonnull(img);
    for (s = 0; s < G_N_ELEMENTS(sizes); s++) {
        guint64 total = 0;
        gdouble secs;

        for (guint64 off = 0; off < image_size(img); off += sizes[s])   /* warm the cache */
            image_pread(img, buf, sizes[s], off, NULL);
        g_test_timer_start();
        for (guint64 off = 0; off < image_size(img); off += sizes[s])
            total += image_pread(img, buf, sizes[s], off, NULL);
        secs = g_test_timer_elapsed();
        g_assert_cmpuint(total, ==, image_size(img));
        g_test_maximized_result(total / secs / 1e9, "%.2f GB/s in %zu KiB requests",
                                total / secs / 1e9, sizes[s] / 1024);
    }
    unlink(base);
    unlink(mid);
    unlink(top);
}

int
main(int argc, char **argv)
{
    int ret;
    guint i;

    g_test_init(&argc, &argv, NULL);
    fixtures_setup();
    for (i = 0; i < G_N_ELEMENTS(good_cases); i++) {
        g_autofree char *path = g_strdup_printf("/image/read/%s", good_cases[i].name);
        g_test_add_data_func(path, &good_cases[i], test_good);
    }
    g_test_add_func("/image/read/total", test_total_reads);
    g_test_add_func("/image/broken/truncated", test_truncated);
    g_test_add_func("/image/broken/huge", test_huge);
    g_test_add_func("/image/broken/encrypted", test_encrypted);
    g_test_add_func("/image/broken/qemu-eio", test_qemu_eio);
    g_test_add_func("/image/broken/data-file", test_data_file_broken);
    g_test_add_func("/image/memory/l1-shared", test_l1_shared);
    g_test_add_func("/image/broken/chain", test_broken_chain);
    g_test_add_func("/image/broken/mutations", test_mutations);
    if (g_test_perf())
        g_test_add_func("/image/perf", test_perf);
    ret = g_test_run();
    fixtures_teardown();
    return ret;
}
