/* fuzz-guest.c: a fuzzed disk in memory through guest_scan (MBR and its logical partitions,
 * GPT with its backup, LVM2 labels and metadata text, superblock probes), partitions.tsv and
 * a read of every volume's last bytes. */
#include "fuzz.h"

#include <glib.h>
#include <string.h>

#include "fuzzdisk.h"
#include "guest.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzDisk disk = { data, size };
    /* The disk is larger than the input: tables may point far, reads there are zeros. */
    GuestDev dev = { fuzz_disk_read, &disk, (guint64)size + 64 * 1024 * 1024 };
    g_autoptr(GPtrArray) vols = guest_scan(&dev, "vda", NULL);
    g_autofree char *tsv = NULL;
    guint8 buf[64];

    if (!vols)
        FUZZ_FAIL("guest_scan failed on an in-memory disk");
    tsv = guest_partitions_tsv(vols);
    for (guint i = 0; i < vols->len; i++) {
        const GuestVolume *v = vols->pdata[i];
        guint64 covered = 0;

        if (v->error)
            continue;
        for (guint e = 0; e < v->extents->len; e++) {
            const GuestExtent *x = &g_array_index(v->extents, GuestExtent, e);

            if (x->off != covered || x->dev + x->len > dev.size)
                FUZZ_FAIL("volume %s: extent %u does not continue the volume or is past the disk",
                          v->name, e);
            covered += x->len;
        }
        if (covered != v->size)
            FUZZ_FAIL("volume %s: extents cover %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT,
                      v->name, covered, v->size);
        if (v->size >= sizeof buf &&
            guest_volume_pread(v, &dev, buf, sizeof buf, v->size - sizeof buf, NULL) != sizeof buf)
            FUZZ_FAIL("volume %s: short read", v->name);
    }
    return 0;
}
