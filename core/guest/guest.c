/* guest.c: partition tables (MBR with logical partitions, GPT), superblock probing and
 * partitions.tsv; LVM2 is lvm.c. Sectors are 512 bytes, as virtio and IDE disks have. */
#include "guestint.h"

#include <string.h>
#include <zlib.h>

#include "error.h"
#include "util.h"

#define GUEST_SECTOR 512
/* Bounds on what a hostile table can make us read or list. */
#define GUEST_MAX_LOGICAL 256
#define GUEST_MAX_GPT_ENTRIES 1024
#define GUEST_MAX_GPT_BYTES (1024 * 1024)

void
guest_volume_free(GuestVolume *vol)
{
    if (!vol)
        return;
    g_free(vol->name);
    g_free(vol->ptype);
    g_free(vol->fstype);
    g_free(vol->label);
    g_free(vol->uuid);
    g_free(vol->error);
    if (vol->extents)
        g_array_unref(vol->extents);
    g_free(vol);
}

gboolean
guest_read(const GuestDev *dev, void *buf, gsize len, guint64 off, GError **error)
{
    gsize done = 0;

    while (done < len) {
        gssize n;

        if (off + done >= dev->size)
            break;
        n = dev->read(dev->data, (char *)buf + done, len - done, off + done, error);
        if (n < 0)
            return FALSE;
        if (n == 0)
            break;
        done += n;
    }
    memset((char *)buf + done, 0, len - done);
    return TRUE;
}

/* ---- volumes ---------------------------------------------------------------------- */

static GuestVolume *
guest_volume_new(const char *name, guint number, guint64 start, guint64 size,
                 const char *ptype)
{
    GuestVolume *vol = g_new0(GuestVolume, 1);
    GuestExtent e = { 0, start, size };

    vol->name = g_strdup(name);
    vol->number = number;
    vol->start = start;
    vol->size = size;
    vol->ptype = g_strdup(ptype);
    vol->fstype = g_strdup("");
    vol->label = g_strdup("");
    vol->uuid = g_strdup("");
    vol->extents = g_array_new(FALSE, FALSE, sizeof(GuestExtent));
    g_array_append_val(vol->extents, e);
    return vol;
}

