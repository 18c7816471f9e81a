/* hier.h: the snapshot hierarchy of one domain: parents, children, current, tree layout. */
#pragma once

#include <glib.h>

#include "snapshot.h"

G_BEGIN_DECLS

typedef struct SnapNode SnapNode;
struct SnapNode {
    SnapshotDef *def;        /* owned */
    SnapNode *parent;        /* NULL for a root */
    GPtrArray *children;     /* SnapNode * (borrowed); order unspecified (removal
                              * swaps the last child in), sort for display */
    guint child_index;       /* position in parent->children (or in the root list) */
};

typedef struct {
    GHashTable *by_name;     /* name -> SnapNode * (owned) */
    SnapNode *current;       /* NULL: none */
    GPtrArray *roots;        /* SnapNode * (borrowed) with no parent; order unspecified */
} SnapTree;

SnapTree *hier_new(void);
void hier_free(SnapTree *tree);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapTree, hier_free)

guint hier_count(const SnapTree *tree);
SnapNode *hier_lookup(const SnapTree *tree, const char *name);

/* Adds @def (taking ownership) as a root, without looking at def->parent (link it
 * with hier_set_parent() or hier_update_relations()); CORE_ERROR_EXISTS "domain
 * moment %s already exists" when the name is taken (def then freed). */
SnapNode *hier_add(SnapTree *tree, SnapshotDef *def, GError **error);

/* Gives @node the definition @def (owned; the same name), freeing the old one; the
 * name index follows (its keys point into the definitions). Links are unchanged. */
void hier_replace_def(SnapTree *tree, SnapNode *node, SnapshotDef *def);

/* Rebuilds every parent/children link from the parent names
 * (virDomainMomentUpdateRelations). Returns FALSE when a parent is missing or a
 * cycle exists: such snapshots become roots (the caller clears current); their
 * def->parent keeps the name. Of a cycle, the member with the greatest name (strcmp)
 * becomes the root (libvirt's hash order picks one at random). O(n log n). */
gboolean hier_update_relations(SnapTree *tree);

/* virDomainMomentCheckCycles for a redefinition of @def: "cannot set moment %s as
 * its own parent", "parent %s for moment %s not found" (CORE_ERROR_NOT_FOUND),
 * "parent %s would create cycle to %s". */
gboolean hier_check_cycles(const SnapTree *tree, const SnapshotDef *def, GError **error);

/* Moves @node under @parent (NULL = root); its children stay attached. Also sets
 * node->def->parent to @parent's name. The caller checks cycles first. O(1). */
void hier_set_parent(SnapTree *tree, SnapNode *node, SnapNode *parent);

/* Removes and frees @node: its children move to its parent (their def->parent
 * updated); current moves to the parent when @node was current (none for a root).
 * Returns the nodes whose metadata changed (the moved children): the array is the
 * caller's to unref, the nodes are borrowed. O(1 + children). */
GPtrArray *hier_remove(SnapTree *tree, SnapNode *node);

/* Sorted lists: the arrays are the caller's, the nodes borrowed. topological =
 * pre-order with roots and siblings in name order (the order of the tree file). */
GPtrArray *hier_roots(const SnapTree *tree);                       /* name order, case-insensitive */
GPtrArray *hier_topological(const SnapTree *tree);                 /* parents first, then name order */
GPtrArray *hier_descendants(const SnapTree *tree, SnapNode *node); /* parents first */
gboolean hier_is_leaf(const SnapNode *node);

/* virsh snapshot-list --tree byte for byte (from NULL = whole tree; with @from, only
 * its direct children unless @descendants). Exactly what vshTreePrint() prints, i.e.
 * `virsh -q`; interactive virsh adds one "\n" after every command. Owned.
 * O(n log n + output); a deep chain's output grows with the square of its depth. */
char *hier_render_tree(const SnapTree *tree, SnapNode *from, gboolean descendants);

/* virsh's name order (vshStrcasecmp: ASCII case-insensitive); ties broken by
 * strcmp so the order is total. */
int hier_name_cmp(const char *a, const char *b);

/* snapshots.tsv: one line per snapshot in hier_topological() order:
 * name TAB parent ("" for a root) TAB state TAB creationTime TAB yes|no (current)
 * TAB topological index (0-based) NL; names escaped by util_tsv_escape(). Owned. */
char *hier_render_tsv(const SnapTree *tree);

typedef enum {
    HIER_DELETE_PLAIN = 0,          /* S alone; children move to S's parent */
    HIER_DELETE_CHILDREN = 1 << 0,  /* S and all its descendants */
    HIER_DELETE_CHILDREN_ONLY = 1 << 1, /* only the descendants of S */
} HierDeleteMode;

/* The nodes a delete of @node with @mode removes, in the order to pass them to
 * hier_remove(): descendants leaves first (so none of them has children when it
 * goes, and current climbs to S, or to S's parent for CHILDREN, as libvirt's
 * rules give), then S unless CHILDREN_ONLY. Borrowed nodes; free the array. */
GPtrArray *hier_delete_plan(const SnapTree *tree, SnapNode *node, guint mode);

G_END_DECLS
