/* test-snaptree.c: snapshot hierarchy: virsh tree goldens, relations, cycles, delete rules, scale. */
#include <string.h>

#include "error.h"
#include "snaptree.h"

static SnapNode *
add_snap(SnapTree *tree, const char *name, const char *parent)
{
    g_autoptr(GError) error = NULL;
    SnapshotDef *def = snapshot_def_new();
    SnapNode *node;

    def->name = g_strdup(name);
    def->parent = g_strdup(parent);
    def->state = SNAP_STATE_SHUTOFF;
    def->creation_time = 1700000000;
    node = snaptree_add(tree, def, &error);
    g_assert_no_error(error);
    g_assert_nonnull(node);
    return node;
}

/* "a:-,b:a,c:b": name:parent pairs, "-" for a root; relations rebuilt. */
static SnapTree *
build_tree(const char *spec)
{
    SnapTree *tree = snaptree_new();
    g_auto(GStrv) items = g_strsplit(spec, ",", -1);

    for (guint i = 0; items[i]; i++) {
        g_auto(GStrv) kv = g_strsplit(items[i], ":", 2);

        add_snap(tree, kv[0], strcmp(kv[1], "-") == 0 ? NULL : kv[1]);
    }
    g_assert_true(snaptree_update_relations(tree));
    return tree;
}

static const char *
parent_name(SnapTree *tree, const char *name)
{
    SnapNode *node = snaptree_lookup(tree, name);

    g_assert_nonnull(node);
    return node->parent ? node->parent->def->name : NULL;
}

/* Names of @list joined by spaces. */
static char *
names_of(GPtrArray *list)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < list->len; i++) {
        if (i)
            g_string_append_c(s, ' ');
        g_string_append(s, ((SnapNode *)g_ptr_array_index(list, i))->def->name);
    }
    return g_string_free(s, FALSE);
}

/* tests/data/store/tree-NAME.{parents,args,txt} were captured from real virsh by
 * tests/data/store/gen-trees.sh. */
static void
test_tree_golden(gconstpointer data)
{
    const char *name = data;
    g_autofree char *base = g_strdup_printf("tree-%s", name);
    g_autofree char *ppath = NULL;
    g_autofree char *apath = NULL;
    g_autofree char *tpath = NULL;
    g_autofree char *parents = NULL;
    g_autofree char *args = NULL;
    g_autofree char *expect = NULL;
    g_autofree char *got = NULL;
    g_auto(GStrv) lines = NULL;
    g_auto(GStrv) argv = NULL;
    g_autoptr(SnapTree) tree = snaptree_new();
    SnapNode *from = NULL;
    gboolean descendants = FALSE;

    ppath = g_strdup_printf("%s.parents", base);
    apath = g_test_build_filename(G_TEST_DIST, "data", "store", ppath, NULL);
    g_assert_true(g_file_get_contents(apath, &parents, NULL, NULL));
    g_free(apath);
    apath = g_strdup_printf("%s.args", base);
    tpath = g_test_build_filename(G_TEST_DIST, "data", "store", apath, NULL);
    g_assert_true(g_file_get_contents(tpath, &args, NULL, NULL));
    g_free(tpath);
    g_free(apath);
    apath = g_strdup_printf("%s.txt", base);
    tpath = g_test_build_filename(G_TEST_DIST, "data", "store", apath, NULL);
    g_assert_true(g_file_get_contents(tpath, &expect, NULL, NULL));

    lines = g_strsplit(parents, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        g_auto(GStrv) kv = NULL;

        if (!*lines[i])
            continue;
        kv = g_strsplit(lines[i], " ", 2);
        add_snap(tree, kv[0], strcmp(kv[1], "-") == 0 ? NULL : kv[1]);
    }
    g_assert_true(snaptree_update_relations(tree));

    argv = g_strsplit(g_strstrip(args), " ", -1);
    for (guint i = 0; argv[i]; i++) {
        if (strcmp(argv[i], "--from") == 0) {
            from = snaptree_lookup(tree, argv[++i]);
            g_assert_nonnull(from);
        } else if (strcmp(argv[i], "--descendants") == 0) {
            descendants = TRUE;
        } else {
            g_assert_cmpstr(argv[i], ==, "");
        }
    }
    got = snaptree_render_tree(tree, from, from ? descendants : TRUE);
    g_assert_cmpstr(got, ==, expect);
}

