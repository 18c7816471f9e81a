/* fuzz-guestfs.c: a fuzzed ext2/3/4 image through the libext2fs glue: open, then a bounded walk
 * of the tree with stat, readdir, lookup, readlink, pread, SEEK_DATA/SEEK_HOLE and xattrs. */
#include "fuzz.h"

#include <glib.h>
#include <string.h>

#include "fuzzdisk.h"
#include "guest.h"

#define FUZZ_MAX_VISITS 256

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void
fuzz_guestfs_visit(GuestFs *fs, guint64 ino, guint depth, guint *visits)
{
    g_autoptr(GPtrArray) ents = NULL;
    g_autoptr(GPtrArray) xattrs = NULL;
    static guint8 buf[70000];
    struct stat st;
    guint64 pos;

    if (depth > 8 || ++*visits > FUZZ_MAX_VISITS || !guest_fs_stat(fs, ino, &st, NULL))
        return;
    xattrs = guest_fs_xattrs(fs, ino, NULL);
    if (S_ISLNK(st.st_mode)) {
        g_autofree char *t = guest_fs_readlink(fs, ino, NULL);
    } else if (S_ISREG(st.st_mode)) {
        gssize n = guest_fs_pread(fs, ino, buf, sizeof buf, 0, NULL);

        if (n > (gssize)sizeof buf)
            FUZZ_FAIL("pread returned %zd", n);
        if (guest_fs_seek(fs, ino, 0, TRUE, &pos, NULL) && pos > (guint64)st.st_size &&
            st.st_size >= 0)
            FUZZ_FAIL("SEEK_DATA past the end");
        (void)guest_fs_seek(fs, ino, 0, FALSE, &pos, NULL);
    } else if (S_ISDIR(st.st_mode) && (ents = guest_fs_readdir(fs, ino, NULL))) {
        for (guint i = 0; i < ents->len && i < 32; i++) {
            GuestDirent *e = ents->pdata[i];
            guint64 child;

            if (guest_fs_lookup(fs, ino, e->name, &child, NULL))
                fuzz_guestfs_visit(fs, child, depth + 1, visits);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzDisk disk = { data, size };
    GuestDev dev = { fuzz_disk_read, &disk, size };
    g_autoptr(GError) error = NULL;
    g_autoptr(GuestFs) fs = guest_fs_open(&dev, "ext4", &error);
    guint visits = 0;

    if (!fs) {
        if (!error)
            FUZZ_FAIL("guest_fs_open failed without an error");
        return 0;
    }
    fuzz_guestfs_visit(fs, guest_fs_root(fs), 0, &visits);
    return 0;
}
