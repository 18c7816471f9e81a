/* test-guest.c: partition tables, LVM2 and superblocks on disks that sfdisk, sgdisk,
 * mkfs.*, mkswap and lvm2 made; blkid is the oracle for types, labels and uuids. */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "guest.h"

typedef struct {
    char *dir;
    char *disk;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("snapfs-guest-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->disk = g_build_filename(f->dir, "disk.raw", NULL);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

    g_assert_true(system(cmd) == 0);
    g_free(f->dir);
    g_free(f->disk);
}

/* Runs @script with sh in the fixture's directory; asserts it exits 0. */
static void
sh(Fixture *f, const char *script)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    const char *argv[] = { "sh", "-ec", script, NULL };
    int status = -1;

    g_spawn_sync(f->dir, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err,
                 &status, &error);
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("'%s' failed: %s%s", script, out, err);
}

static gssize
file_read(gpointer data, void *buf, gsize len, guint64 off, GError **error)
{
    ssize_t n = pread(GPOINTER_TO_INT(data), buf, len, off);

    if (n < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "pread failed");
        return -1;
    }
    return n;
}

/* guest_scan() of @path. */
static GPtrArray *
scan(const char *path, GuestDev *dev)
{
    g_autoptr(GError) error = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    GPtrArray *vols;

    g_assert_cmpint(fd, >=, 0);
    dev->read = file_read;
    dev->data = GINT_TO_POINTER(fd);
    dev->size = lseek(fd, 0, SEEK_END);
    vols = guest_scan(dev, "vda", &error);
    g_assert_no_error(error);
    return vols;
}

static void
dev_close(GuestDev *dev)
{
    close(GPOINTER_TO_INT(dev->data));
}

static const GuestVolume *
vol_get(GPtrArray *vols, const char *name)
{
    for (guint i = 0; i < vols->len; i++)
        if (strcmp(((GuestVolume *)vols->pdata[i])->name, name) == 0)
            return vols->pdata[i];
    g_error("no volume %s", name);
    return NULL;
}

/* blkid's TYPE, LABEL and UUID at @start, @size of @path equal what the scan found. */
static void
check_blkid(Fixture *f, const GuestVolume *v)
{
    g_autofree char *cmd = g_strdup_printf(
        "blkid -p -O %" G_GUINT64_FORMAT " -S %" G_GUINT64_FORMAT " -o export '%s' "
        "| grep -E '^(TYPE|LABEL|UUID)=' | tr -d '\\\\' | sort", v->start, v->size, f->disk);
    g_autofree char *expect = g_strdup_printf("%s%s%s%s%s%s%s%s%s", *v->label ? "LABEL=" : "",
                                              v->label, *v->label ? "\n" : "",
                                              *v->fstype ? "TYPE=" : "", v->fstype,
                                              *v->fstype ? "\n" : "", *v->uuid ? "UUID=" : "",
                                              v->uuid, *v->uuid ? "\n" : "");
    const char *argv[] = { "sh", "-c", cmd, NULL };
    g_autofree char *out = NULL;
    int status;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, NULL, &status, NULL));
    g_assert_cmpstr(out, ==, expect);
}

