/* lvm.c: LVM2 physical volumes: the label, the metadata area and its text format, and
 * the linear logical volumes it describes, named as device-mapper names them (VG-LV). */
#include "guestint.h"

#include <string.h>
#include <zlib.h>

#include "error.h"

#define LVM_SECTOR 512
#define LVM_MAX_TEXT (4 * 1024 * 1024)
#define LVM_MAX_DEPTH 16
#define LVM_MAX_NODES 100000
#define LVM_MAX_AREAS 8
#define LVM_MDA_MAGIC " LVM2 x[5A%r0N*>"
#define LVM_INITIAL_CRC 0xf597a6cfU

/* LVM's checksum: CRC-32 from its own seed, without zlib's final inversion. */
static guint32
lvm_crc(const guint8 *buf, gsize len)
{
    return ~crc32(~LVM_INITIAL_CRC & 0xffffffffU, buf, len);
}

/* ---- the text format: sections, `key = value`, strings, integers, arrays ------------- */

typedef enum { LVM_SECTION, LVM_STRING, LVM_INT, LVM_ARRAY } LvmType;

typedef struct LvmNode LvmNode;
struct LvmNode {
    LvmType type;
    char *key;            /* NULL inside arrays */
    char *str;
    gint64 num;
    GPtrArray *children;  /* LVM_SECTION, LVM_ARRAY */
};

static void
lvm_node_free(LvmNode *n)
{
    if (!n)
        return;
    g_free(n->key);
    g_free(n->str);
    if (n->children)
        g_ptr_array_unref(n->children);
    g_free(n);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LvmNode, lvm_node_free)

typedef struct {
    const char *p;
    const char *end;
    guint nodes;
} LvmParser;

static LvmNode *
lvm_node_new(LvmParser *ps, LvmType type, const char *key)
{
    LvmNode *n;

    if (++ps->nodes > LVM_MAX_NODES)
        return NULL;
    n = g_new0(LvmNode, 1);
    n->type = type;
    n->key = g_strdup(key);
    if (type == LVM_SECTION || type == LVM_ARRAY)
        n->children = g_ptr_array_new_with_free_func((GDestroyNotify)lvm_node_free);
    return n;
}

static void
lvm_skip(LvmParser *ps)
{
    while (ps->p < ps->end) {
        if (*ps->p == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else if (g_ascii_isspace(*ps->p)) {
            ps->p++;
        } else {
            break;
        }
    }
}

static char *
lvm_word(LvmParser *ps)
{
    const char *s = ps->p;

    while (ps->p < ps->end && (g_ascii_isalnum(*ps->p) || strchr("_.+-", *ps->p)))
        ps->p++;
    return ps->p > s ? g_strndup(s, ps->p - s) : NULL;
}

static LvmNode *lvm_parse_value(LvmParser *ps, const char *key, guint depth);

static LvmNode *
lvm_parse_string(LvmParser *ps, const char *key)
{
    GString *s = g_string_new(NULL);
    LvmNode *n;

    ps->p++;
    while (ps->p < ps->end && *ps->p != '"') {
        if (*ps->p == '\\' && ps->p + 1 < ps->end)
            ps->p++;
        g_string_append_c(s, *ps->p++);
    }
    if (ps->p >= ps->end || !(n = lvm_node_new(ps, LVM_STRING, key))) {
        g_string_free(s, TRUE);
        return NULL;
    }
    ps->p++;
    n->str = g_string_free(s, FALSE);
    return n;
}

/* Items up to @close ('}' or the end for the top level). */
static gboolean
lvm_parse_items(LvmParser *ps, LvmNode *section, char close, guint depth)
{
    for (;;) {
        g_autofree char *key = NULL;
        LvmNode *child;

        lvm_skip(ps);
        if (ps->p >= ps->end)
            return close == 0;
        if (*ps->p == close) {
            ps->p++;
            return TRUE;
        }
        if (!(key = lvm_word(ps)))
            return FALSE;
        lvm_skip(ps);
        if (ps->p < ps->end && *ps->p == '{') {
            ps->p++;
            if (depth >= LVM_MAX_DEPTH || !(child = lvm_node_new(ps, LVM_SECTION, key)))
                return FALSE;
            g_ptr_array_add(section->children, child);
            if (!lvm_parse_items(ps, child, '}', depth + 1))
                return FALSE;
        } else if (ps->p < ps->end && *ps->p == '=') {
            ps->p++;
            lvm_skip(ps);
            if (!(child = lvm_parse_value(ps, key, depth + 1)))
                return FALSE;
            g_ptr_array_add(section->children, child);
        } else {
            return FALSE;
        }
    }
}

static LvmNode *
lvm_parse_value(LvmParser *ps, const char *key, guint depth)
{
    g_autoptr(LvmNode) n = NULL;
    g_autofree char *word = NULL;
    char *endp;

    if (ps->p >= ps->end || depth > LVM_MAX_DEPTH)
        return NULL;
    if (*ps->p == '"')
        return lvm_parse_string(ps, key);
    if (*ps->p == '[') {
        ps->p++;
        if (!(n = lvm_node_new(ps, LVM_ARRAY, key)))
            return NULL;
        for (;;) {
            LvmNode *item;

            lvm_skip(ps);
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                return g_steal_pointer(&n);
            }
            if (!(item = lvm_parse_value(ps, NULL, depth + 1)))
                return NULL;
            g_ptr_array_add(n->children, item);
            lvm_skip(ps);
            if (ps->p < ps->end && *ps->p == ',')
                ps->p++;
        }
    }
    if (!(word = lvm_word(ps)) || !(n = lvm_node_new(ps, LVM_INT, key)))
        return NULL;
    n->num = g_ascii_strtoll(word, &endp, 10);
    if (*endp)
        return NULL;   /* floats and bare words do not occur where we look */
    return g_steal_pointer(&n);
}

