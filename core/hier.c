/* hier.c: the snapshot hierarchy of one domain: links, libvirt's delete rules, virsh's tree. */
#include "hier.h"

#include <string.h>

#include "error.h"
#include "util.h"

/* Every walk here is iterative and every list is built in O(n log n) at most:
 * a store may hold 100,000 snapshots in one chain, which no recursion survives. */

static void
hier_node_free(SnapNode *node)
{
    if (!node)
        return;
    snapshot_def_free(node->def);
    if (node->children)
        g_ptr_array_unref(node->children);
    g_free(node);
}

SnapTree *
hier_new(void)
{
    SnapTree *tree = g_new0(SnapTree, 1);

    /* Keys point into node->def->name, freed with the node. */
    tree->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify)hier_node_free);
    tree->roots = g_ptr_array_new();
    return tree;
}

void
hier_free(SnapTree *tree)
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
hier_count(const SnapTree *tree)
{
    return g_hash_table_size(tree->by_name);
}

SnapNode *
hier_lookup(const SnapTree *tree, const char *name)
{
    if (!name)
        return NULL;
    return g_hash_table_lookup(tree->by_name, name);
}

int
hier_name_cmp(const char *a, const char *b)
{
    int r = g_ascii_strcasecmp(a, b);

    return r ? r : strcmp(a, b);
}

static int
hier_node_cmp(gconstpointer a, gconstpointer b)
{
    const SnapNode *na = *(SnapNode *const *)a;
    const SnapNode *nb = *(SnapNode *const *)b;

    return hier_name_cmp(na->def->name, nb->def->name);
}

/* The list @node sits in: its parent's children, or the roots. */
static GPtrArray *
hier_siblings(SnapTree *tree, SnapNode *node)
{
    return node->parent ? node->parent->children : tree->roots;
}

/* O(1): the last sibling takes @node's slot. */
static void
hier_unlink(SnapTree *tree, SnapNode *node)
{
    GPtrArray *list = hier_siblings(tree, node);
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
hier_link(SnapTree *tree, SnapNode *node, SnapNode *parent)
{
    GPtrArray *list = parent ? parent->children : tree->roots;

    node->parent = parent;
    node->child_index = list->len;
    g_ptr_array_add(list, node);
}

SnapNode *
hier_add(SnapTree *tree, SnapshotDef *def, GError **error)
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
    hier_link(tree, node, NULL);
    return node;
}

void
hier_replace_def(SnapTree *tree, SnapNode *node, SnapshotDef *def)
{
    g_assert(def && def->name && strcmp(def->name, node->def->name) == 0);
    g_hash_table_steal(tree->by_name, node->def->name);
    snapshot_def_free(node->def);
    node->def = def;
    g_hash_table_insert(tree->by_name, node->def->name, node);
}

/* Nodes sorted by strcmp of their names: the fixed order in which
 * hier_update_relations() plays libvirt's hash walk. */
static int
hier_node_strcmp(gconstpointer a, gconstpointer b)
{
    const SnapNode *na = *(SnapNode *const *)a;
    const SnapNode *nb = *(SnapNode *const *)b;

    return strcmp(na->def->name, nb->def->name);
}

static GPtrArray *
hier_all_nodes(const SnapTree *tree)
{
    GPtrArray *all = g_ptr_array_sized_new(hier_count(tree));
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, tree->by_name);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        g_ptr_array_add(all, value);
    return all;
}

gboolean
hier_update_relations(SnapTree *tree)
{
    g_autoptr(GPtrArray) all = hier_all_nodes(tree);
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
    g_ptr_array_sort(all, hier_node_strcmp);
    want = g_new0(SnapNode *, n ? n : 1);
    color = g_new0(guint8, n ? n : 1);
    for (i = 0; i < n; i++) {
        SnapNode *node = g_ptr_array_index(all, i);

        g_hash_table_insert(index, node, GUINT_TO_POINTER(i));
        if (node->def->parent) {
            want[i] = hier_lookup(tree, node->def->parent);
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
        hier_link(tree, g_ptr_array_index(all, i), want[i]);
    return ok;
}

gboolean
hier_check_cycles(const SnapTree *tree, const SnapshotDef *def, GError **error)
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
    if (!(other = hier_lookup(tree, def->parent))) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "parent %s for moment %s not found", def->parent, def->name);
        return FALSE;
    }
    /* Up by parent names as libvirt does; bounded, since a stored cycle broken
     * by hier_update_relations() still names its old parent. */
    while (other->def->parent && steps++ <= hier_count(tree)) {
        if (strcmp(other->def->parent, def->name) == 0) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "parent %s would create cycle to %s", other->def->name, def->name);
            return FALSE;
        }
        if (!(other = hier_lookup(tree, other->def->parent)))
            break;
    }
    return TRUE;
}

void
hier_set_parent(SnapTree *tree, SnapNode *node, SnapNode *parent)
{
    g_assert(node != parent);
    hier_unlink(tree, node);
    hier_link(tree, node, parent);
    if (g_strcmp0(node->def->parent, parent ? parent->def->name : NULL) != 0) {
        g_free(node->def->parent);
        node->def->parent = parent ? g_strdup(parent->def->name) : NULL;
    }
}