static void
guest_volume_fail(GuestVolume *vol, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
guest_volume_fail(GuestVolume *vol, const char *fmt, ...)
{
    va_list ap;

    if (vol->error)
        return;   /* the first reason stands */
    va_start(ap, fmt);
    vol->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

gssize
guest_volume_pread(const GuestVolume *vol, const GuestDev *disk, void *buf, gsize len,
                   guint64 offset, GError **error)
{
    gsize done = 0;

    if (offset >= vol->size)
        return 0;
    len = MIN(len, vol->size - offset);
    for (guint i = 0; i < vol->extents->len && done < len; i++) {
        const GuestExtent *e = &g_array_index(vol->extents, GuestExtent, i);
        guint64 pos = offset + done;
        gsize want;

        if (pos < e->off || pos >= e->off + e->len)
            continue;
        want = MIN(len - done, e->off + e->len - pos);
        if (!guest_read(disk, (char *)buf + done, want, e->dev + (pos - e->off), error))
            return -1;
        done += want;
    }
    memset((char *)buf + done, 0, len - done);   /* extents cover the volume: not reached */
    return len;
}

typedef struct {
    const GuestVolume *vol;
    const GuestDev *disk;
} GuestVolumeDev;

static gssize
guest_volume_dev_read(gpointer data, void *buf, gsize len, guint64 offset, GError **error)
{
    gpointer *storage = data;

    return guest_volume_pread(storage[0], storage[1], buf, len, offset, error);
}

void
guest_volume_dev(const GuestVolume *vol, const GuestDev *disk, GuestDev *out,
                 gpointer storage[2])
{
    storage[0] = (gpointer)vol;
    storage[1] = (gpointer)disk;
    out->read = guest_volume_dev_read;
    out->data = storage;
    out->size = vol->size;
}

/* The name Linux gives partition @n of @disk: vda1, but nvme0n1p1 after a digit. */
static char *
guest_part_name(const char *disk, guint n)
{
    gsize len = strlen(disk);

    if (len && g_ascii_isdigit(disk[len - 1]))
        return g_strdup_printf("%sp%u", disk, n);
    return g_strdup_printf("%s%u", disk, n);
}

/* ---- superblocks ---------------------------------------------------------------------- */

static char *
guest_uuid_string(const guint8 *u)
{
    static const guint8 zero[16];

    if (memcmp(u, zero, 16) == 0)
        return g_strdup("");
    return g_strdup_printf("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                           "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
                           u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* A label field: up to @len bytes, cut at the first NUL, made valid UTF-8, trailing
 * spaces dropped (FAT pads with them). */
static char *
guest_label_string(const guint8 *p, gsize len)
{
    gsize n = 0;
    g_autofree char *raw = NULL;

    while (n < len && p[n])
        n++;
    while (n > 0 && p[n - 1] == ' ')
        n--;
    raw = g_strndup((const char *)p, n);
    return g_utf8_make_valid(raw, -1);
}

#define EXT_COMPAT_HAS_JOURNAL 0x4
#define EXT_INCOMPAT_JOURNAL_DEV 0x8
/* What ext3 supports; any other feature makes it ext4 (blkid's rule). */
#define EXT3_INCOMPAT_SUPP (0x2 | 0x4 | 0x10)
#define EXT3_RO_COMPAT_SUPP (0x1 | 0x2 | 0x4)

static gboolean
guest_probe_ext(const guint8 *sb, char **fstype, char **label, char **uuid)
{
    guint32 compat, incompat, ro_compat;

    if (guest_le16(sb + 56) != 0xEF53)
        return FALSE;
    compat = guest_le32(sb + 92);
    incompat = guest_le32(sb + 96);
    ro_compat = guest_le32(sb + 100);
    if (incompat & EXT_INCOMPAT_JOURNAL_DEV)
        *fstype = g_strdup("jbd");
    else if ((incompat & ~EXT3_INCOMPAT_SUPP) || (ro_compat & ~EXT3_RO_COMPAT_SUPP))
        *fstype = g_strdup("ext4");
    else if (compat & EXT_COMPAT_HAS_JOURNAL)
        *fstype = g_strdup("ext3");
    else
        *fstype = g_strdup("ext2");
    *label = guest_label_string(sb + 120, 16);
    *uuid = guest_uuid_string(sb + 104);
    return TRUE;
}

/* FAT: a boot sector with a sane BPB and its type string. */
static gboolean
guest_probe_fat(const guint8 *bs, char **fstype, char **label, char **uuid)
{
    guint16 bps = guest_le16(bs + 11);
    guint8 spc = bs[13];
    const guint8 *ext;

    if (bs[510] != 0x55 || bs[511] != 0xAA)
        return FALSE;
    if (bps < 512 || bps > 4096 || (bps & (bps - 1)) || !spc || (spc & (spc - 1)) ||
        !guest_le16(bs + 14) || !bs[16])
        return FALSE;
    if (memcmp(bs + 82, "FAT32   ", 8) == 0)
        ext = bs + 64;
    else if (memcmp(bs + 54, "FAT12   ", 8) == 0 || memcmp(bs + 54, "FAT16   ", 8) == 0 ||
             memcmp(bs + 54, "FAT     ", 8) == 0)
        ext = bs + 36;
    else
        return FALSE;
    *fstype = g_strdup("vfat");
    if (ext[2] == 0x29) {
        guint32 serial = guest_le32(ext + 3);

        *label = guest_label_string(ext + 7, 11);
        if (strcmp(*label, "NO NAME") == 0) {
            g_free(*label);
            *label = g_strdup("");
        }
        *uuid = g_strdup_printf("%04X-%04X", serial >> 16, serial & 0xffff);
    } else {
        *label = g_strdup("");
        *uuid = g_strdup("");
    }
    return TRUE;
}

gboolean
guest_probe(const GuestDev *dev, char **fstype, char **label, char **uuid, GError **error)
{
    g_autofree guint8 *head = g_malloc(8192);
    g_autofree guint8 *btr = g_malloc(4096);

    *fstype = *label = *uuid = NULL;
    if (!guest_read(dev, head, 8192, 0, error) || !guest_read(dev, btr, 4096, 65536, error))
        return FALSE;
    if (guest_probe_ext(head + 1024, fstype, label, uuid))
        return TRUE;
    if (memcmp(head, "XFSB", 4) == 0) {
        *fstype = g_strdup("xfs");
        *label = guest_label_string(head + 108, 12);
        *uuid = guest_uuid_string(head + 32);
        return TRUE;
    }
    if (memcmp(btr + 64, "_BHRfS_M", 8) == 0) {
        *fstype = g_strdup("btrfs");
        *label = guest_label_string(btr + 299, 256);
        *uuid = guest_uuid_string(btr + 32);
        return TRUE;
    }
    if (memcmp(head + 3, "NTFS    ", 8) == 0 && head[510] == 0x55 && head[511] == 0xAA) {
        *fstype = g_strdup("ntfs");
        *label = g_strdup("");   /* in the $Volume file, not the boot sector */
        *uuid = g_strdup_printf("%016" G_GINT64_MODIFIER "X", guest_le64(head + 0x48));
        return TRUE;
    }
    if (memcmp(head + 4096 - 10, "SWAPSPACE2", 10) == 0 ||
        memcmp(head + 4096 - 10, "SWAP-SPACE", 10) == 0) {
        *fstype = g_strdup("swap");
        *label = guest_label_string(head + 1024 + 28, 16);
        *uuid = guest_uuid_string(head + 1024 + 12);
        return TRUE;
    }
    for (guint s = 0; s < 4; s++) {
        const guint8 *p = head + s * GUEST_SECTOR;

        if (memcmp(p, "LABELONE", 8) == 0 && memcmp(p + 24, "LVM2 001", 8) == 0 &&
            guest_le64(p + 8) == s && guest_le32(p + 20) < GUEST_SECTOR - 32) {
            const guint8 *id = p + guest_le32(p + 20);

            *fstype = g_strdup("LVM2_member");
            *label = g_strdup("");
            /* LVM's own spelling: 6-4-4-4-4-4-6 */
            *uuid = g_strdup_printf("%.6s-%.4s-%.4s-%.4s-%.4s-%.4s-%.6s", id, id + 6, id + 10,
                                    id + 14, id + 18, id + 22, id + 26);
            return TRUE;
        }
    }
    if (guest_probe_fat(head, fstype, label, uuid))
        return TRUE;
    *fstype = g_strdup("");
    *label = g_strdup("");
    *uuid = g_strdup("");
    return TRUE;
}

gboolean
guest_fstype_readable(const char *fstype)
{
    return g_strcmp0(fstype, "ext2") == 0 || g_strcmp0(fstype, "ext3") == 0 ||
           g_strcmp0(fstype, "ext4") == 0;
}

const GuestVolume *
guest_volume_find(GPtrArray *vols, const char *name)
{
    for (guint i = 0; vols && i < vols->len; i++) {
        const GuestVolume *v = vols->pdata[i];

        if (!v->error && strcmp(v->name, name) == 0 && guest_fstype_readable(v->fstype))
            return v;
    }
    return NULL;
}

/* ---- MBR ---------------------------------------------------------------------------- */

static gboolean
guest_mbr_extended(guint8 type)
{
    return type == 0x05 || type == 0x0f || type == 0x85;
}

static gboolean
guest_mbr_scan(const GuestDev *dev, const char *disk, const guint8 *mbr, GPtrArray *vols,
               GError **error)
{
    guint64 nsect = dev->size / GUEST_SECTOR;
    guint logical = 5;

    for (guint i = 0; i < 4; i++) {
        const guint8 *e = mbr + 446 + 16 * i;
        guint8 type = e[4];
        guint64 start = guest_le32(e + 8);
        guint64 count = guest_le32(e + 12);
        g_autofree char *name = NULL;
        g_autofree char *ptype = NULL;
        GuestVolume *vol;

        if (type == 0 || count == 0)
            continue;
        name = guest_part_name(disk, i + 1);
        ptype = g_strdup_printf("0x%02x", type);
        vol = guest_volume_new(name, i + 1, start * GUEST_SECTOR, count * GUEST_SECTOR, ptype);
        g_ptr_array_add(vols, vol);
        if (start + count > nsect)
            guest_volume_fail(vol, "past the end of the disk");
        if (!guest_mbr_extended(type))
            continue;
        guest_volume_fail(vol, "extended partition");
        /* The chain of extended boot records: each holds a logical partition (start
         * relative to itself) and the next record (relative to the extended one). */
        {
            g_autoptr(GHashTable) seen = g_hash_table_new(g_int64_hash, g_int64_equal);
            g_autofree guint64 *keys = g_new(guint64, GUEST_MAX_LOGICAL);
            guint64 ebr = start;
            guint8 sec[GUEST_SECTOR];

            for (guint n = 0; n < GUEST_MAX_LOGICAL; n++) {
                const guint8 *l = sec + 446;
                const guint8 *next = sec + 446 + 16;

                if (ebr < start || ebr >= start + count || ebr >= nsect)
                    break;
                keys[n] = ebr;
                if (g_hash_table_contains(seen, &keys[n]))
                    break;   /* a loop */
                g_hash_table_add(seen, &keys[n]);
                if (!guest_read(dev, sec, sizeof sec, ebr * GUEST_SECTOR, error))
                    return FALSE;
                if (sec[510] != 0x55 || sec[511] != 0xAA)
                    break;
                if (l[4] != 0 && guest_le32(l + 12) != 0) {
                    guint64 ls = ebr + guest_le32(l + 8);
                    guint64 lc = guest_le32(l + 12);
                    g_autofree char *lname = guest_part_name(disk, logical);
                    g_autofree char *ltype = g_strdup_printf("0x%02x", l[4]);
                    GuestVolume *lv = guest_volume_new(lname, logical, ls * GUEST_SECTOR,
                                                       lc * GUEST_SECTOR, ltype);

                    logical++;
                    g_ptr_array_add(vols, lv);
                    if (ls + lc > nsect)
                        guest_volume_fail(lv, "past the end of the disk");
                    else if (ls < start || ls + lc > start + count)
                        guest_volume_fail(lv, "outside its extended partition");
                }
                if (!guest_mbr_extended(next[4]) || guest_le32(next + 12) == 0)
                    break;
                ebr = start + guest_le32(next + 8);
            }
        }
    }
    return TRUE;
}

/* ---- GPT ---------------------------------------------------------------------------- */

static char *
guest_guid_string(const guint8 *g)
{
    return g_strdup_printf("%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                           guest_le32(g), guest_le16(g + 4), guest_le16(g + 6), g[8], g[9],
                           g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* The GPT header at sector @lba, when its signature, size and checksum hold. */
static gboolean
guest_gpt_header(const GuestDev *dev, guint64 lba, guint8 *hdr, gboolean *valid,
                 GError **error)
{
    guint32 size, crc;
    guint8 copy[GUEST_SECTOR];

    *valid = FALSE;
    if (!guest_read(dev, hdr, GUEST_SECTOR, lba * GUEST_SECTOR, error))
        return FALSE;
    if (memcmp(hdr, "EFI PART", 8) != 0)
        return TRUE;
    size = guest_le32(hdr + 12);
    if (size < 92 || size > GUEST_SECTOR || guest_le64(hdr + 24) != lba)
        return TRUE;
    memcpy(copy, hdr, GUEST_SECTOR);
    memset(copy + 16, 0, 4);
    crc = crc32(0, copy, size);
    *valid = crc == guest_le32(hdr + 16);
    return TRUE;
}

/* The header at @lba and its entry array (@ents, owned, NULL when the header is
 * damaged or its array too large); @ents_ok when the array's checksum holds. */
static gboolean
guest_gpt_load(const GuestDev *dev, guint64 lba, guint8 *hdr, guint8 **ents,
               gboolean *ents_ok, GError **error)
{
    gboolean valid = FALSE;
    guint32 nent, esize;
    gsize bytes;

    *ents = NULL;
    *ents_ok = FALSE;
    if (!guest_gpt_header(dev, lba, hdr, &valid, error))
        return FALSE;
    if (!valid)
        return TRUE;
    nent = guest_le32(hdr + 80);
    esize = guest_le32(hdr + 84);
    if (esize < 128 || esize % 8 || nent > GUEST_MAX_GPT_ENTRIES ||
        (guint64)nent * esize > GUEST_MAX_GPT_BYTES)
        return TRUE;
    bytes = (gsize)nent * esize;
    *ents = g_malloc(bytes + 1);
    if (!guest_read(dev, *ents, bytes, guest_le64(hdr + 72) * GUEST_SECTOR, error)) {
        g_clear_pointer(ents, g_free);
        return FALSE;
    }
    *ents_ok = crc32(0, *ents, bytes) == guest_le32(hdr + 88);
    return TRUE;
}

/* The primary table, or the backup at the disk's last sector when the primary's header
 * or entries are damaged; entries of a table whose array checksum fails in both are
 * listed, not opened. */
static gboolean
guest_gpt_scan(const GuestDev *dev, const char *disk, GPtrArray *vols, GError **error)
{
    guint8 hdr[GUEST_SECTOR];
    guint8 bhdr[GUEST_SECTOR];
    guint64 nsect = dev->size / GUEST_SECTOR;
    g_autofree guint8 *ents = NULL;
    g_autofree guint8 *bents = NULL;
    gboolean ok = FALSE, bok = FALSE;
    guint32 nent, esize;
    guint64 first, last;

    if (!guest_gpt_load(dev, 1, hdr, &ents, &ok, error))
        return FALSE;
    if (!ok && nsect > 2) {
        if (!guest_gpt_load(dev, nsect - 1, bhdr, &bents, &bok, error))
            return FALSE;
        if (bents && (bok || !ents)) {
            memcpy(hdr, bhdr, sizeof hdr);
            g_free(ents);
            ents = g_steal_pointer(&bents);
            ok = bok;
        }
    }
    if (!ents) {
        GuestVolume *vol = guest_volume_new(disk, 0, 0, dev->size, "gpt");

        guest_volume_fail(vol, "GPT header damaged or not supported (primary and backup)");
        g_ptr_array_add(vols, vol);
        return TRUE;
    }
    nent = guest_le32(hdr + 80);
    esize = guest_le32(hdr + 84);
    first = guest_le64(hdr + 40);
    last = guest_le64(hdr + 48);
    for (guint i = 0; i < nent; i++) {
        const guint8 *e = ents + (gsize)i * esize;
        static const guint8 zero[16];
        guint64 s = guest_le64(e + 32);
        guint64 l = guest_le64(e + 40);
        g_autofree char *name = NULL;
        g_autofree char *ptype = NULL;
        GuestVolume *vol;

        if (memcmp(e, zero, 16) == 0)
            continue;
        name = guest_part_name(disk, i + 1);
        ptype = guest_guid_string(e);
        vol = guest_volume_new(name, i + 1, s * GUEST_SECTOR,
                               l >= s && l - s < G_MAXUINT64 / GUEST_SECTOR - 1
                               ? (l - s + 1) * GUEST_SECTOR : 0, ptype);
        g_ptr_array_add(vols, vol);
        if (!ok)
            guest_volume_fail(vol, "GPT entry array checksum mismatch (primary and backup)");
        if (l < s)
            guest_volume_fail(vol, "ends before it starts");
        else if (l >= nsect)
            guest_volume_fail(vol, "past the end of the disk");
        else if (s < first || l > last)
            guest_volume_fail(vol, "outside the table's usable sectors");
    }
    return TRUE;
}

/* Marks each volume that overlaps an earlier one (an extended partition holds its
 * logical partitions: those are not overlaps). */
static void
guest_check_overlaps(GPtrArray *vols)
{
    for (guint i = 0; i < vols->len; i++) {
        GuestVolume *a = vols->pdata[i];

        for (guint j = 0; j < i; j++) {
            GuestVolume *b = vols->pdata[j];
            gboolean container = g_str_has_prefix(b->ptype, "0x") && a->number >= 5 &&
                                 b->number < 5 && b->error &&
                                 strcmp(b->error, "extended partition") == 0;

            if (container || a->size == 0 || b->size == 0)
                continue;
            if (a->start < b->start + b->size && b->start < a->start + a->size)
                guest_volume_fail(a, "overlaps %s", b->name);
        }
    }
}

GPtrArray *
guest_scan(const GuestDev *dev, const char *disk, GError **error)
{
    g_autoptr(GPtrArray) vols = g_ptr_array_new_with_free_func((GDestroyNotify)guest_volume_free);
    g_autofree char *fstype = NULL;
    g_autofree char *label = NULL;
    g_autofree char *uuid = NULL;
    guint8 mbr[GUEST_SECTOR];
    gboolean gpt = FALSE;
    guint nparts;

    if (!guest_probe(dev, &fstype, &label, &uuid, error) ||
        !guest_read(dev, mbr, sizeof mbr, 0, error))
        return NULL;
    /* A filesystem on the whole disk wins over an MBR-shaped boot sector (FAT and NTFS
     * boot sectors end in 55 AA too). */
    if (*fstype) {
        GuestVolume *vol = guest_volume_new(disk, 0, 0, dev->size, "");

        g_free(vol->fstype);
        g_free(vol->label);
        g_free(vol->uuid);
        vol->fstype = g_steal_pointer(&fstype);
        vol->label = g_steal_pointer(&label);
        vol->uuid = g_steal_pointer(&uuid);
        g_ptr_array_add(vols, vol);
        if (strcmp(vol->fstype, "LVM2_member") == 0 && !guest_lvm_scan(dev, vol, vols, error))
            return NULL;
        return g_steal_pointer(&vols);
    }
    if (mbr[510] != 0x55 || mbr[511] != 0xAA)
        return g_steal_pointer(&vols);
    for (guint i = 0; i < 4; i++)
        if (mbr[446 + 16 * i + 4] == 0xee)
            gpt = TRUE;
    if (gpt ? !guest_gpt_scan(dev, disk, vols, error)
            : !guest_mbr_scan(dev, disk, mbr, vols, error))
        return NULL;
    guest_check_overlaps(vols);
    nparts = vols->len;
    for (guint i = 0; i < nparts; i++) {
        GuestVolume *vol = vols->pdata[i];
        GuestDev vdev;
        gpointer storage[2];

        if (vol->error)
            continue;
        guest_volume_dev(vol, dev, &vdev, storage);
        g_free(vol->fstype);
        g_free(vol->label);
        g_free(vol->uuid);
        if (!guest_probe(&vdev, &vol->fstype, &vol->label, &vol->uuid, error))
            return NULL;
        if (strcmp(vol->fstype, "LVM2_member") == 0 && !guest_lvm_scan(dev, vol, vols, error))
            return NULL;
    }
    return g_steal_pointer(&vols);
}

char *
guest_partitions_tsv(GPtrArray *vols)
{
    GString *out = g_string_new(NULL);

    for (guint i = 0; vols && i < vols->len; i++) {
        const GuestVolume *v = vols->pdata[i];
        const char *fields[] = { v->ptype, v->fstype, v->label, v->uuid };

        util_tsv_escape(out, v->name);
        g_string_append_printf(out, "\t%u\t%" G_GUINT64_FORMAT "\t%" G_GUINT64_FORMAT,
                               v->number, v->start, v->size);
        for (guint f = 0; f < G_N_ELEMENTS(fields); f++) {
            g_string_append_c(out, '\t');
            util_tsv_escape(out, fields[f]);
        }
        g_string_append_c(out, '\t');
        util_tsv_escape(out, v->error ? v->error : "ok");
        g_string_append_c(out, '\n');
    }
    return g_string_free(out, FALSE);
}