static LvmNode *
lvm_child(const LvmNode *n, const char *key, LvmType type)
{
    for (guint i = 0; n && n->children && i < n->children->len; i++) {
        LvmNode *c = n->children->pdata[i];

        if (c->key && strcmp(c->key, key) == 0)
            return c->type == type ? c : NULL;
    }
    return NULL;
}

static gboolean
lvm_int(const LvmNode *n, const char *key, guint64 *out)
{
    LvmNode *c = lvm_child(n, key, LVM_INT);

    if (!c || c->num < 0)
        return FALSE;
    *out = c->num;
    return TRUE;
}

/* ---- volumes ---------------------------------------------------------------------- */

/* device-mapper's name: VG-LV, each '-' inside a name doubled. */
static char *
lvm_dm_name(const char *vg, const char *lv)
{
    GString *s = g_string_new(NULL);

    for (const char *p = vg; *p; p++)
        g_string_append(s, *p == '-' ? "--" : (char[]){ *p, 0 });
    g_string_append_c(s, '-');
    for (const char *p = lv; *p; p++)
        g_string_append(s, *p == '-' ? "--" : (char[]){ *p, 0 });
    return g_string_free(s, FALSE);
}

static gboolean
lvm_has_flag(const LvmNode *lv, const char *flag)
{
    LvmNode *st = lvm_child(lv, "status", LVM_ARRAY);

    for (guint i = 0; st && i < st->children->len; i++) {
        LvmNode *f = st->children->pdata[i];

        if (f->type == LVM_STRING && strcmp(f->str, flag) == 0)
            return TRUE;
    }
    return FALSE;
}

static char *
lvm_id_plain(const char *id)
{
    GString *s = g_string_new(NULL);

    for (; *id; id++)
        if (*id != '-')
            g_string_append_c(s, *id);
    return g_string_free(s, FALSE);
}

/* A logical volume named @name (taken), not opened when @why is set. */
static GuestVolume *
lvm_volume_new(char *name, const char *why)
{
    GuestVolume *vol = g_new0(GuestVolume, 1);

    vol->name = name;
    vol->ptype = g_strdup("lvm-linear");
    vol->fstype = g_strdup("");
    vol->label = g_strdup("");
    vol->uuid = g_strdup("");
    vol->extents = g_array_new(FALSE, FALSE, sizeof(GuestExtent));
    vol->error = g_strdup(why);
    return vol;
}

/* The logical volume @lv of @vg: its extents on @disk when every segment is linear on
 * physical volume @pvkey (the one at @pv), else the reason. */