static void
test_mbr(Fixture *f, gconstpointer data)
{
    GuestDev dev;
    g_autoptr(GPtrArray) vols = NULL;
    g_autofree char *tsv = NULL;

    sh(f, "truncate -s 64M disk.raw\n"
          "printf 'label: dos\\n1MiB,8MiB,83\\n,4MiB,82\\n,,5\\n,8MiB,83\\n,4MiB,b\\n,,83\\n'"
          " | sfdisk -q disk.raw\n"
          "mke2fs -q -F -t ext4 -L root -U 11111111-2222-3333-4444-555555555555"
          " -E offset=1048576 disk.raw 8M\n"
          "truncate -s 4M swap && mkswap -q -L sw -U 66666666-7777-8888-9999-000000000000 swap"
          " && dd if=swap of=disk.raw bs=1M seek=9 conv=notrunc status=none\n"
          "mke2fs -q -F -t ext2 -L 'a long label!' -E offset=$((14*1024*1024)) disk.raw 8M\n"
          "truncate -s 4M fat && mkfs.vfat -n DOSPART -i 1234abcd fat >/dev/null"
          " && dd if=fat of=disk.raw bs=1M seek=23 conv=notrunc status=none\n");
    vols = scan(f->disk, &dev);
    tsv = guest_partitions_tsv(vols);
    g_assert_cmpuint(vols->len, ==, 6);
    g_assert_cmpstr(vol_get(vols, "vda5")->fstype, ==, "ext2");
    g_assert_cmpuint(vol_get(vols, "vda5")->start, ==, 14 * 1024 * 1024);
    g_assert_cmpuint(vol_get(vols, "vda6")->start, ==, 23 * 1024 * 1024);
    g_assert_cmpstr(vol_get(vols, "vda6")->ptype, ==, "0x0b");
    g_assert_cmpstr(vol_get(vols, "vda7")->fstype, ==, "");
    g_assert_null(vol_get(vols, "vda7")->error);
    g_assert_true(g_str_has_prefix(tsv,
        "vda1\t1\t1048576\t8388608\t0x83\text4\troot\t11111111-2222-3333-4444-555555555555\tok\n"
        "vda2\t2\t9437184\t4194304\t0x82\tswap\tsw\t66666666-7777-8888-9999-000000000000\tok\n"
        "vda3\t3\t13631488\t53477376\t0x05\t\t\t\textended partition\n"));
    for (guint i = 0; i < vols->len; i++) {
        const GuestVolume *v = vols->pdata[i];

        if (!v->error)
            check_blkid(f, v);
    }
    g_assert_nonnull(guest_volume_find(vols, "vda1"));
    g_assert_nonnull(guest_volume_find(vols, "vda5"));
    g_assert_null(guest_volume_find(vols, "vda2"));   /* swap: listed, not opened */
    g_assert_null(guest_volume_find(vols, "vda3"));
    dev_close(&dev);
}

