/* snaptree.c: the snapshot hierarchy of one domain: links, libvirt's delete rules, virsh's tree. */
#include "snaptree.h"

#include <string.h>

#include "error.h"
#include "util.h"

/* Every walk here is iterative and every list is built in O(n log n) at most:
 * a store may hold 100,000 snapshots in one chain, which no recursion survives. */

static void
snaptree_node_free(SnapNode *node)
{
    if (!node)
        return;
    snapshot_def_free(node->def);
    if (node->children)
        g_ptr_array_unref(node->children);
    g_free(node);
}

SnapTree *
snaptree_new(void)
{
    SnapTree *tree = g_new0(SnapTree, 1);

    /* Keys point into node->def->name, freed with the node. */
    tree->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify)snaptree_node_free);
    tree->roots = g_ptr_array_new();
    return tree;
}

void
snaptree_free(SnapTree *tree)
{
    if (!tree)
        return;
    if (tree->by_name)
        g_hash_table_destroy(tree->by_name);
    if (tree->roots)
        g_ptr_array_unref(tree->roots);
    g_free(tree);
}

guint
snaptree_count(const SnapTree *tree)
{
    return g_hash_table_size(tree->by_name);
}

SnapNode *
snaptree_lookup(const SnapTree *tree, const char *name)
{
    if (!name)
        return NULL;
    return g_hash_table_lookup(tree->by_name, name);
}

int
snaptree_name_cmp(const char *a, const char *b)
{
    int r = g_ascii_strcasecmp(a, b);

    return r ? r : strcmp(a, b);
}

static int
snaptree_node_cmp(gconstpointer a, gconstpointer b)
{
    const SnapNode *na = *(SnapNode *const *)a;
    const SnapNode *nb = *(SnapNode *const *)b;

    return snaptree_name_cmp(na->def->name, nb->def->name);
}

/* The list @node sits in: its parent's children, or the roots. */
static GPtrArray *
snaptree_siblings(SnapTree *tree, SnapNode *node)
{
    return node->parent ? node->parent->children : tree->roots;
}

/* O(1): the last sibling takes @node's slot. */
static void
snaptree_unlink(SnapTree *tree, SnapNode *node)
{
    GPtrArray *list = snaptree_siblings(tree, node);
    guint i = node->child_index;
    SnapNode *last;

    g_assert(i < list->len && g_ptr_array_index(list, i) == node);
    last = g_ptr_array_index(list, list->len - 1);
    list->pdata[i] = last;
    last->child_index = i;
    g_ptr_array_set_size(list, list->len - 1);
    node->parent = NULL;
}

static void
snaptree_link(SnapTree *tree, SnapNode *node, SnapNode *parent)
{
    GPtrArray *list = parent ? parent->children : tree->roots;

    node->parent = parent;
    node->child_index = list->len;
    g_ptr_array_add(list, node);
}

SnapNode *
snaptree_add(SnapTree *tree, SnapshotDef *def, GError **error)
{
    g_autoptr(SnapshotDef) owned = def;
    SnapNode *node;

    g_assert(def && def->name);
    if (g_hash_table_contains(tree->by_name, def->name)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS, "domain moment %s already exists",
                    def->name);
        return NULL;
    }
    node = g_new0(SnapNode, 1);
    node->def = g_steal_pointer(&owned);
    node->children = g_ptr_array_new();
    g_hash_table_insert(tree->by_name, node->def->name, node);
    snaptree_link(tree, node, NULL);
    return node;
}

void
snaptree_replace_def(SnapTree *tree, SnapNode *node, SnapshotDef *def)
{
    g_assert(def && def->name && strcmp(def->name, node->def->name) == 0);
    g_hash_table_steal(tree->by_name, node->def->name);
    snapshot_def_free(node->def);
    node->def = def;
    g_hash_table_insert(tree->by_name, node->def->name, node);
}

/* Nodes sorted by strcmp of their names: the fixed order in which
 * snaptree_update_relations() plays libvirt's hash walk. */
