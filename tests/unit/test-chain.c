/* test-chain.c: backing chain resolution (libvirt's probing rules) and image header parsing. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "qcow.h"

#include "fixtures.h"
}

static void
assert_layer(const Chain *chain, guint i, const char *label, const char *file,
             const char *format, gboolean detected)
{
    const ChainLayer *layer = layer_at(chain, i);
    g_autofree char *path = fix(file);

    g_assert_cmpstr(layer->label, ==, label);
    g_assert_cmpstr(layer->src->path, ==, path);
    g_assert_cmpstr(layer->src->format, ==, format);
    g_assert_cmpint(layer->src->detected, ==, detected);
    g_assert_null(layer->src->backing);
}

static void
test_good_chain(void)
{
    g_autoptr(Chain) chain = resolve("chain3-top.qcow2", "qcow2");
    const QcowInfo *info;

    g_assert_null(chain->error);
    g_assert_true(chain->terminated);
    g_assert_cmpuint(chain->layers->len, ==, 3);
    assert_layer(chain, 0, "vda", "chain3-top.qcow2", "qcow2", FALSE);
    assert_layer(chain, 1, "vda[1]", "chain3-mid.qcow2", "qcow2", TRUE);
    assert_layer(chain, 2, "vda[2]", "chain3-base.raw", "raw", TRUE);
    g_assert_cmpstr(layer_at(chain, 1)->src->rel_path, ==, "chain3-mid.qcow2");
    g_assert_true(layer_at(chain, 1)->src->readonly);

    info = layer_at(chain, 0)->info;
    g_assert_cmpstr(info->format, ==, "qcow2");
    g_assert_cmpuint(info->virtual_size, ==, 8 * 1024 * 1024);
    g_assert_cmpuint(info->cluster_size, ==, 65536);
    g_assert_cmpuint(info->version, ==, 3);
    g_assert_cmpstr(info->backing_name, ==, "chain3-mid.qcow2");
    g_assert_cmpstr(info->backing_format, ==, "qcow2");
    g_assert_cmpuint(info->nsnapshots, ==, 0);
    g_assert_cmpstr(info->compression, ==, "zlib");
    g_assert_false(info->encrypted);
    g_assert_cmpuint(info->allocated, >, 0);
    g_assert_cmpuint(info->file_size, >, 196608);

    info = layer_at(chain, 1)->info;
    g_assert_cmpuint(info->nsnapshots, ==, 1);
    g_assert_cmpstr(info->backing_format, ==, "raw");

    info = layer_at(chain, 2)->info;
    g_assert_cmpstr(info->format, ==, "raw");
    g_assert_cmpuint(info->virtual_size, ==, 8 * 1024 * 1024);
    g_assert_cmpuint(info->file_size, ==, 8 * 1024 * 1024);
    g_assert_cmpuint(info->allocated, <, 4 * 1024 * 1024);   /* sparse */
    g_assert_null(info->backing_name);
    for (guint i = 0; i < 3; i++)
        g_assert_null(layer_at(chain, i)->error);
}

