/* fuzz-backup.c: backup_parse (public, no RNG: the RNG is libxml2's code) and the internal status parse, then format. */
#include "fuzz.h"

#include <glib.h>

#include "backup.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void
fuzz_backup_one(const char *buf, gsize len, guint flags)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(BackupDef) def = backup_parse_flags(buf, len, NULL, flags, &err);
    g_autofree char *out = NULL;
    g_autofree char *out_internal = NULL;

    if (!def) {
        g_assert(err && err->message);
        return;
    }
    g_assert(!err);
    out = backup_format(def, FALSE);
    out_internal = backup_format(def, TRUE);
    g_assert(out && out_internal);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_backup_one((const char *) data, size, 0);
    fuzz_backup_one((const char *) data, size, BACKUP_PARSE_INTERNAL);
    return 0;
}