static int
snaptree_node_strcmp(gconstpointer a, gconstpointer b)
{
    const SnapNode *na = *(SnapNode *const *)a;
    const SnapNode *nb = *(SnapNode *const *)b;

    return strcmp(na->def->name, nb->def->name);
}

static GPtrArray *
snaptree_all_nodes(const SnapTree *tree)
{
    GPtrArray *all = g_ptr_array_sized_new(snaptree_count(tree));
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, tree->by_name);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        g_ptr_array_add(all, value);
    return all;
}

gboolean
snaptree_update_relations(SnapTree *tree)
{
    g_autoptr(GPtrArray) all = snaptree_all_nodes(tree);
    g_autofree SnapNode **want = NULL;
    g_autofree guint8 *color = NULL;
    g_autoptr(GHashTable) index = g_hash_table_new(NULL, NULL);
    gboolean ok = TRUE;
    guint n = all->len;
    guint i;

    /* libvirt (virDomainMomentSetRelations) links each object in hash order and
     * makes it a root when its parent is missing or when walking up from the
     * parent reaches the object itself. Played in a fixed order (strcmp of the
     * names) that walk makes exactly the last member of each cycle a root, which
     * we compute in O(n) instead of walking up once per object. */
    g_ptr_array_sort(all, snaptree_node_strcmp);
    want = g_new0(SnapNode *, n ? n : 1);
    color = g_new0(guint8, n ? n : 1);
    for (i = 0; i < n; i++) {
        SnapNode *node = g_ptr_array_index(all, i);

        g_hash_table_insert(index, node, GUINT_TO_POINTER(i));
        if (node->def->parent) {
            want[i] = snaptree_lookup(tree, node->def->parent);
            if (!want[i]) {
                g_debug("snapshot %s lacks parent", node->def->name);
                ok = FALSE;
            }
        }
    }

    /* Cycle detection on the functional graph i -> want[i]:
     * 0 = unvisited, 1 = on the current path, 2 = done. */
    for (i = 0; i < n; i++) {
        g_autoptr(GArray) path = NULL;
        guint cur = i;

        if (color[i])
            continue;
        path = g_array_new(FALSE, FALSE, sizeof(guint));
        while (color[cur] == 0) {
            color[cur] = 1;
            g_array_append_val(path, cur);
            if (!want[cur])
                break;
            cur = GPOINTER_TO_UINT(g_hash_table_lookup(index, want[cur]));
        }
        if (color[cur] == 1 && want[cur]) {
            /* @cur starts a cycle that runs to the end of @path: the member
             * linked last (greatest name) becomes a root. */
            guint start = 0;
            guint last = cur;
            guint k;

            while (g_array_index(path, guint, start) != cur)
                start++;
            for (k = start; k < path->len; k++)
                last = MAX(last, g_array_index(path, guint, k));
            g_debug("snapshot %s in circular chain",
                    ((SnapNode *)g_ptr_array_index(all, last))->def->name);
            want[last] = NULL;
            ok = FALSE;
        }
        for (guint k = 0; k < path->len; k++)
            color[g_array_index(path, guint, k)] = 2;
    }

    g_ptr_array_set_size(tree->roots, 0);
    for (i = 0; i < n; i++)
        g_ptr_array_set_size(((SnapNode *)g_ptr_array_index(all, i))->children, 0);
    for (i = 0; i < n; i++)
        snaptree_link(tree, g_ptr_array_index(all, i), want[i]);
    return ok;
}