static void
test_info_variants(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *c512 = fix("c512-top.qcow2");
    g_autofree char *c2m = fix("c2m-top.qcow2");
    g_autofree char *v2 = fix("v2-top.qcow2");
    g_autofree char *zstd = fix("comp-zstd.qcow2");
    g_autoptr(QcowInfo) a = qcow_info_read(c512, "qcow2", &error);
    g_autoptr(QcowInfo) b = qcow_info_read(c2m, "qcow2", &error);
    g_autoptr(QcowInfo) c = qcow_info_read(v2, "qcow2", &error);
    g_autoptr(QcowInfo) d = qcow_info_read(zstd, "qcow2", &error);

    g_assert_no_error(error);
    g_assert_cmpuint(a->cluster_size, ==, 512);
    g_assert_cmpuint(b->cluster_size, ==, 2 * 1024 * 1024);
    g_assert_cmpuint(c->version, ==, 2);
    g_assert_cmpstr(c->backing_format, ==, "qcow2");
    g_assert_cmpstr(d->compression, ==, "zstd");
    g_assert_null(qcow_info_read(v2, "vmdk", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED);
}

/* The XML gives the first backing element; the rest is probed below it. */
static void
test_xml_then_probe(void)
{
    g_autoptr(StorageSource) top = src_file("chain3-top.qcow2", "qcow2");
    g_autoptr(Chain) chain = NULL;
    g_autoptr(StorageSource) rebuilt = NULL;

    top->backing = src_file("chain3-mid.qcow2", "qcow2");
    top->backing->readonly = TRUE;
    chain = chain_resolve(top, "vdb");
    g_assert_null(chain->error);
    g_assert_cmpuint(chain->layers->len, ==, 3);
    assert_layer(chain, 0, "vdb", "chain3-top.qcow2", "qcow2", FALSE);
    assert_layer(chain, 1, "vdb[1]", "chain3-mid.qcow2", "qcow2", FALSE);
    assert_layer(chain, 2, "vdb[2]", "chain3-base.raw", "raw", TRUE);

    rebuilt = chain_to_source(chain);
    g_assert_cmpstr(rebuilt->path, ==, layer_at(chain, 0)->src->path);
    g_assert_false(rebuilt->detected);
    g_assert_false(rebuilt->backing->detected);
    g_assert_true(rebuilt->backing->backing->detected);
    g_assert_cmpstr(rebuilt->backing->backing->format, ==, "raw");
    g_assert_null(rebuilt->backing->backing->backing);
    g_assert_true(rebuilt->backing->backing->backing_terminated);
    g_assert_false(rebuilt->backing_terminated);
}

/* <backingStore/> ends the chain even though the header names a backing file. */
static void
test_xml_terminator(void)
{
    g_autoptr(StorageSource) top = src_file("chain3-top.qcow2", "qcow2");
    g_autoptr(Chain) chain = NULL;
    g_autoptr(StorageSource) rebuilt = NULL;

    top->backing_terminated = TRUE;
    chain = chain_resolve(top, "vda");
    g_assert_null(chain->error);
    g_assert_cmpuint(chain->layers->len, ==, 1);
    g_assert_true(chain->terminated);
    rebuilt = chain_to_source(chain);
    g_assert_null(rebuilt->backing);
    g_assert_true(rebuilt->backing_terminated);
}

/* No <driver type>: raw, never probed, even for a qcow2 file. */
static void
test_top_never_probed(void)
{
    g_autoptr(Chain) chain = resolve("chain3-top.qcow2", NULL);
    const ChainLayer *layer;

    g_assert_cmpuint(chain->layers->len, ==, 1);
    layer = layer_at(chain, 0);
    g_assert_null(layer->error);
    g_assert_cmpstr(layer->info->format, ==, "raw");
    g_assert_cmpuint(layer->info->virtual_size, ==, layer->info->file_size);
    g_assert_null(layer->info->backing_name);
}

/* Backing format not recorded, probed image without backing file: accepted. */
static void
test_probe_accepted(void)
{
    g_autoptr(Chain) chain = resolve("probe-top.qcow2", "qcow2");

    g_assert_null(chain->error);
    g_assert_cmpuint(chain->layers->len, ==, 2);
    g_assert_null(layer_at(chain, 0)->info->backing_format);
    assert_layer(chain, 1, "vda[1]", "probe-base.qcow2", "qcow2", TRUE);
    g_assert_cmpuint(layer_at(chain, 1)->info->virtual_size, ==, 4 * 1024 * 1024);
    g_assert_null(layer_at(chain, 1)->error);
}

/* The guest wrote a qcow2 header naming /etc/shadow into its raw disk, and the
 * overlay does not record the backing format: probing finds qcow2 with a backing
 * file, so libvirt refuses it (treated as raw) and never looks at /etc/shadow. */
static void
test_probe_refused(void)
{
    g_autoptr(Chain) chain = resolve("evil-top.qcow2", "qcow2");
    g_autofree char *top = fix("evil-top.qcow2");
    g_autofree char *want = g_strdup_printf("format of backing image 'evil-guest.raw' of image "
                                            "'%s' was not specified in the image metadata (See "
                                            "https://libvirt.org/kbase/backing_chains.html for "
                                            "troubleshooting)", top);
    guint i;

    g_assert_cmpuint(chain->layers->len, ==, 2);
    g_assert_cmpstr(chain->error, ==, want);
    g_assert_null(layer_at(chain, 0)->error);
    assert_layer(chain, 1, "vda[1]", "evil-guest.raw", "raw", TRUE);
    g_assert_cmpstr(layer_at(chain, 1)->error, ==, want);
    g_assert_false(chain->terminated);
    for (i = 0; i < chain->layers->len; i++) {
        const ChainLayer *layer = layer_at(chain, i);
        g_assert_null(strstr(layer->src->path, "shadow"));
        g_assert_true(layer->info == NULL || layer->info->backing_name == NULL ||
                      i == 0);
    }
}

/* The same guest disk recorded as raw by its overlay: never probed, no error. */
static void
test_probe_not_needed(void)
{
    g_autoptr(Chain) chain = resolve("evil-safe.qcow2", "qcow2");

    g_assert_null(chain->error);
    g_assert_true(chain->terminated);
    g_assert_cmpuint(chain->layers->len, ==, 2);
    assert_layer(chain, 1, "vda[1]", "evil-guest.raw", "raw", TRUE);
    g_assert_null(layer_at(chain, 1)->error);
    g_assert_null(layer_at(chain, 1)->info->backing_name);
    /* qemu reads a raw image in whole sectors */
    g_assert_cmpuint(layer_at(chain, 1)->info->virtual_size, ==,
                     QCOW_SECTORS_UP(layer_at(chain, 1)->info->file_size));
}

static void
test_loop_self(void)
{
    g_autoptr(Chain) chain = resolve("loop-self.qcow2", "qcow2");
    g_autofree char *path = fix("loop-self.qcow2");
    g_autofree char *want = g_strdup_printf("backing store for %s is self-referential or too "
                                            "deeply nested", path);

    g_assert_cmpuint(chain->layers->len, ==, 1);
    g_assert_cmpstr(chain->error, ==, want);
    g_assert_cmpstr(layer_at(chain, 0)->error, ==, want);
}

static void
test_loop_two(void)
{
    g_autoptr(Chain) chain = resolve("loop-a.qcow2", "qcow2");
    g_autofree char *path = fix("loop-a.qcow2");
    g_autofree char *want = g_strdup_printf("backing store for %s is self-referential or too "
                                            "deeply nested", path);

    g_assert_cmpuint(chain->layers->len, ==, 2);
    assert_layer(chain, 1, "vda[1]", "loop-b.qcow2", "qcow2", TRUE);
    g_assert_cmpstr(chain->error, ==, want);
    g_assert_null(layer_at(chain, 0)->error);
    g_assert_cmpstr(layer_at(chain, 1)->error, ==, want);
}

static void
test_too_deep(void)
{
    g_autoptr(Chain) chain = resolve("deep/deep-200.qcow2", "qcow2");
    const char *want = "backing chains more than 200 layers deep are not supported for disk 'vda'";

    g_assert_cmpuint(chain->layers->len, ==, CHAIN_MAX_DEPTH);
    g_assert_cmpstr(chain->error, ==, want);
    g_assert_cmpstr(layer_at(chain, 199)->label, ==, "vda[199]");
    g_assert_cmpstr(layer_at(chain, 199)->error, ==, want);
    g_assert_null(layer_at(chain, 198)->error);
    g_assert_cmpstr(layer_at(chain, 199)->src->rel_path, ==, "deep-001.qcow2");
}

/* 200 layers exactly are fine. */
static void
test_deep_ok(void)
{
    g_autoptr(Chain) chain = resolve("deep/deep-199.qcow2", "qcow2");

    g_assert_null(chain->error);
    g_assert_cmpuint(chain->layers->len, ==, 200);
    g_assert_true(chain->terminated);
}

static void
test_missing_backing(void)
{
    g_autoptr(Chain) chain = resolve("missing.qcow2", "qcow2");
    g_autofree char *top = fix("missing.qcow2");
    g_autofree char *gone = fix("does-not-exist.qcow2");
    g_autofree char *want = g_strdup_printf("Cannot access backing file '%s' of storage file "
                                            "'%s': No such file or directory", gone, top);

    g_assert_cmpuint(chain->layers->len, ==, 2);
    g_assert_null(layer_at(chain, 0)->error);
    g_assert_cmpstr(layer_at(chain, 1)->error, ==, want);
    g_assert_null(layer_at(chain, 1)->info);
    g_assert_cmpstr(chain->error, ==, want);
}

static void
test_missing_top(void)
{
    g_autoptr(Chain) chain = resolve("nothing-here.qcow2", "qcow2");
    g_autofree char *top = fix("nothing-here.qcow2");
    g_autofree char *want = g_strdup_printf("Cannot access storage file '%s': No such file or "
                                            "directory", top);

    g_assert_cmpuint(chain->layers->len, ==, 1);
    g_assert_cmpstr(layer_at(chain, 0)->error, ==, want);
}

static void
assert_corrupt_top(const char *name, int code, const char *substring)
{
    g_autoptr(Chain) chain = resolve(name, "qcow2");
    g_autofree char *path = fix(name);
    g_autoptr(GError) error = NULL;
    g_autoptr(QcowInfo) info = qcow_info_read(path, "qcow2", &error);

    g_assert_null(info);
    g_assert_error(error, CORE_ERROR, code);
    g_assert_cmpuint(chain->layers->len, ==, 1);
    g_assert_null(layer_at(chain, 0)->info);
    g_assert_cmpstr(layer_at(chain, 0)->error, ==, error->message);
    g_assert_nonnull(strstr(error->message, substring));
}

static void
test_broken_headers(void)
{
    g_autofree char *enc = fix("encrypted.qcow2");
    g_autoptr(QcowInfo) info = NULL;

    assert_corrupt_top("trunc-header.qcow2", CORE_ERROR_CORRUPT, "truncated");
    assert_corrupt_top("trunc-l1.qcow2", CORE_ERROR_CORRUPT, "L1 table");
    assert_corrupt_top("huge-size.qcow2", CORE_ERROR_CORRUPT, "does not cover");
    assert_corrupt_top("huge-l1.qcow2", CORE_ERROR_CORRUPT, "too large");
    info = qcow_info_read(enc, "qcow2", NULL);
    g_assert_nonnull(info);
    g_assert_true(info->encrypted);
}

static char *
make_overlay(const char *name, const char *backing, const char *fmt)
{
    char *path = fix(name);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing,
                           "-F", fmt, path, "1M", NULL };

    run_cmd(argv);
    return path;
}