static GuestVolume *
lvm_volume(const GuestDev *disk, const GuestVolume *pv, const char *vgname,
           const LvmNode *lv, const char *pvkey, guint64 pe_start, guint64 pe_count,
           guint64 extent)
{
    GuestVolume *vol = lvm_volume_new(lvm_dm_name(vgname, lv->key), NULL);
    guint64 nseg = 0;
    guint64 size = 0;

    if (!lvm_int(lv, "segment_count", &nseg) || nseg == 0 || nseg > 1024) {
        vol->error = g_strdup("bad segment count");
        return vol;
    }
    for (guint64 i = 1; i <= nseg; i++) {
        g_autofree char *skey = g_strdup_printf("segment%" G_GUINT64_FORMAT, i);
        LvmNode *seg = lvm_child(lv, skey, LVM_SECTION);
        LvmNode *type = seg ? lvm_child(seg, "type", LVM_STRING) : NULL;
        LvmNode *stripes = seg ? lvm_child(seg, "stripes", LVM_ARRAY) : NULL;
        guint64 start = 0, count = 0, nstripes = 0, pe;
        GuestExtent e;
        LvmNode *spv, *spe;

        if (!seg || !type || !lvm_int(seg, "start_extent", &start) ||
            !lvm_int(seg, "extent_count", &count)) {
            vol->error = g_strdup_printf("segment %" G_GUINT64_FORMAT " damaged", i);
            return vol;
        }
        if (strcmp(type->str, "striped") != 0 || !lvm_int(seg, "stripe_count", &nstripes) ||
            nstripes != 1 || !stripes || stripes->children->len != 2) {
            vol->error = g_strdup_printf("segment type '%s' not supported (linear only)",
                                         type->str);
            return vol;
        }
        spv = stripes->children->pdata[0];
        spe = stripes->children->pdata[1];
        if (spv->type != LVM_STRING || spe->type != LVM_INT || spe->num < 0) {
            vol->error = g_strdup_printf("segment %" G_GUINT64_FORMAT " damaged", i);
            return vol;
        }
        if (strcmp(spv->str, pvkey) != 0) {
            vol->error = g_strdup_printf("on physical volume '%s', not on this disk", spv->str);
            return vol;
        }
        pe = spe->num;
        if (pe > pe_count || count > pe_count - pe || start > G_MAXUINT64 / extent ||
            count > G_MAXUINT64 / extent || start * extent != size) {
            vol->error = g_strdup_printf("segment %" G_GUINT64_FORMAT " out of range", i);
            return vol;
        }
        e.off = start * extent;
        e.len = count * extent;
        e.dev = pv->start + pe_start * LVM_SECTOR + pe * extent;
        if (e.dev + e.len > disk->size || e.dev + e.len > pv->start + pv->size) {
            vol->error = g_strdup("past the end of its physical volume");
            return vol;
        }
        if (vol->extents->len == 0)
            vol->start = e.dev;
        g_array_append_val(vol->extents, e);
        size += e.len;
    }
    vol->size = size;
    return vol;
}

/* The metadata text of the PV at @pv: the label, its header, the first metadata
 * area's current copy (a circular buffer), its checksum. NULL with @why when none. */
static char *
lvm_metadata(const GuestDev *disk, const GuestVolume *pv, char **uuid, const char **why,
             gsize *len, GError **error)
{
    guint8 head[4 * LVM_SECTOR];
    guint8 mdah[LVM_SECTOR];
    const guint8 *pvh = NULL;
    const guint8 *p;
    guint64 mda_off = 0, mda_size = 0, off, size;
    g_autofree char *text = NULL;

    *why = NULL;
    if (!guest_read(disk, head, sizeof head, pv->start, error))
        return NULL;
    for (guint s = 0; s < 4 && !pvh; s++) {
        const guint8 *l = head + s * LVM_SECTOR;

        if (memcmp(l, "LABELONE", 8) == 0 && memcmp(l + 24, "LVM2 001", 8) == 0 &&
            guest_le64(l + 8) == s && guest_le32(l + 20) >= 32 && guest_le32(l + 20) < 256)
            pvh = l + guest_le32(l + 20);
    }
    if (!pvh) {
        *why = "no LVM2 label";
        return NULL;
    }
    *uuid = g_strndup((const char *)pvh, 32);
    /* Data areas, a (0, 0) pair, metadata areas, a (0, 0) pair; in the label's sector. */
    p = pvh + 40;
    for (guint i = 0; i < LVM_MAX_AREAS && guest_le64(p); i++)
        p += 16;
    p += 16;
    if (p + 16 <= head + sizeof head && guest_le64(p)) {
        mda_off = guest_le64(p);
        mda_size = guest_le64(p + 8);
    }
    if (!mda_off || mda_size < 2 * LVM_SECTOR || mda_off >= pv->size ||
        mda_size > pv->size - mda_off) {
        *why = "no metadata area";
        return NULL;
    }
    if (!guest_read(disk, mdah, sizeof mdah, pv->start + mda_off, error))
        return NULL;
    if (memcmp(mdah + 4, LVM_MDA_MAGIC, 16) != 0 ||
        lvm_crc(mdah + 4, LVM_SECTOR - 4) != guest_le32(mdah)) {
        *why = "metadata area header damaged";
        return NULL;
    }
    off = guest_le64(mdah + 40);
    size = guest_le64(mdah + 48);
    if (!off || !size || size > LVM_MAX_TEXT || off < LVM_SECTOR || off >= mda_size ||
        size > mda_size - LVM_SECTOR) {
        *why = "no metadata in the metadata area";
        return NULL;
    }
    text = g_malloc(size + 1);
    if (off + size <= mda_size) {
        if (!guest_read(disk, text, size, pv->start + mda_off + off, error))
            return NULL;
    } else {   /* wraps to just after the header */
        guint64 first = mda_size - off;

        if (!guest_read(disk, text, first, pv->start + mda_off + off, error) ||
            !guest_read(disk, text + first, size - first, pv->start + mda_off + LVM_SECTOR,
                      error))
            return NULL;
    }
    if (lvm_crc((guint8 *)text, size) != guest_le32(mdah + 56)) {
        *why = "metadata checksum mismatch";
        return NULL;
    }
    text[size] = 0;
    *len = strnlen(text, size);   /* the text ends at its NUL */
    return g_steal_pointer(&text);
}