static void
test_tree_empty(void)
{
    g_autoptr(SnapTree) tree = snaptree_new();
    g_autofree char *got = snaptree_render_tree(tree, NULL, TRUE);
    g_autofree char *tsv = snaptree_render_tsv(tree);

    g_assert_cmpstr(got, ==, "");
    g_assert_cmpstr(tsv, ==, "");
}

static void
test_add_duplicate(void)
{
    g_autoptr(SnapTree) tree = snaptree_new();
    g_autoptr(GError) error = NULL;
    SnapshotDef *def = snapshot_def_new();

    add_snap(tree, "s1", NULL);
    def->name = g_strdup("s1");
    g_assert_null(snaptree_add(tree, def, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_EXISTS);
    g_assert_cmpstr(error->message, ==, "domain moment s1 already exists");
    g_assert_cmpuint(snaptree_count(tree), ==, 1);
}

static void
test_relations_missing_parent(void)
{
    g_autoptr(SnapTree) tree = snaptree_new();
    g_autoptr(GPtrArray) roots = NULL;
    g_autofree char *names = NULL;

    add_snap(tree, "a", NULL);
    add_snap(tree, "b", "a");
    add_snap(tree, "c", "gone");
    add_snap(tree, "d", "c");
    g_assert_false(snaptree_update_relations(tree));
    g_assert_null(parent_name(tree, "c"));
    /* The name stays in the definition, as libvirt keeps parent_name. */
    g_assert_cmpstr(snaptree_lookup(tree, "c")->def->parent, ==, "gone");
    g_assert_cmpstr(parent_name(tree, "d"), ==, "c");
    g_assert_cmpstr(parent_name(tree, "b"), ==, "a");
    roots = snaptree_roots(tree);
    names = names_of(roots);
    g_assert_cmpstr(names, ==, "a c");
}

static void
test_relations_cycle(void)
{
    g_autoptr(SnapTree) tree = snaptree_new();
    g_autoptr(GPtrArray) topo = NULL;
    g_autofree char *names = NULL;

    /* x -> y -> z -> x, a tail t -> x, and a self loop s -> s. */
    add_snap(tree, "x", "z");
    add_snap(tree, "y", "x");
    add_snap(tree, "z", "y");
    add_snap(tree, "t", "x");
    add_snap(tree, "s", "s");
    add_snap(tree, "r", NULL);
    g_assert_false(snaptree_update_relations(tree));
    /* The cycle member linked last (greatest name) became the root. */
    g_assert_null(parent_name(tree, "z"));
    g_assert_cmpstr(parent_name(tree, "y"), ==, "x");
    g_assert_cmpstr(parent_name(tree, "x"), ==, "z");
    g_assert_cmpstr(parent_name(tree, "t"), ==, "x");
    g_assert_null(parent_name(tree, "s"));
    topo = snaptree_topological(tree);
    names = names_of(topo);
    g_assert_cmpstr(names, ==, "r s z x t y");

    /* A consistent tree relinks fine and repeatedly. */
    {
        g_autoptr(SnapTree) ok = build_tree("a:-,b:a,c:b,d:a");

        g_assert_true(snaptree_update_relations(ok));
        g_assert_cmpstr(parent_name(ok, "d"), ==, "a");
        g_assert_cmpuint(snaptree_lookup(ok, "a")->children->len, ==, 2);
    }
}

static void
test_check_cycles(void)
{
    g_autoptr(SnapTree) tree = build_tree("s1:-,s2:s1,s3:s2");
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    g_autoptr(GError) error = NULL;

    def->name = g_strdup("s1");
    def->parent = g_strdup("s1");
    g_assert_false(snaptree_check_cycles(tree, def, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "cannot set moment s1 as its own parent");
    g_clear_error(&error);

    g_free(def->parent);
    def->parent = g_strdup("s9");
    g_free(def->name);
    def->name = g_strdup("s2");
    g_assert_false(snaptree_check_cycles(tree, def, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==, "parent s9 for moment s2 not found");
    g_clear_error(&error);

    /* Redefining s1 under its grandchild s3. */
    g_free(def->parent);
    def->parent = g_strdup("s3");
    g_free(def->name);
    def->name = g_strdup("s1");
    g_assert_false(snaptree_check_cycles(tree, def, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "parent s2 would create cycle to s1");
    g_clear_error(&error);

    /* s2 under s3 (its child). */
    g_free(def->name);
    def->name = g_strdup("s2");
    g_assert_false(snaptree_check_cycles(tree, def, &error));
    g_assert_cmpstr(error->message, ==, "parent s3 would create cycle to s2");
    g_clear_error(&error);

    /* Fine: a new snapshot under s3, a root, s3 moved under s1. */
    g_free(def->name);
    def->name = g_strdup("s4");
    g_assert_true(snaptree_check_cycles(tree, def, &error));
    g_clear_pointer(&def->parent, g_free);
    g_assert_true(snaptree_check_cycles(tree, def, &error));
    g_free(def->name);
    def->name = g_strdup("s3");
    def->parent = g_strdup("s1");
    g_assert_true(snaptree_check_cycles(tree, def, &error));
    g_assert_no_error(error);
}

static void
test_set_parent(void)
{
    g_autoptr(SnapTree) tree = build_tree("a:-,b:a,c:b,d:c,e:a");
    g_autofree char *out = NULL;

    /* Redefining c under e moves c with its subtree (virDomainSnapshotReplaceDef). */
    snaptree_set_parent(tree, snaptree_lookup(tree, "c"), snaptree_lookup(tree, "e"));
    g_assert_cmpstr(parent_name(tree, "c"), ==, "e");
    g_assert_cmpstr(snaptree_lookup(tree, "c")->def->parent, ==, "e");
    g_assert_cmpstr(parent_name(tree, "d"), ==, "c");
    g_assert_true(snaptree_is_leaf(snaptree_lookup(tree, "b")));
    out = snaptree_render_tree(tree, NULL, TRUE);
    g_assert_cmpstr(out, ==,
                    "a\n  |\n  +- b\n  +- e\n      |\n      +- c\n          |\n"
                    "          +- d\n            \n");
    snaptree_set_parent(tree, snaptree_lookup(tree, "c"), NULL);
    g_assert_null(snaptree_lookup(tree, "c")->def->parent);
    g_clear_pointer(&out, g_free);
    out = snaptree_render_tree(tree, NULL, TRUE);
    g_assert_cmpstr(out, ==, "a\n  |\n  +- b\n  +- e\n    \nc\n  |\n  +- d\n    \n");
}

static void
test_remove_plain(void)
{
    g_autoptr(SnapTree) tree = build_tree("s1:-,s3:s1,s2:s3,s6:s3,s4:s6,s5:s6,s7:s1,s8:s7");
    g_autoptr(GPtrArray) moved = NULL;
    g_autoptr(GPtrArray) roots = NULL;
    g_autofree char *names = NULL;

    /* Delete s6 (current): s4, s5 move to s3 with their parent names rewritten. */
    tree->current = snaptree_lookup(tree, "s6");
    moved = snaptree_remove(tree, snaptree_lookup(tree, "s6"));
    g_assert_cmpuint(moved->len, ==, 2);
    g_assert_null(snaptree_lookup(tree, "s6"));
    g_assert_cmpstr(parent_name(tree, "s4"), ==, "s3");
    g_assert_cmpstr(snaptree_lookup(tree, "s4")->def->parent, ==, "s3");
    g_assert_cmpstr(snaptree_lookup(tree, "s5")->def->parent, ==, "s3");
    g_assert_true(tree->current == snaptree_lookup(tree, "s3"));
    g_clear_pointer(&moved, g_ptr_array_unref);

    /* Delete the current root s1: its children become roots, no current
     * (libvirt's virsh-snapshot: "snapshot-delete test --current"). */
    tree->current = snaptree_lookup(tree, "s1");
    moved = snaptree_remove(tree, snaptree_lookup(tree, "s1"));
    g_assert_cmpuint(moved->len, ==, 2);
    g_assert_null(tree->current);
    g_assert_null(snaptree_lookup(tree, "s3")->def->parent);
    g_assert_null(snaptree_lookup(tree, "s7")->def->parent);
    roots = snaptree_roots(tree);
    names = names_of(roots);
    g_assert_cmpstr(names, ==, "s3 s7");
    g_clear_pointer(&moved, g_ptr_array_unref);

    /* A leaf that is not current: nothing else changes. */
    tree->current = snaptree_lookup(tree, "s2");
    moved = snaptree_remove(tree, snaptree_lookup(tree, "s8"));
    g_assert_cmpuint(moved->len, ==, 0);
    g_assert_true(tree->current == snaptree_lookup(tree, "s2"));
    g_assert_cmpuint(snaptree_count(tree), ==, 5);
}

static void
apply_plan(SnapTree *tree, const char *name, guint mode, const char *expect_plan)
{
    g_autoptr(GPtrArray) plan = snaptree_delete_plan(tree, snaptree_lookup(tree, name), mode);
    g_autofree char *names = names_of(plan);

    if (expect_plan)
        g_assert_cmpstr(names, ==, expect_plan);
    for (guint i = 0; i < plan->len; i++) {
        g_autoptr(GPtrArray) moved = snaptree_remove(tree, g_ptr_array_index(plan, i));

        /* Leaves first: only the last step (a plain delete of S) moves children. */
        if (i + 1 < plan->len || (mode & (SNAPTREE_DELETE_CHILDREN | SNAPTREE_DELETE_CHILDREN_ONLY)))
            g_assert_cmpuint(moved->len, ==, 0);
    }
}

/* The second half of libvirt's tests/virsh-snapshot, on the tree it leaves after
 * deleting s1. */
static void
test_delete_modes(void)
{
    g_autoptr(SnapTree) tree = build_tree("s3:-,s2:s3,s6:s3,s4:s6,s5:s6,s7:-,s8:s7");
    g_autoptr(GPtrArray) topo = NULL;
    g_autofree char *names = NULL;

    /* snapshot-current s4; delete --children-only s6 -> current s6. */
    tree->current = snaptree_lookup(tree, "s4");
    apply_plan(tree, "s6", SNAPTREE_DELETE_CHILDREN_ONLY, "s5 s4");
    g_assert_true(tree->current == snaptree_lookup(tree, "s6"));
    /* delete --children s7 -> current stays s6. */
    apply_plan(tree, "s7", SNAPTREE_DELETE_CHILDREN, "s8 s7");
    g_assert_true(tree->current == snaptree_lookup(tree, "s6"));
    /* delete s6 -> current s3. */
    apply_plan(tree, "s6", SNAPTREE_DELETE_PLAIN, "s6");
    g_assert_true(tree->current == snaptree_lookup(tree, "s3"));
    topo = snaptree_topological(tree);
    names = names_of(topo);
    g_assert_cmpstr(names, ==, "s3 s2");

    /* --children with current inside the subtree: current ends at S's parent. */
    {
        g_autoptr(SnapTree) t2 = build_tree("a:-,b:a,c:b,d:c,e:b,f:a");

        t2->current = snaptree_lookup(t2, "d");
        apply_plan(t2, "b", SNAPTREE_DELETE_CHILDREN, "e d c b");
        g_assert_true(t2->current == snaptree_lookup(t2, "a"));
        g_assert_cmpuint(snaptree_count(t2), ==, 2);
    }
    /* --children-only of a root with current below it: current = the root. */
    {
        g_autoptr(SnapTree) t3 = build_tree("a:-,b:a,c:b");

        t3->current = snaptree_lookup(t3, "c");
        apply_plan(t3, "a", SNAPTREE_DELETE_CHILDREN_ONLY, "c b");
        g_assert_true(t3->current == snaptree_lookup(t3, "a"));
        g_assert_true(snaptree_is_leaf(snaptree_lookup(t3, "a")));
    }
    /* Plain delete of a current root with children: no current, children roots
     * (--metadata does the same bookkeeping). */
    {
        g_autoptr(SnapTree) t4 = build_tree("a:-,b:a,c:a");
        g_autoptr(GPtrArray) roots = NULL;
        g_autofree char *rn = NULL;

        t4->current = snaptree_lookup(t4, "a");
        apply_plan(t4, "a", SNAPTREE_DELETE_PLAIN, "a");
        g_assert_null(t4->current);
        roots = snaptree_roots(t4);
        rn = names_of(roots);
        g_assert_cmpstr(rn, ==, "b c");
    }
}

static void
test_topological_tsv(void)
{
    g_autoptr(SnapTree) tree = build_tree("b:-,A:-,c:A,D:A,e:c");
    g_autoptr(GPtrArray) topo = snaptree_topological(tree);
    g_autoptr(GPtrArray) desc = snaptree_descendants(tree, snaptree_lookup(tree, "A"));
    g_autofree char *names = names_of(topo);
    g_autofree char *dnames = names_of(desc);
    g_autofree char *tsv = NULL;

    g_assert_cmpstr(names, ==, "A c e D b");
    g_assert_cmpstr(dnames, ==, "c e D");
    snaptree_lookup(tree, "e")->def->state = SNAP_STATE_DISK_SNAPSHOT;
    snaptree_lookup(tree, "e")->def->creation_time = 1386166249;
    snaptree_lookup(tree, "b")->def->state = SNAP_STATE_RUNNING;
    tree->current = snaptree_lookup(tree, "e");
    tsv = snaptree_render_tsv(tree);
    g_assert_cmpstr(tsv, ==,
                    "A\t\tshutoff\t1700000000\tno\t0\n"
                    "c\tA\tshutoff\t1700000000\tno\t1\n"
                    "e\tc\tdisk-snapshot\t1386166249\tyes\t2\n"
                    "D\tA\tshutoff\t1700000000\tno\t3\n"
                    "b\t\trunning\t1700000000\tno\t4\n");
    g_assert_cmpint(snaptree_name_cmp("a", "B"), <, 0);
    g_assert_cmpint(snaptree_name_cmp("_x", "a"), <, 0);
    g_assert_cmpint(snaptree_name_cmp("A", "a"), <, 0);
    g_assert_cmpint(snaptree_name_cmp("a", "a"), ==, 0);
}

/* 100,000 snapshots: one chain of 50,000 and a fan of 50,000 leaves. */
static void
test_scale(void)
{
    g_autoptr(SnapTree) tree = snaptree_new();
    g_autoptr(GPtrArray) topo = NULL;
    g_autoptr(GPtrArray) desc = NULL;
    g_autoptr(GPtrArray) plan = NULL;
    g_autoptr(SnapshotDef) probe = snapshot_def_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *tsv = NULL;
    g_autofree char *fan = NULL;
    gint64 start = g_get_monotonic_time();
    const guint half = 50000;
    char name[32], parent[32];

    for (guint i = 0; i < half; i++) {
        g_snprintf(name, sizeof(name), "c%06u", i);
        g_snprintf(parent, sizeof(parent), "c%06u", i - 1);
        add_snap(tree, name, i ? parent : NULL);
    }
    add_snap(tree, "fan", NULL);
    for (guint i = 0; i < half - 1; i++) {
        g_snprintf(name, sizeof(name), "f%06u", (i * 7919) % half);
        add_snap(tree, name, "fan");
    }
    g_assert_true(snaptree_update_relations(tree));
    g_assert_cmpuint(snaptree_count(tree), ==, 2 * half);

    topo = snaptree_topological(tree);
    g_assert_cmpuint(topo->len, ==, 2 * half);
    g_assert_cmpstr(((SnapNode *)g_ptr_array_index(topo, half - 1))->def->name, ==, "c049999");
    desc = snaptree_descendants(tree, snaptree_lookup(tree, "c000000"));
    g_assert_cmpuint(desc->len, ==, half - 1);
    tsv = snaptree_render_tsv(tree);
    g_assert_true(g_str_has_suffix(tsv, "\tfan\tshutoff\t1700000000\tno\t99999\n"));

    /* A cycle check from the deepest node walks the whole chain once. */
    probe->name = g_strdup("c000000");
    probe->parent = g_strdup("c049999");
    g_assert_false(snaptree_check_cycles(tree, probe, &error));
    g_assert_cmpstr(error->message, ==, "parent c000001 would create cycle to c000000");

    /* Render the fan (the chain alone would print ~5 GB of indentation). */
    fan = snaptree_render_tree(tree, snaptree_lookup(tree, "fan"), FALSE);
    g_assert_true(g_str_has_prefix(fan, "fan\n  |\n  +- f000000\n  +- f000001\n"));
    g_assert_true(g_str_has_suffix(fan, "  +- f049999\n    \n"));

    /* Deleting the chain's root re-roots one child; deleting the fan's root makes
     * 49,999 roots; then delete the chain --children from its new root. */
    tree->current = snaptree_lookup(tree, "c049999");
    g_ptr_array_unref(snaptree_remove(tree, snaptree_lookup(tree, "fan")));
    g_ptr_array_unref(snaptree_remove(tree, snaptree_lookup(tree, "c000000")));
    g_assert_cmpuint(tree->roots->len, ==, half);
    plan = snaptree_delete_plan(tree, snaptree_lookup(tree, "c000001"), SNAPTREE_DELETE_CHILDREN);
    g_assert_cmpuint(plan->len, ==, half - 1);
    for (guint i = 0; i < plan->len; i++)
        g_ptr_array_unref(snaptree_remove(tree, g_ptr_array_index(plan, i)));
    g_assert_null(tree->current);
    g_assert_cmpuint(snaptree_count(tree), ==, half - 1);
    /* Remove the fan leaves one by one: O(1) each. */
    for (guint i = 0; i < half - 1; i++) {
        g_snprintf(name, sizeof(name), "f%06u", (i * 7919) % half);
        g_ptr_array_unref(snaptree_remove(tree, snaptree_lookup(tree, name)));
    }
    g_assert_cmpuint(snaptree_count(tree), ==, 0);
    g_assert_cmpuint(tree->roots->len, ==, 0);
    g_test_message("scale test took %" G_GINT64_FORMAT " ms",
                   (g_get_monotonic_time() - start) / 1000);
}

int
main(int argc, char **argv)
{
    static const char *const goldens[] = {
        "libvirt", "from-s3", "from-s3-desc", "from-leaf", "single", "chain", "roots",
        "deep-fan",
    };

    g_test_init(&argc, &argv, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(goldens); i++) {
        g_autofree char *path = g_strdup_printf("/snaptree/tree/virsh-%s", goldens[i]);

        g_test_add_data_func(path, goldens[i], test_tree_golden);
    }
    g_test_add_func("/snaptree/tree/empty", test_tree_empty);
    g_test_add_func("/snaptree/add/duplicate", test_add_duplicate);
    g_test_add_func("/snaptree/relations/missing-parent", test_relations_missing_parent);
    g_test_add_func("/snaptree/relations/cycle", test_relations_cycle);
    g_test_add_func("/snaptree/check-cycles", test_check_cycles);
    g_test_add_func("/snaptree/set-parent", test_set_parent);
    g_test_add_func("/snaptree/remove/plain", test_remove_plain);
    g_test_add_func("/snaptree/delete/modes", test_delete_modes);
    g_test_add_func("/snaptree/topological-tsv", test_topological_tsv);
    g_test_add_func("/snaptree/scale", test_scale);
    return g_test_run();
}