static void
test_network_backing(void)
{
    static const struct {
        const char *backing;
        const char *protocol;
        const char *name;
        const char *host;
        guint port;
        const char *socket;
    } cases[] = {
        { "nbd+unix:///exp?socket=/run/x.sock", "nbd", "exp", NULL, 0, "/run/x.sock" },
        { "nbd://example.org:10810/exp", "nbd", "exp", "example.org", 10810, NULL },
        { "nbd:example.org:10809:exportname=disk", "nbd", "disk", "example.org", 10809, NULL },
        { "http://example.org/images/disk.img", "http", "images/disk.img", "example.org", 80,
          NULL },
        { "gluster://gh/vol/img.qcow2", "gluster", "vol/img.qcow2", "gh", 24007, NULL },
        { "rbd:pool/image:conf=/etc/ceph.conf", "rbd", "pool/image", NULL, 0, NULL },
        { "json:{\"file\":{\"driver\":\"http\",\"url\":\"http://h/p\"}}", "http", NULL, NULL, 0,
          NULL },
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *name = g_strdup_printf("net%u.qcow2", i);
        g_autofree char *path = make_overlay(name, cases[i].backing, "raw");
        g_autoptr(Chain) chain = resolve(name, "qcow2");
        const ChainLayer *layer;

        g_test_message("backing '%s'", cases[i].backing);
        g_assert_null(chain->error);
        g_assert_cmpuint(chain->layers->len, ==, 2);
        layer = layer_at(chain, 1);
        g_assert_null(layer->error);
        g_assert_null(layer->info);
        g_assert_cmpint(layer->src->type, ==, STORAGE_TYPE_NETWORK);
        g_assert_cmpstr(layer->src->protocol, ==, cases[i].protocol);
        g_assert_cmpstr(layer->src->format, ==, "raw");
        if (cases[i].name)
            g_assert_cmpstr(layer->src->name, ==, cases[i].name);
        if (cases[i].host || cases[i].socket) {
            const NetHost *host = g_ptr_array_index(layer->src->hosts, 0);
            g_assert_cmpuint(layer->src->hosts->len, ==, 1);
            g_assert_cmpstr(host->name, ==, cases[i].host);
            g_assert_cmpuint(host->port, ==, cases[i].port);
            g_assert_cmpstr(host->socket, ==, cases[i].socket);
        }
        unlink(path);
    }
}

