/* fuzz-snapshot.c: snapshot_parse in its three modes (create, redefine, metadata file), then format and re-parse. */
#include "fuzz.h"

#include <glib.h>
#include <string.h>

#include "snapshot.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void
fuzz_snapshot_one(const char *buf, gsize len, guint flags)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(SnapshotDef) def = snapshot_parse(buf, len, flags, &err);
    g_autoptr(SnapshotDef) copy = NULL;
    g_autofree char *out = NULL;
    g_autoptr(SnapshotDef) again = NULL;
    g_autoptr(GError) err2 = NULL;
    guint fmt = SNAPSHOT_FORMAT_SECURE;

    if (!def) {
        g_assert(err && err->message);
        return;
    }
    g_assert(!err);
    if (flags & SNAPSHOT_PARSE_REDEFINE)   /* what store.c writes for a redefinition */
        fmt |= SNAPSHOT_FORMAT_INTERNAL;
    out = snapshot_format(def, fmt);
    g_assert(out);
    /* A metadata file we write must load again (store.c reads it in this mode). */
    if ((flags & SNAPSHOT_PARSE_REDEFINE) && def->name) {
        again = snapshot_parse(out, strlen(out), flags | SNAPSHOT_PARSE_INTERNAL, &err2);
        if (!again)
            FUZZ_FAIL("formatted snapshot does not parse: %s\n%s", err2->message, out);
    }
    copy = snapshot_def_copy(def);
    (void) snapshot_is_external(def);
    if (def->name) {
        g_autoptr(GError) e = NULL;
        (void) snapshot_check_name(def->name, &e);
    }
    {
        g_autoptr(GError) e = NULL;
        (void) snapshot_check_state(def->state, !!(flags & SNAPSHOT_PARSE_REDEFINE), &e);
    }
    if (def->dom) {
        g_autoptr(GError) e = NULL;
        g_autoptr(GError) e2 = NULL;

        (void) snapshot_redefine_validate(def, NULL, def->dom, FALSE, &e);
        (void) snapshot_align_disks(copy, def->dom, SNAP_LOC_EXTERNAL, TRUE, &e2);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *) data;

    fuzz_snapshot_one(buf, size, SNAPSHOT_PARSE_DISKS | SNAPSHOT_PARSE_OFFLINE);
    fuzz_snapshot_one(buf, size, SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS);
    fuzz_snapshot_one(buf, size, SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS |
                                 SNAPSHOT_PARSE_INTERNAL);
    return 0;
}
