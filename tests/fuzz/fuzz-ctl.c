/* fuzz-ctl.c: the control-write protocol without a store: xmlutil_document_end over every split of the
 * stream, then each document as ctl/import takes it (redefine parse) into a snapshot tree. */
#include "fuzz.h"

#include <glib.h>
#include <string.h>

#include "snaptree.h"
#include "snapshot.h"
#include "xmlutil.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

/* A document's end found on the whole buffer must be found on any longer prefix, and every shorter
 * prefix must be "incomplete": ctl.c applies as soon as the end is seen, whatever the write sizes. */
static void
fuzz_ctl_check_prefixes(const char *buf, gsize len, gssize end)
{
    gsize step = len > 512 ? len / 256 : 1;

    for (gsize k = 0; k < (gsize) end; k += step) {
        gssize e = xmlutil_document_end(buf, k);

        if (e != XMLUTIL_INCOMPLETE)
            FUZZ_FAIL("document ends at %zd of %zu, but a prefix of %zu gives %zd", end, len, k, e);
    }
    g_assert(xmlutil_document_end(buf, end) == end);
}

static void
fuzz_ctl_tree(SnapTree *tree)
{
    g_autoptr(GPtrArray) topo = NULL;
    g_autoptr(GPtrArray) roots = NULL;
    g_autofree char *txt = NULL;
    g_autofree char *tsv = NULL;

    (void) snaptree_update_relations(tree);
    topo = snaptree_topological(tree);
    roots = snaptree_roots(tree);
    g_assert(topo->len == snaptree_count(tree));
    txt = snaptree_render_tree(tree, NULL, TRUE);
    tsv = snaptree_render_tsv(tree);
    {
        /* Whatever the names hold, one row per snapshot and six columns per row. */
        guint rows = 0, tabs = 0;

        for (const char *p = tsv; *p; p++) {
            rows += *p == '\n';
            tabs += *p == '\t';
        }
        if (rows != topo->len || tabs != 5 * topo->len)
            FUZZ_FAIL("snapshots.tsv has %u rows and %u tabs for %u snapshots", rows, tabs,
                      topo->len);
    }
    for (guint i = 0; i < topo->len; i++) {
        SnapNode *node = g_ptr_array_index(topo, i);
        g_autoptr(GPtrArray) desc = snaptree_descendants(tree, node);
        g_autoptr(GPtrArray) plan = snaptree_delete_plan(tree, node, SNAPTREE_DELETE_CHILDREN);
        g_autoptr(GError) err = NULL;

        g_assert(plan->len == desc->len + 1 || plan->len == desc->len);
        (void) snaptree_check_cycles(tree, node->def, &err);
    }
    /* Delete the first snapshot (plain): its children move up. */
    if (topo->len) {
        g_autoptr(GPtrArray) moved = snaptree_remove(tree, g_ptr_array_index(topo, 0));
        g_autofree char *after = snaptree_render_tree(tree, NULL, TRUE);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *) data;
    gsize off = 0;
    g_autoptr(SnapTree) tree = snaptree_new();
    guint ndocs = 0;

    while (off < size && ndocs < 64) {
        gssize end;
        g_autoptr(GError) err = NULL;
        SnapshotDef *def;

        while (off < size && g_ascii_isspace(buf[off]))
            off++;
        if (off == size)
            break;
        end = xmlutil_document_end(buf + off, size - off);
        if (end < 0)
            break;
        g_assert(end > 0 && (gsize) end <= size - off);
        if (ndocs == 0)
            fuzz_ctl_check_prefixes(buf + off, size - off, end);
        ndocs++;
        def = snapshot_parse(buf + off, end,
                             SNAPSHOT_PARSE_REDEFINE | SNAPSHOT_PARSE_DISKS |
                             (g_strstr_len(buf + off, end, "<active>") ? SNAPSHOT_PARSE_INTERNAL : 0),
                             &err);
        if (def) {
            g_autoptr(GError) err2 = NULL;

            if (!snaptree_add(tree, def, &err2))
                g_assert(err2);
            else if (def->active == 1)
                tree->current = snaptree_lookup(tree, def->name);
        }
        off += end;
    }
    fuzz_ctl_tree(tree);
    return 0;
}