static void
write_magic(const char *path, gsize size, gsize off, const void *magic, gsize len)
{
    g_autofree char *buf = g_malloc0(size);

    memcpy(buf + off, magic, len);
    g_assert_true(g_file_set_contents(path, buf, size, NULL));
}

static void
test_probe_format(void)
{
    static const struct {
        gsize off;
        const char *magic;
        gsize len;
        const char *format;
    } cases[] = {
        { 32769, "CD001", 5, "raw" },                         /* ISO is reported as raw */
        { 0, "QFI\xfb\0\0\0\3", 8, "qcow2" },
        { 0, "QFI\xfb\0\0\0\2", 8, "qcow2" },
        { 0, "QFI\xfb\0\0\0\1", 8, "qcow" },
        { 0, "QFI\xfb\0\0\0\7", 8, "raw" },                   /* unknown version */
        { 0, "QED\0", 4, "qed" },
        { 0, "KDMV\3\0\0\0", 8, "vmdk" },
        { 0, "conectix\0\0\0\0\0\1\0\0", 16, "vpc" },
        { 64, "\x7f\x10\xda\xbe\1\0\1\0", 8, "vdi" },
        { 0, "WithouFreSpacExt", 16, "ploop" },
        { 0, "OOOM\0\0\0\2", 8, "cow" },
        { 0, "hello", 5, "raw" },
    };
    g_autofree char *path = fix("probe.bin");
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *fmt = NULL;

        write_magic(path, 40000, cases[i].off, cases[i].magic, cases[i].len);
        fmt = qcow_probe_format(path, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(fmt, ==, cases[i].format);
    }
    unlink(path);
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *fmt = qcow_probe_format(path, &error);
        g_assert_null(fmt);
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    }
}

