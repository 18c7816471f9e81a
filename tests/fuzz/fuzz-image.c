/* fuzz-image.c: image probing and reading on a fuzzed image file: qcow_probe_format, qcow_info_read,
 * chain_resolve (qcow2 top, as <driver type='qcow2'>) and image_open + image_pread + image_seek. */
#include "fuzz.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"
#include "image.h"
#include "qcow.h"

static char *fuzz_path;
static int fuzz_fd = -1;

static void
fuzz_image_cleanup(void)
{
    if (fuzz_path)
        g_unlink(fuzz_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    g_autoptr(GError) err = NULL;

    fuzz_fd = g_file_open_tmp("snapfs-fuzz-image-XXXXXX.qcow2", &fuzz_path, &err);
    if (fuzz_fd < 0)
        g_error("%s", err->message);
    atexit(fuzz_image_cleanup);
    return 0;
}

static void
fuzz_image_read(const Chain *chain, guint from)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(Image) img = image_open(chain, from, &err);
    static guint8 buf[65536 + 512];
    guint64 size, offs[4], pos;

    if (!img) {
        g_assert(err);
        return;
    }
    size = image_size(img);
    offs[0] = 0;
    offs[1] = size / 2 + 17;
    offs[2] = size > 70000 ? size - 70000 : 0;
    offs[3] = size;
    for (guint i = 0; i < G_N_ELEMENTS(offs); i++) {
        g_autoptr(GError) e = NULL;
        gssize n = image_pread(img, buf, sizeof buf, offs[i], &e);

        if (n < 0)
            g_assert(e);
        else
            g_assert((guint64) n <= sizeof buf &&
                     (offs[i] >= size ? n == 0 : offs[i] + n <= size));
    }
    for (guint i = 0; i < 2; i++) {
        g_autoptr(GError) e = NULL;

        if (image_seek(img, offs[i], i == 0, &pos, &e))
            g_assert(pos <= size);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(QcowInfo) info = NULL;
    g_autoptr(QcowInfo) rinfo = NULL;
    g_autofree char *fmt = NULL;
    g_autoptr(StorageSource) top = storage_source_new();
    g_autoptr(Chain) chain = NULL;

    if (ftruncate(fuzz_fd, 0) < 0 || pwrite(fuzz_fd, data, size, 0) != (ssize_t) size)
        g_error("cannot write %s", fuzz_path);

    fmt = qcow_probe_format(fuzz_path, NULL);
    info = qcow_info_read(fuzz_path, "qcow2", NULL);
    rinfo = qcow_info_read(fuzz_path, "raw", NULL);
    g_assert(rinfo && rinfo->virtual_size == QCOW_SECTORS_UP(size));
    if (fmt && strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0) {
        g_autofree char *name = NULL;

        (void) qcow_other_backing_name(fuzz_path, fmt, &name, NULL);
    }

    top->type = STORAGE_TYPE_FILE;
    top->path = g_strdup(fuzz_path);
    top->format = g_strdup("qcow2");
    chain = chain_resolve(top, "vda");
    g_assert(chain && chain->layers->len >= 1);
    {
        g_autoptr(StorageSource) src = chain_to_source(chain);
    }
    fuzz_image_read(chain, 0);
    if (chain->layers->len > 1)
        fuzz_image_read(chain, 1);
    return 0;
}
