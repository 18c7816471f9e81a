/* guest.h: what a guest disk holds: partition tables (MBR, GPT), LVM2 linear volumes,
 * filesystems found by their superblocks; no FUSE, no image format (a GuestDev reads). */
#pragma once

#include <glib.h>
#include <sys/stat.h>

G_BEGIN_DECLS

/* Reads up to @len bytes at @offset of a device; short only at its end; -1 with @error. */
typedef gssize (*GuestReadFunc)(gpointer data, void *buf, gsize len, guint64 offset,
                                GError **error);

/* A byte source: a disk's guest view, or a volume on one (guest_volume_dev()). */
typedef struct {
    GuestReadFunc read;
    gpointer data;
    guint64 size;
} GuestDev;

/* A piece of a volume: @len bytes at @off of the volume are at @dev of the disk. */
typedef struct {
    guint64 off;
    guint64 dev;
    guint64 len;
} GuestExtent;

/* A partition, a logical volume or the whole disk when it is one filesystem. */
typedef struct {
    char *name;           /* as the guest's Linux names it: vda1, VG-LV, vda */
    guint number;         /* partition number; 0 for the whole disk and logical volumes */
    guint64 start;        /* bytes from the disk's start (a volume: its first extent) */
    guint64 size;         /* bytes */
    char *ptype;          /* "0x83", a GPT type GUID, "lvm-linear", "" for the whole disk */
    char *fstype;         /* "ext4", "xfs", "btrfs", "ntfs", "vfat", "swap", "LVM2_member", "" */
    char *label;
    char *uuid;
    char *error;          /* why it is not opened (bad entry, overlap...), or NULL */
    GArray *extents;      /* GuestExtent, in volume order, covering [0, size) */
} GuestVolume;

void guest_volume_free(GuestVolume *vol);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestVolume, guest_volume_free)

/* The partitions (MBR with logical partitions, GPT), the linear LVM2 logical volumes on
 * them and, on a disk without a partition table, the disk itself when it holds a
 * filesystem, in the order partitions.tsv lists them (GuestVolume *, owned). @disk is
 * the disk's name (vda). Damaged tables and entries are listed with their reason, never
 * an error; only a failed read of @dev is (its GError). */
GPtrArray *guest_scan(const GuestDev *dev, const char *disk, GError **error);

/* One line per volume, tab-separated: name, number, start, size, partition type,
 * filesystem type, label, uuid, and "ok" or why it is not opened. Owned. */
char *guest_partitions_tsv(GPtrArray *vols);

/* The volume @vol of @disk as a device of its own; @vol and @disk must outlive it. */
void guest_volume_dev(const GuestVolume *vol, const GuestDev *disk, GuestDev *out,
                      gpointer storage[2]);

/* Reads @vol's bytes through its extents. */
gssize guest_volume_pread(const GuestVolume *vol, const GuestDev *disk, void *buf, gsize len,
                          guint64 offset, GError **error);

/* The filesystem on @dev by its superblock: @fstype "" when none is known; @label and
 * @uuid as blkid prints them ("" when none). Owned strings. */
gboolean guest_probe(const GuestDev *dev, char **fstype, char **label, char **uuid,
                     GError **error);

/* TRUE for filesystems files/ opens (a directory per volume that holds one). */
gboolean guest_fstype_readable(const char *fstype);

/* The volume of @vols named @name whose filesystem files/ opens, or NULL. */
const GuestVolume *guest_volume_find(GPtrArray *vols, const char *name);

/* The LVM2 logical volumes of physical volume @pv (a volume of @disk, start and size
 * on the disk), appended to @vols; volumes not linear or not on this disk are listed
 * with their reason. Internal to guest/, exported for the fuzz target. */
gboolean guest_lvm_scan(const GuestDev *disk, const GuestVolume *pv, GPtrArray *vols,
                        GError **error);

/* ---- filesystems (ext.c: ext2/3/4) ----------------------------------------------------
 * A GuestFs reads one filesystem on @dev, read-only; its calls may come from any thread
 * (one lock each). Inode numbers are the filesystem's own. */
typedef struct GuestFs GuestFs;

typedef struct {
    char *name;
    guint64 ino;
    mode_t type;          /* S_IFREG, S_IFDIR... */
} GuestDirent;

typedef struct {
    char *name;           /* "user.x", "security.selinux", "system.posix_acl_access"... */
    GBytes *value;
} GuestXattr;

void guest_dirent_free(GuestDirent *d);
void guest_xattr_free(GuestXattr *x);

/* Opens the filesystem of type @fstype on @dev (copied; its data must outlive the
 * GuestFs). CORE_ERROR_UNSUPPORTED for types not read yet, CORE_ERROR_CORRUPT when
 * the filesystem cannot be opened. */
GuestFs *guest_fs_open(const GuestDev *dev, const char *fstype, GError **error);
void guest_fs_close(GuestFs *gfs);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestFs, guest_fs_close)

guint64 guest_fs_root(GuestFs *gfs);
/* The inode's attributes as the guest's kernel shows them (st_ino the guest's). */
gboolean guest_fs_stat(GuestFs *gfs, guint64 ino, struct stat *st, GError **error);
/* G_FILE_ERROR_NOENT when @dir has no entry @name, NOTDIR when it is no directory. */
gboolean guest_fs_lookup(GuestFs *gfs, guint64 dir, const char *name, guint64 *ino,
                         GError **error);
/* GuestDirent *, without . and .. (owned). */
GPtrArray *guest_fs_readdir(GuestFs *gfs, guint64 dir, GError **error);
/* The link's target as the guest stored it. Owned. */
char *guest_fs_readlink(GuestFs *gfs, guint64 ino, GError **error);
/* Up to @len bytes of regular file @ino at @off; short only at its end. */
gssize guest_fs_pread(GuestFs *gfs, guint64 ino, void *buf, gsize len, guint64 off,
                      GError **error);
/* SEEK_DATA (@data) / SEEK_HOLE: the file's size when there is none. */
gboolean guest_fs_seek(GuestFs *gfs, guint64 ino, guint64 off, gboolean data,
                       guint64 *result, GError **error);
/* Every extended attribute of @ino, GuestXattr * (owned). */
GPtrArray *guest_fs_xattrs(GuestFs *gfs, guint64 ino, GError **error);

G_END_DECLS