gboolean
guest_lvm_scan(const GuestDev *disk, const GuestVolume *pv, GPtrArray *vols, GError **error)
{
    g_autofree char *pvuuid = NULL;
    g_autofree char *text = NULL;
    g_autoptr(LvmNode) top = NULL;
    const char *why = NULL;
    LvmNode *vg = NULL, *pvs, *lvs;
    const char *pvkey = NULL;
    guint64 pe_start = 0, pe_count = 0, extent = 0;
    gsize len = 0;
    LvmParser ps;

    if (!(text = lvm_metadata(disk, pv, &pvuuid, &why, &len, error))) {
        if (!why)
            return FALSE;
        g_ptr_array_add(vols, lvm_volume_new(g_strdup_printf("%s-lvm", pv->name), why));
        return TRUE;
    }
    ps.p = text;
    ps.end = text + len;
    ps.nodes = 0;
    top = lvm_node_new(&ps, LVM_SECTION, NULL);
    if (lvm_parse_items(&ps, top, 0, 0)) {
        for (guint i = 0; i < top->children->len && !vg; i++)
            if (((LvmNode *)top->children->pdata[i])->type == LVM_SECTION)
                vg = top->children->pdata[i];
    }
    pvs = lvm_child(vg, "physical_volumes", LVM_SECTION);
    lvs = lvm_child(vg, "logical_volumes", LVM_SECTION);
    for (guint i = 0; pvs && i < pvs->children->len && !pvkey; i++) {
        LvmNode *p = pvs->children->pdata[i];
        LvmNode *id = lvm_child(p, "id", LVM_STRING);
        g_autofree char *plain = id ? lvm_id_plain(id->str) : NULL;

        if (p->type == LVM_SECTION && plain && strcmp(plain, pvuuid) == 0 &&
            lvm_int(p, "pe_start", &pe_start) && lvm_int(p, "pe_count", &pe_count))
            pvkey = p->key;
    }
    if (!vg || !pvkey || !lvm_int(vg, "extent_size", &extent) || extent == 0 ||
        extent > G_MAXUINT64 / LVM_SECTOR / (pe_count + 1) ||
        pe_start > pv->size / LVM_SECTOR) {
        g_ptr_array_add(vols, lvm_volume_new(g_strdup_printf("%s-lvm", pv->name),
                                             "metadata not understood"));
        return TRUE;
    }
    extent *= LVM_SECTOR;
    for (guint i = 0; lvs && i < lvs->children->len; i++) {
        LvmNode *lv = lvs->children->pdata[i];
        GuestVolume *vol;

        if (lv->type != LVM_SECTION || !lvm_has_flag(lv, "VISIBLE"))
            continue;
        vol = lvm_volume(disk, pv, vg->key, lv, pvkey, pe_start, pe_count, extent);
        g_ptr_array_add(vols, vol);
        if (!vol->error) {
            GuestDev vdev;
            gpointer storage[2];

            guest_volume_dev(vol, disk, &vdev, storage);
            g_free(vol->fstype);
            g_free(vol->label);
            g_free(vol->uuid);
            if (!guest_probe(&vdev, &vol->fstype, &vol->label, &vol->uuid, error))
                return FALSE;
        }
    }
    return TRUE;
}