GPtrArray *
hier_remove(SnapTree *tree, SnapNode *node)
{
    GPtrArray *moved = g_ptr_array_new();
    SnapNode *parent = node->parent;

    /* qemuSnapshotChildrenReparent: each child gets S's parent. */
    while (node->children->len > 0) {
        SnapNode *child = g_ptr_array_index(node->children, node->children->len - 1);

        hier_set_parent(tree, child, parent);
        g_ptr_array_add(moved, child);
    }
    /* qemuSnapshotDiscard: current passes to the parent (none for a root). */
    if (tree->current == node)
        tree->current = parent;
    hier_unlink(tree, node);
    g_hash_table_remove(tree->by_name, node->def->name);
    return moved;
}

static GPtrArray *
hier_sorted_copy(GPtrArray *list)
{
    GPtrArray *copy = g_ptr_array_copy(list, NULL, NULL);

    g_ptr_array_sort(copy, hier_node_cmp);
    return copy;
}

GPtrArray *
hier_roots(const SnapTree *tree)
{
    return hier_sorted_copy(tree->roots);
}

/* Pre-order walk of the subtrees under @starts (each list sorted by name),
 * appending to @out; @starts themselves included. */
static void
hier_preorder(GPtrArray *starts, GPtrArray *out)
{
    g_autoptr(GPtrArray) stack = g_ptr_array_new();
    g_autoptr(GPtrArray) sorted = hier_sorted_copy(starts);
    guint i;

    for (i = sorted->len; i > 0; i--)
        g_ptr_array_add(stack, g_ptr_array_index(sorted, i - 1));
    while (stack->len > 0) {
        SnapNode *node = g_ptr_array_steal_index_fast(stack, stack->len - 1);
        g_autoptr(GPtrArray) kids = NULL;

        g_ptr_array_add(out, node);
        if (node->children->len == 0)
            continue;
        kids = hier_sorted_copy(node->children);
        for (i = kids->len; i > 0; i--)
            g_ptr_array_add(stack, g_ptr_array_index(kids, i - 1));
    }
}

GPtrArray *
hier_topological(const SnapTree *tree)
{
    GPtrArray *out = g_ptr_array_sized_new(hier_count(tree));

    hier_preorder(tree->roots, out);
    return out;
}

GPtrArray *
hier_descendants(const SnapTree *tree, SnapNode *node)
{
    GPtrArray *out = g_ptr_array_new();

    hier_preorder(node->children, out);
    return out;
}

gboolean
hier_is_leaf(const SnapNode *node)
{
    return node->children->len == 0;
}

GPtrArray *
hier_delete_plan(const SnapTree *tree, SnapNode *node, guint mode)
{
    g_autoptr(GPtrArray) desc = NULL;
    GPtrArray *plan = g_ptr_array_new();
    guint i;

    if (mode & (HIER_DELETE_CHILDREN | HIER_DELETE_CHILDREN_ONLY)) {
        /* Reversed pre-order: every node comes after all of its descendants. */
        desc = hier_descendants(tree, node);
        for (i = desc->len; i > 0; i--)
            g_ptr_array_add(plan, g_ptr_array_index(desc, i - 1));
    }
    if (!(mode & HIER_DELETE_CHILDREN_ONLY))
        g_ptr_array_add(plan, node);
    return plan;
}

typedef struct {
    SnapNode *node;
    GPtrArray *kids;   /* sorted; NULL when not descending */
    guint next;
    gboolean root;
    gboolean last;
} HierFrame;

/* vshTreePrintInternal() without recursion: one frame per open node. */
static void
hier_render_one(GString *out, GString *indent, SnapNode *top, SnapNode *from,
                gboolean descendants)
{
    g_autoptr(GArray) stack = g_array_new(FALSE, FALSE, sizeof(HierFrame));
    HierFrame frame = { top, NULL, 0, TRUE, TRUE };
    gboolean enter = TRUE;

    g_array_append_val(stack, frame);
    while (stack->len > 0) {
        HierFrame *f = &g_array_index(stack, HierFrame, stack->len - 1);

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
                f->kids = hier_sorted_copy(f->node->children);
            if (f->kids) {
                g_string_append_len(out, indent->str, indent->len);
                g_string_append(out, "  |\n");
            }
            g_string_append(indent, "  ");
            enter = FALSE;
        }
        if (f->kids && f->next < f->kids->len) {
            HierFrame child = { g_ptr_array_index(f->kids, f->next), NULL, 0, FALSE,
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
hier_render_tree(const SnapTree *tree, SnapNode *from, gboolean descendants)
{
    g_autoptr(GString) indent = g_string_new(NULL);
    GString *out = g_string_new(NULL);

    if (from) {
        hier_render_one(out, indent, from, from, descendants);
    } else {
        g_autoptr(GPtrArray) roots = hier_roots(tree);

        for (guint i = 0; i < roots->len; i++)
            hier_render_one(out, indent, g_ptr_array_index(roots, i), NULL, TRUE);
    }
    return g_string_free(out, FALSE);
}

char *
hier_render_tsv(const SnapTree *tree)
{
    g_autoptr(GPtrArray) order = hier_topological(tree);
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
