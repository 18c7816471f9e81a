/* fuzz-domain.c: domain_parse (define and live), then format and re-parse what it formatted. */
#include "fuzz.h"

#include <glib.h>
#include <string.h>

#include "domain.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void
fuzz_domain_one(const char *buf, gsize len, guint flags)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DomainDef) def = domain_parse(buf, len, flags, &err);
    g_autofree char *out = NULL;
    g_autoptr(DomainDef) again = NULL;
    g_autoptr(DomainDef) copy = NULL;
    g_autoptr(GError) err2 = NULL;

    if (!def) {
        g_assert(err && err->message);
        return;
    }
    g_assert(!err);
    out = domain_format(def, DOMAIN_FORMAT_SECURE | (flags & DOMAIN_PARSE_LIVE ? DOMAIN_FORMAT_LIVE : 0));
    g_assert(out);
    /* What we write must read back (with a uuid now, and any genid kept). */
    again = domain_parse(out, strlen(out), flags & ~DOMAIN_PARSE_NO_UUID_OK, &err2);
    if (!again)
        FUZZ_FAIL("formatted domain does not parse: %s\n%s", err2->message, out);
    copy = domain_copy(def);
    for (guint i = 0; i < def->disks->len; i++) {
        DiskDef *disk = g_ptr_array_index(def->disks, i);
        g_autofree char *x = domain_disk_format(def, disk, DOMAIN_FORMAT_SECURE);
        g_autofree char *d = storage_source_describe(disk->src);

        g_assert(x);
        if (disk->dst)
            (void) domain_disk_by_name(def, disk->dst);
    }
    {
        g_autoptr(GError) e = NULL;
        (void) domain_check_abi(def, again, &e);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_domain_one((const char *) data, size, DOMAIN_PARSE_NO_UUID_OK);
    fuzz_domain_one((const char *) data, size, DOMAIN_PARSE_LIVE);
    return 0;
}