/* Random damage to headers: qcow_info_read() (and libqcow behind it) and
 * chain_resolve() give errors or results, never a crash. */
static void
test_mutations(void)
{
    g_autofree char *orig = fix("chain3-mid.qcow2");
    g_autofree char *path = fix("mutant.qcow2");
    g_autofree char *data = NULL;
    gsize len = 0;
    guint32 seed = g_test_rand_int();
    g_autoptr(GRand) rand = g_rand_new_with_seed(seed);
    guint ok = 0;
    guint i;

    g_test_message("mutations: seed %u", seed);
    g_assert_true(g_file_get_contents(orig, &data, &len, NULL));
    for (i = 0; i < 200; i++) {
        g_autofree char *copy = g_memdup2(data, len);
        g_autoptr(QcowInfo) info = NULL;
        g_autoptr(Chain) chain = NULL;
        guint j;

        for (j = 0; j < 3; j++) {
            gsize at = j == 0 ? (gsize)g_rand_int_range(rand, 0, 112)
                              : (gsize)g_rand_int_range(rand, 0, MIN(len, 8 * 65536));
            copy[at] = g_rand_int_range(rand, 0, 256);
        }
        g_assert_true(g_file_set_contents(path, copy, len, NULL));
        info = qcow_info_read(path, "qcow2", NULL);
        chain = resolve("mutant.qcow2", "qcow2");
        g_assert_cmpuint(chain->layers->len, >=, 1);
        g_assert_true((info != NULL) == (layer_at(chain, 0)->info != NULL));
        ok += info != NULL;
    }
    g_test_message("mutations: %u of 200 readable", ok);
    unlink(path);
}

int
main(int argc, char **argv)
{
    int ret;

    g_test_init(&argc, &argv, NULL);
    fixtures_setup();
    g_test_add_func("/chain/good", test_good_chain);
    g_test_add_func("/chain/info-variants", test_info_variants);
    g_test_add_func("/chain/xml-then-probe", test_xml_then_probe);
    g_test_add_func("/chain/xml-terminator", test_xml_terminator);
    g_test_add_func("/chain/top-never-probed", test_top_never_probed);
    g_test_add_func("/chain/probe/accepted", test_probe_accepted);
    g_test_add_func("/chain/probe/refused", test_probe_refused);
    g_test_add_func("/chain/probe/format", test_probe_format);
    g_test_add_func("/chain/probe/recorded-raw", test_probe_not_needed);
    g_test_add_func("/chain/loop/self", test_loop_self);
    g_test_add_func("/chain/loop/two", test_loop_two);
    g_test_add_func("/chain/depth/201", test_too_deep);
    g_test_add_func("/chain/depth/200", test_deep_ok);
    g_test_add_func("/chain/missing/backing", test_missing_backing);
    g_test_add_func("/chain/missing/top", test_missing_top);
    g_test_add_func("/chain/broken-headers", test_broken_headers);
    g_test_add_func("/chain/network", test_network_backing);
    g_test_add_func("/chain/mutations", test_mutations);
    ret = g_test_run();
    fixtures_teardown();
    return ret;
}