static void
test_gpt(Fixture *f, gconstpointer data)
{
    GuestDev dev;

    sh(f, "truncate -s 40M disk.raw\n"
          "sgdisk -o -n 1:2048:+8M -t 1:8300 -n 2:0:+4M -t 2:8200 -n 3:0:+4M -t 3:0700"
          " -n 5:0:+8M -t 5:8300 disk.raw >/dev/null\n"
          "mke2fs -q -F -t ext3 -L gptroot -E offset=1048576 disk.raw 8M\n"
          "truncate -s 4M swap && mkswap -q swap && dd if=swap of=disk.raw bs=1M seek=9"
          " conv=notrunc status=none\n"
          "truncate -s 4M ntfs && mkntfs -q -F ntfs >/dev/null 2>&1 && dd if=ntfs of=disk.raw"
          " bs=1M seek=13 conv=notrunc status=none\n");
    {
        g_autoptr(GPtrArray) vols = scan(f->disk, &dev);

        g_assert_cmpuint(vols->len, ==, 4);
        g_assert_cmpstr(vol_get(vols, "vda1")->ptype, ==, "0fc63daf-8483-4772-8e79-3d69d8477de4");
        g_assert_cmpstr(vol_get(vols, "vda1")->fstype, ==, "ext3");
        g_assert_cmpstr(vol_get(vols, "vda2")->fstype, ==, "swap");
        g_assert_cmpstr(vol_get(vols, "vda3")->fstype, ==, "ntfs");
        g_assert_cmpuint(vol_get(vols, "vda5")->number, ==, 5);   /* the slot, not the rank */
        for (guint i = 0; i < vols->len; i++) {
            const GuestVolume *v = vols->pdata[i];

            g_assert_null(v->error);
            check_blkid(f, v);
        }
        dev_close(&dev);
    }
    /* The primary's entries damaged: the backup table answers. */
    sh(f, "printf 'X' | dd of=disk.raw bs=1 seek=$((1024+130)) conv=notrunc status=none");
    {
        g_autoptr(GPtrArray) vols = scan(f->disk, &dev);

        g_assert_cmpuint(vols->len, ==, 4);
        g_assert_null(vol_get(vols, "vda1")->error);
        g_assert_cmpstr(vol_get(vols, "vda1")->fstype, ==, "ext3");
        dev_close(&dev);
    }
    /* Both damaged: every entry listed with the reason, none opened. */
    sh(f, "printf 'X' | dd of=disk.raw bs=1 seek=$((40*1024*1024-33*512+130)) conv=notrunc"
          " status=none");
    {
        g_autoptr(GPtrArray) vols = scan(f->disk, &dev);

        g_assert_cmpuint(vols->len, ==, 4);
        for (guint i = 0; i < vols->len; i++) {
            const GuestVolume *v = vols->pdata[i];

            g_assert_cmpstr(v->error, ==, "GPT entry array checksum mismatch (primary and backup)");
            g_assert_cmpstr(v->fstype, ==, "");
        }
        g_assert_null(guest_volume_find(vols, "vda1"));
        dev_close(&dev);
    }
    /* Both headers damaged: one line for the disk. */
    sh(f, "printf 'X' | dd of=disk.raw bs=1 seek=$((512+40)) conv=notrunc status=none\n"
          "printf 'X' | dd of=disk.raw bs=1 seek=$((40*1024*1024-512+40)) conv=notrunc"
          " status=none");
    {
        g_autoptr(GPtrArray) vols = scan(f->disk, &dev);
        g_autofree char *tsv = guest_partitions_tsv(vols);

        g_assert_cmpstr(tsv, ==, "vda\t0\t0\t41943040\tgpt\t\t\t\t"
                        "GPT header damaged or not supported (primary and backup)\n");
        dev_close(&dev);
    }
}

/* Whole-disk filesystems of every kind probed, against blkid. */
static void
test_whole(Fixture *f, gconstpointer data)
{
    static const char *const mk[] = {
        "mke2fs -q -F -t ext4 -L whole disk.raw",
        "mkfs.xfs -q -f -L xfslabel disk.raw",
        "mkfs.btrfs -q -f -L 'btrfs label' disk.raw",
        "mkfs.vfat -F 32 -n FAT32LBL disk.raw",
        "mkfs.vfat -F 16 disk.raw",
        "mkntfs -q -F -f disk.raw",
        "mkswap -q -L swaplabel disk.raw",
    };
    static const char *const types[] = { "ext4", "xfs", "btrfs", "vfat", "vfat", "ntfs", "swap" };

    for (guint i = 0; i < G_N_ELEMENTS(mk); i++) {
        g_autofree char *script = g_strdup_printf("rm -f disk.raw; truncate -s 320M disk.raw\n"
                                                  "%s >/dev/null 2>&1", mk[i]);
        g_autoptr(GPtrArray) vols = NULL;
        GuestDev dev;

        sh(f, script);
        vols = scan(f->disk, &dev);
        g_assert_cmpuint(vols->len, ==, 1);
        g_assert_cmpstr(vol_get(vols, "vda")->fstype, ==, types[i]);
        check_blkid(f, vols->pdata[0]);
        g_assert_true(!!guest_volume_find(vols, "vda") == (i == 0));
        dev_close(&dev);
    }
}