gboolean
snaptree_check_cycles(const SnapTree *tree, const SnapshotDef *def, GError **error)
{
    SnapNode *other;
    guint steps = 0;

    if (!def->parent)
        return TRUE;
    if (strcmp(def->name, def->parent) == 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "cannot set moment %s as its own parent", def->name);
        return FALSE;
    }
    if (!(other = snaptree_lookup(tree, def->parent))) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "parent %s for moment %s not found", def->parent, def->name);
        return FALSE;
    }
    /* Up by parent names as libvirt does; bounded, since a stored cycle broken
     * by snaptree_update_relations() still names its old parent. */
    while (other->def->parent && steps++ <= snaptree_count(tree)) {
        if (strcmp(other->def->parent, def->name) == 0) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "parent %s would create cycle to %s", other->def->name, def->name);
            return FALSE;
        }
        if (!(other = snaptree_lookup(tree, other->def->parent)))
            break;
    }
    return TRUE;
}

void
snaptree_set_parent(SnapTree *tree, SnapNode *node, SnapNode *parent)
{
    g_assert(node != parent);
    snaptree_unlink(tree, node);
    snaptree_link(tree, node, parent);
    if (g_strcmp0(node->def->parent, parent ? parent->def->name : NULL) != 0) {
        g_free(node->def->parent);
        node->def->parent = parent ? g_strdup(parent->def->name) : NULL;
    }
}

GPtrArray *
snaptree_remove(SnapTree *tree, SnapNode *node)
{
    GPtrArray *moved = g_ptr_array_new();
    SnapNode *parent = node->parent;

    /* qemuSnapshotChildrenReparent: each child gets S's parent. */
    while (node->children->len > 0) {
        SnapNode *child = g_ptr_array_index(node->children, node->children->len - 1);

        snaptree_set_parent(tree, child, parent);
        g_ptr_array_add(moved, child);
    }
    /* qemuSnapshotDiscard: current passes to the parent (none for a root). */
    if (tree->current == node)
        tree->current = parent;
    snaptree_unlink(tree, node);
    g_hash_table_remove(tree->by_name, node->def->name);
    return moved;
}

static GPtrArray *
snaptree_sorted_copy(GPtrArray *list)
{
    GPtrArray *copy = g_ptr_array_copy(list, NULL, NULL);

    g_ptr_array_sort(copy, snaptree_node_cmp);
    return copy;
}

GPtrArray *
snaptree_roots(const SnapTree *tree)
{
    return snaptree_sorted_copy(tree->roots);
}

/* Pre-order walk of the subtrees under @starts (each list sorted by name),
 * appending to @out; @starts themselves included. */
static void
snaptree_preorder(GPtrArray *starts, GPtrArray *out)
{
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    g_autoptr(GPtrArray) sorted = snaptree_sorted_copy(starts);
    guint i;

    for (i = sorted->len; i > 0; i--)
        g_ptr_array_add(stack, g_ptr_array_index(sorted, i - 1));
    while (stack->len > 0) {
        SnapNode *node = g_ptr_array_steal_index_fast(stack, stack->len - 1);
        g_autoptr(GPtrArray) kids = NULL;

        g_ptr_array_add(out, node);
        if (node->children->len == 0)
            continue;
        kids = snaptree_sorted_copy(node->children);
        for (i = kids->len; i > 0; i--)
            g_ptr_array_add(stack, g_ptr_array_index(kids, i - 1));
    }
}

GPtrArray *
snaptree_topological(const SnapTree *tree)
{
    GPtrArray *out = g_ptr_array_sized_new(snaptree_count(tree));

    snaptree_preorder(tree->roots, out);
    return out;
}

GPtrArray *
snaptree_descendants(const SnapTree *tree, SnapNode *node)
{
    GPtrArray *out = g_ptr_array_new();

    snaptree_preorder(node->children, out);
    return out;
}

gboolean
snaptree_is_leaf(const SnapNode *node)
{
    return node->children->len == 0;
}

GPtrArray *
snaptree_delete_plan(const SnapTree *tree, SnapNode *node, guint mode)
{
    g_autoptr(GPtrArray) desc = NULL;
    GPtrArray *plan = g_ptr_array_new();
    guint i;

    if (mode & (SNAPTREE_DELETE_CHILDREN | SNAPTREE_DELETE_CHILDREN_ONLY)) {
        /* Reversed pre-order: every node comes after all of its descendants. */
        desc = snaptree_descendants(tree, node);
        for (i = desc->len; i > 0; i--)
            g_ptr_array_add(plan, g_ptr_array_index(desc, i - 1));
    }
    if (!(mode & SNAPTREE_DELETE_CHILDREN_ONLY))
        g_ptr_array_add(plan, node);
    return plan;
}