/* An MBR written by hand: overlapping, past the end, logical partitions in a loop. */
static void
test_hostile(Fixture *f, gconstpointer data)
{
    guint8 sec[512] = { 0 };
    GuestDev dev;
    g_autoptr(GPtrArray) vols = NULL;
    g_autofree char *tsv = NULL;
    int fd;
    struct {
        guint8 type;
        guint32 start, count;
    } ents[4] = { { 0x83, 2048, 4096 }, { 0x83, 4096, 4096 }, { 0x83, 100000, 100000 },
                  { 0x05, 20000, 2000 } };

    fd = open(f->disk, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(ftruncate(fd, 16 * 1024 * 1024), ==, 0);
    for (guint i = 0; i < 4; i++) {
        guint8 *e = sec + 446 + 16 * i;

        e[4] = ents[i].type;
        for (guint b = 0; b < 4; b++) {
            e[8 + b] = ents[i].start >> (8 * b);
            e[12 + b] = ents[i].count >> (8 * b);
        }
    }
    sec[510] = 0x55;
    sec[511] = 0xAA;
    g_assert_cmpint(pwrite(fd, sec, 512, 0), ==, 512);
    /* The extended boot record: one logical partition, then itself again. */
    memset(sec, 0, 446);
    memset(sec + 446, 0, 64);
    sec[446 + 4] = 0x83;
    sec[446 + 8] = 1;                 /* start 1 after the record */
    sec[446 + 12] = 100;              /* 100 sectors */
    sec[462 + 4] = 0x05;              /* next: offset 0 of the extended: itself */
    sec[462 + 12] = 1;
    g_assert_cmpint(pwrite(fd, sec, 512, 20000 * 512), ==, 512);
    close(fd);
    vols = scan(f->disk, &dev);
    tsv = guest_partitions_tsv(vols);
    g_assert_cmpstr(tsv, ==,
        "vda1\t1\t1048576\t2097152\t0x83\t\t\t\tok\n"
        "vda2\t2\t2097152\t2097152\t0x83\t\t\t\toverlaps vda1\n"
        "vda3\t3\t51200000\t51200000\t0x83\t\t\t\tpast the end of the disk\n"
        "vda4\t4\t10240000\t1024000\t0x05\t\t\t\textended partition\n"
        "vda5\t5\t10240512\t51200\t0x83\t\t\t\tok\n");
    dev_close(&dev);
}

/* LVM2 metadata as lvm2 writes it (vgcfgrestore: no device-mapper needed), a volume in
 * two segments, a volume group name with a dash; an ext4 written through the mapping. */
static void
test_lvm(Fixture *f, gconstpointer data)
{
    GuestDev dev;
    g_autoptr(GPtrArray) vols = NULL;
    const GuestVolume *lv;
    g_autofree char *sig = NULL;
    GuestDev vdev;
    gpointer storage[2];
    char buf[16];

    if (getuid() != 0 || access("/dev/loop-control", W_OK) != 0) {
        g_test_skip("needs root and loop devices (pvcreate works on block devices only)");
        return;
    }
    sh(f, "export LVM_SUPPRESS_FD_WARNINGS=1\n"
          "truncate -s 64M disk.raw\n"
          "printf 'label: dos\\n1MiB,8MiB,83\\n,,8e\\n' | sfdisk -q disk.raw\n"
          "loop=$(losetup -f --show -o $((9*1024*1024)) disk.raw)\n"
          "trap 'losetup -d $loop' EXIT\n"
          "pvcreate -q --devices $loop -u aaaaaa-bbbb-cccc-dddd-eeee-ffff-000000 --norestorefile"
          " $loop >/dev/null\n"
          "vgcreate -q --devices $loop -s 4M my-vg $loop >/dev/null\n"
          "vgcfgbackup -q --devices $loop -f vg.txt my-vg >/dev/null\n"
          "head -n -3 vg.txt > vg2.txt\n"
          "cat >> vg2.txt <<'EOF'\n"
          "logical_volumes {\n"
          "lv-one { id = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-gggggg\"\n"
          "status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 2\n"
          "segment1 { start_extent = 0\nextent_count = 2\ntype = \"striped\"\n"
          "stripe_count = 1\nstripes = [ \"pv0\", 0 ] }\n"
          "segment2 { start_extent = 2\nextent_count = 1\ntype = \"striped\"\n"
          "stripe_count = 1\nstripes = [ \"pv0\", 5 ] } }\n"
          "hidden { id = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-hhhhhh\"\n"
          "status = [\"READ\", \"WRITE\"]\nsegment_count = 1\n"
          "segment1 { start_extent = 0\nextent_count = 1\ntype = \"striped\"\n"
          "stripe_count = 1\nstripes = [ \"pv0\", 7 ] } }\n"
          "two-stripes { id = \"aaaaaa-bbbb-cccc-dddd-eeee-ffff-iiiiii\"\n"
          "status = [\"READ\", \"WRITE\", \"VISIBLE\"]\nsegment_count = 1\n"
          "segment1 { start_extent = 0\nextent_count = 2\ntype = \"striped\"\n"
          "stripe_count = 2\nstripe_size = 128\nstripes = [ \"pv0\", 8, \"pv0\", 9 ] } }\n"
          "}\n}\nEOF\n"
          "vgcfgrestore -q --devices $loop -f vg2.txt my-vg 2>&1 | grep -q Restored\n"
          "pe=$(( (9*1024*1024) + $(pvs --devices $loop --noheadings --units b -o pe_start"
          " | tr -dc 0-9) ))\n"
          "truncate -s 12M lv && mke2fs -q -F -t ext4 -L inlvm lv\n"
          "dd if=lv of=disk.raw bs=4M count=2 seek=$pe oflag=seek_bytes"
          " conv=notrunc status=none\n"
          "dd if=lv of=disk.raw bs=4M skip=2 count=1 seek=$((pe + 5*4194304))"
          " oflag=seek_bytes conv=notrunc status=none\n");
    vols = scan(f->disk, &dev);
    g_assert_cmpuint(vols->len, ==, 4);
    g_assert_cmpstr(vol_get(vols, "vda2")->fstype, ==, "LVM2_member");
    g_assert_cmpstr(vol_get(vols, "vda2")->uuid, ==, "aaaaaa-bbbb-cccc-dddd-eeee-ffff-000000");
    check_blkid(f, vol_get(vols, "vda2"));
    lv = vol_get(vols, "my--vg-lv--one");
    g_assert_null(lv->error);
    g_assert_cmpuint(lv->size, ==, 12 * 1024 * 1024);
    g_assert_cmpuint(lv->extents->len, ==, 2);
    g_assert_cmpstr(lv->fstype, ==, "ext4");
    g_assert_cmpstr(lv->label, ==, "inlvm");
    g_assert_cmpstr(lv->ptype, ==, "lvm-linear");
    /* The last block of the filesystem comes from the second segment. */
    guest_volume_dev(lv, &dev, &vdev, storage);
    g_assert_cmpint(guest_volume_pread(lv, &dev, buf, 16, 12 * 1024 * 1024 - 16, NULL), ==, 16);
    g_assert_cmpint(guest_volume_pread(lv, &dev, buf, 16, 12 * 1024 * 1024, NULL), ==, 0);
    g_assert_nonnull(guest_volume_find(vols, "my--vg-lv--one"));
    g_assert_cmpstr(vol_get(vols, "my--vg-two--stripes")->error, ==,
                    "segment type 'striped' not supported (linear only)");
    sig = guest_partitions_tsv(vols);
    g_assert_null(strstr(sig, "hidden"));
    dev_close(&dev);
}

static const GuestDirent *
dirent_get(GPtrArray *ents, const char *name)
{
    for (guint i = 0; i < ents->len; i++)
        if (strcmp(((GuestDirent *)ents->pdata[i])->name, name) == 0)
            return ents->pdata[i];
    return NULL;
}

/* ext4 made by mke2fs -d from a directory: names, types, links, contents, holes, xattrs
 * read back through the io_manager, in a partition. */
static void
test_ext(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) vols = NULL;
    g_autoptr(GPtrArray) ents = NULL;
    g_autoptr(GPtrArray) xattrs = NULL;
    g_autoptr(GuestFs) gfs = NULL;
    g_autofree char *target = NULL;
    g_autofree char *big = NULL;
    g_autofree char *want = NULL;
    const GuestVolume *vol;
    GuestDev dev, vdev;
    gpointer storage[2];
    guint64 dir, ino, ino2, pos;
    struct stat st;
    gsize wantlen;
    char buf[8];

    sh(f, "mkdir -p src/sub && printf hello > src/sub/file && ln src/sub/file src/hard\n"
          "ln -s sub/file src/link && head -c 300000 /dev/urandom > src/big\n"
          "truncate -s 10M src/sparse && printf end | dd of=src/sparse bs=1 seek=8M"
          " conv=notrunc status=none\n"
          "setfattr -n user.colour -v blue src/sub/file\n"
          "for o in 0 3 100 1030 5000; do head -c 5000 /dev/urandom | dd of=src/holes bs=1k"
          " seek=$o conv=notrunc status=none; done\n"
          "truncate -s 40M disk.raw && printf 'label: dos\\n1MiB,,83\\n' | sfdisk -q disk.raw\n"
          "truncate -s 39M part && mke2fs -q -F -t ext4 -b 4096 -I 256 -d src part"
          " && dd if=part of=disk.raw bs=1M seek=1 conv=notrunc status=none");
    vols = scan(f->disk, &dev);
    vol = guest_volume_find(vols, "vda1");
    g_assert_nonnull(vol);
    guest_volume_dev(vol, &dev, &vdev, storage);
    gfs = guest_fs_open(&vdev, vol->fstype, &error);
    g_assert_no_error(error);
    ents = guest_fs_readdir(gfs, guest_fs_root(gfs), &error);
    g_assert_no_error(error);
    g_assert_nonnull(dirent_get(ents, "lost+found"));
    g_assert_cmpuint(dirent_get(ents, "sub")->type, ==, S_IFDIR);
    g_assert_cmpuint(dirent_get(ents, "link")->type, ==, S_IFLNK);
    g_assert_true(guest_fs_lookup(gfs, guest_fs_root(gfs), "sub", &dir, &error));
    g_assert_true(guest_fs_lookup(gfs, dir, "file", &ino, &error));
    g_assert_true(guest_fs_lookup(gfs, guest_fs_root(gfs), "hard", &ino2, &error));
    g_assert_cmpuint(ino, ==, ino2);
    g_assert_true(guest_fs_stat(gfs, ino, &st, &error));
    g_assert_cmpuint(st.st_nlink, ==, 2);
    g_assert_cmpuint(st.st_size, ==, 5);
    g_assert_true(S_ISREG(st.st_mode));
    g_assert_cmpint(guest_fs_pread(gfs, ino, buf, sizeof buf, 0, &error), ==, 5);
    g_assert_cmpmem(buf, 5, "hello", 5);
    g_assert_false(guest_fs_lookup(gfs, dir, "nope", &ino2, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_false(guest_fs_lookup(gfs, ino, "x", &ino2, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR);
    g_clear_error(&error);
    xattrs = guest_fs_xattrs(gfs, ino, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(xattrs->len, ==, 1);
    g_assert_cmpstr(((GuestXattr *)xattrs->pdata[0])->name, ==, "user.colour");
    g_assert_true(guest_fs_lookup(gfs, guest_fs_root(gfs), "link", &ino2, &error));
    target = guest_fs_readlink(gfs, ino2, &error);
    g_assert_cmpstr(target, ==, "sub/file");
    /* A 300,000-byte file: read whole (past the cache) and at an odd offset. */
    g_assert_true(guest_fs_lookup(gfs, guest_fs_root(gfs), "big", &ino2, &error));
    big = g_malloc(400000);
    g_assert_cmpint(guest_fs_pread(gfs, ino2, big, 400000, 0, &error), ==, 300000);
    {
        g_autofree char *path = g_build_filename(f->dir, "src", "big", NULL);

        g_assert_true(g_file_get_contents(path, &want, &wantlen, NULL));
    }
    g_assert_cmpmem(big, 300000, want, wantlen);
    g_assert_cmpint(guest_fs_pread(gfs, ino2, big, 1000, 123457, &error), ==, 1000);
    g_assert_cmpmem(big, 1000, want + 123457, 1000);
    /* Extents and holes in turn: whole, and across an extent's end into a hole. */
    {
        g_autofree char *path = g_build_filename(f->dir, "src", "holes", NULL);
        g_autofree char *holes = NULL;
        g_autofree char *got = g_malloc(6 * 1024 * 1024);
        gsize hlen;

        g_assert_true(g_file_get_contents(path, &holes, &hlen, NULL));
        g_assert_true(guest_fs_lookup(gfs, guest_fs_root(gfs), "holes", &ino2, &error));
        g_assert_cmpint(guest_fs_pread(gfs, ino2, got, 6 * 1024 * 1024, 0, &error), ==, hlen);
        g_assert_cmpmem(got, hlen, holes, hlen);
        g_assert_cmpint(guest_fs_pread(gfs, ino2, got, 200000, 101 * 1024, &error), ==, 200000);
        g_assert_cmpmem(got, 200000, holes + 101 * 1024, 200000);
    }
    /* The sparse file: a hole, then data at 8 MiB, then a hole to its end. */
    g_assert_true(guest_fs_lookup(gfs, guest_fs_root(gfs), "sparse", &ino2, &error));
    g_assert_true(guest_fs_seek(gfs, ino2, 0, TRUE, &pos, &error));
    g_assert_cmpuint(pos, ==, 8 * 1024 * 1024);
    g_assert_true(guest_fs_seek(gfs, ino2, 0, FALSE, &pos, &error));
    g_assert_cmpuint(pos, ==, 0);
    g_assert_true(guest_fs_seek(gfs, ino2, 8 * 1024 * 1024, FALSE, &pos, &error));
    g_assert_cmpuint(pos, ==, 8 * 1024 * 1024 + 4096);
    g_assert_cmpint(guest_fs_pread(gfs, ino2, buf, 3, 8 * 1024 * 1024, &error), ==, 3);
    g_assert_cmpmem(buf, 3, "end", 3);
    g_assert_cmpint(guest_fs_pread(gfs, ino2, buf, 3, 4096, &error), ==, 3);
    g_assert_cmpmem(buf, 3, "\0\0\0", 3);
    dev_close(&dev);
}

/* A damaged superblock: an error, not a crash. */
static void
test_ext_corrupt(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) vols = NULL;
    GuestDev dev;
    GuestFs *gfs;

    sh(f, "truncate -s 8M disk.raw && mke2fs -q -F -t ext4 disk.raw\n"
          "printf '\\377\\377\\377\\377' | dd of=disk.raw bs=1 seek=$((1024+24)) conv=notrunc"
          " status=none");   /* s_log_block_size: absurd */
    vols = scan(f->disk, &dev);
    gfs = guest_fs_open(&dev, "ext4", &error);
    g_assert_null(gfs);
    g_assert_error(error, CORE_ERROR, CORE_ERROR_CORRUPT);
    dev_close(&dev);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/guest/mbr", Fixture, NULL, fixture_setup, test_mbr, fixture_teardown);
    g_test_add("/guest/gpt", Fixture, NULL, fixture_setup, test_gpt, fixture_teardown);
    g_test_add("/guest/whole", Fixture, NULL, fixture_setup, test_whole, fixture_teardown);
    g_test_add("/guest/hostile", Fixture, NULL, fixture_setup, test_hostile, fixture_teardown);
    g_test_add("/guest/lvm", Fixture, NULL, fixture_setup, test_lvm, fixture_teardown);
    g_test_add("/guest/ext", Fixture, NULL, fixture_setup, test_ext, fixture_teardown);
    g_test_add("/guest/ext-corrupt", Fixture, NULL, fixture_setup, test_ext_corrupt,
               fixture_teardown);
    return g_test_run();
}