typedef struct {
    SnapNode *node;
    GPtrArray *kids;   /* sorted; NULL when not descending */
    guint next;
    gboolean root;
    gboolean last;
} SnapTreeFrame;

/* vshTreePrintInternal() without recursion: one frame per open node. */
static void
snaptree_render_one(GString *out, GString *indent, SnapNode *top, SnapNode *from,
                gboolean descendants)
{
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(SnapTreeFrame));
    SnapTreeFrame frame = { top, NULL, 0, TRUE, TRUE };
    gboolean enter = TRUE;

    g_array_append_val(stack, frame);
    while (stack->len > 0) {
        SnapTreeFrame *f = &g_array_index(stack, SnapTreeFrame, stack->len - 1);

        if (enter) {
            /* Print this node, then mark its column for its children. */
            g_string_append_len(out, indent->str, indent->len);
            if (!f->root)
                g_string_append(out, "+- ");
            g_string_append(out, f->node->def->name);
            g_string_append_c(out, '\n');
            if (!f->root)
                g_string_append(indent, f->last ? "  " : "| ");
            /* With --from and no --descendants only the direct children show. */
            if (f->node->children->len > 0 && (descendants || f->node == from))
                f->kids = snaptree_sorted_copy(f->node->children);
            if (f->kids) {
                g_string_append_len(out, indent->str, indent->len);
                g_string_append(out, "  |\n");
            }
            g_string_append(indent, "  ");
            enter = FALSE;
        }
        if (f->kids && f->next < f->kids->len) {
            SnapTreeFrame child = { g_ptr_array_index(f->kids, f->next), NULL, 0, FALSE,
                                f->next + 1 == f->kids->len };

            f->next++;
            g_array_append_val(stack, child);
            enter = TRUE;
            continue;
        }
        /* Leave: a childless last sibling is followed by its indent alone. */
        g_string_truncate(indent, indent->len - 2);
        if (!f->kids && f->last) {
            g_string_append_len(out, indent->str, indent->len);
            g_string_append_c(out, '\n');
        }
        if (!f->root)
            g_string_truncate(indent, indent->len - 2);
        if (f->kids)
            g_ptr_array_unref(f->kids);
        g_array_set_size(stack, stack->len - 1);
    }
}

char *
snaptree_render_tree(const SnapTree *tree, SnapNode *from, gboolean descendants)
{
    g_autoptr(GString) indent = g_string_new(NULL);
    GString *out = g_string_new(NULL);

    if (from) {
        snaptree_render_one(out, indent, from, from, descendants);
    } else {
        g_autoptr(GPtrArray) roots = snaptree_roots(tree);

        for (guint i = 0; i < roots->len; i++)
            snaptree_render_one(out, indent, g_ptr_array_index(roots, i), NULL, TRUE);
    }
    return g_string_free(out, FALSE);
}

char *
snaptree_render_tsv(const SnapTree *tree)
{
    g_autoptr(GPtrArray) order = snaptree_topological(tree);
    GString *out = g_string_new(NULL);

    for (guint i = 0; i < order->len; i++) {
        SnapNode *node = g_ptr_array_index(order, i);
        const char *state = snapshot_state_to_string(node->def->state);

        util_tsv_escape(out, node->def->name);
        g_string_append_c(out, '\t');
        if (node->parent)
            util_tsv_escape(out, node->parent->def->name);
        g_string_append_printf(out, "\t%s\t%" G_GINT64_FORMAT "\t%s\t%u\n", state ? state : "",
                               node->def->creation_time, tree->current == node ? "yes" : "no",
                               i);
    }
    return g_string_free(out, FALSE);
}
