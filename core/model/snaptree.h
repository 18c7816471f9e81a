/* snaptree.h: the snapshot hierarchy of one domain: parents, children, current, tree layout. */
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

SnapTree *snaptree_new(void);
void snaptree_free(SnapTree *tree);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapTree, snaptree_free)

guint snaptree_count(const SnapTree *tree);
SnapNode *snaptree_lookup(const SnapTree *tree, const char *name);

/* Adds @def (taking ownership) as a root, without looking at def->parent (link it
 * with snaptree_set_parent() or snaptree_update_relations()); CORE_ERROR_EXISTS "domain
 * moment %s already exists" when the name is taken (def then freed). */
SnapNode *snaptree_add(SnapTree *tree, SnapshotDef *def, GError **error);

/* Gives @node the definition @def (owned; the same name), freeing the old one; the
 * name index follows (its keys point into the definitions). Links are unchanged. */
void snaptree_replace_def(SnapTree *tree, SnapNode *node, SnapshotDef *def);

/* Rebuilds every parent/children link from the parent names
 * (virDomainMomentUpdateRelations). Returns FALSE when a parent is missing or a
 * cycle exists: such snapshots become roots (the caller clears current); their
 * def->parent keeps the name. Of a cycle, the member with the greatest name (strcmp)
 * becomes the root (libvirt's hash order picks one at random). O(n log n). */
gboolean snaptree_update_relations(SnapTree *tree);

/* virDomainMomentCheckCycles for a redefinition of @def: "cannot set moment %s as
 * its own parent", "parent %s for moment %s not found" (CORE_ERROR_NOT_FOUND),
 * "parent %s would create cycle to %s". */
gboolean snaptree_check_cycles(const SnapTree *tree, const SnapshotDef *def, GError **error);

/* Moves @node under @parent (NULL = root); its children stay attached. Also sets
 * node->def->parent to @parent's name. The caller checks cycles first. O(1). */
void snaptree_set_parent(SnapTree *tree, SnapNode *node, SnapNode *parent);

/* Removes and frees @node: its children move to its parent (their def->parent
 * updated); current moves to the parent when @node was current (none for a root).
 * Returns the nodes whose metadata changed (the moved children): the array is the
 * caller's to unref, the nodes are borrowed. O(1 + children). */
GPtrArray *snaptree_remove(SnapTree *tree, SnapNode *node);

/* Sorted lists: the arrays are the caller's, the nodes borrowed. topological =
 * pre-order with roots and siblings in name order (the order of the tree file). */
GPtrArray *snaptree_roots(const SnapTree *tree);                       /* name order, case-insensitive */
GPtrArray *snaptree_topological(const SnapTree *tree);                 /* parents first, then name order */
GPtrArray *snaptree_descendants(const SnapTree *tree, SnapNode *node); /* parents first */
gboolean snaptree_is_leaf(const SnapNode *node);

/* virsh snapshot-list --tree byte for byte (from NULL = whole tree; with @from, only
 * its direct children unless @descendants). Exactly what vshTreePrint() prints, i.e.
 * `virsh -q`; interactive virsh adds one "\n" after every command. Owned.
 * O(n log n + output); a deep chain's output grows with the square of its depth. */
char *snaptree_render_tree(const SnapTree *tree, SnapNode *from, gboolean descendants);

/* virsh's name order (vshStrcasecmp: ASCII case-insensitive); ties broken by
 * strcmp so the order is total. */
int snaptree_name_cmp(const char *a, const char *b);

/* snapshots.tsv: one line per snapshot in snaptree_topological() order:
 * name TAB parent ("" for a root) TAB state TAB creationTime TAB yes|no (current)
 * TAB topological index (0-based) NL; names escaped by util_tsv_escape(). Owned. */
char *snaptree_render_tsv(const SnapTree *tree);

typedef enum {
    SNAPTREE_DELETE_PLAIN = 0,          /* S alone; children move to S's parent */
    SNAPTREE_DELETE_CHILDREN = 1 << 0,  /* S and all its descendants */
    SNAPTREE_DELETE_CHILDREN_ONLY = 1 << 1, /* only the descendants of S */
} SnapTreeDeleteMode;

/* The nodes a delete of @node with @mode removes, in the order to pass them to
 * snaptree_remove(): descendants leaves first (so none of them has children when it
 * goes, and current climbs to S, or to S's parent for CHILDREN, as libvirt's
 * rules give), then S unless CHILDREN_ONLY. Borrowed nodes; free the array. */
GPtrArray *snaptree_delete_plan(const SnapTree *tree, SnapNode *node, guint mode);

G_END_DECLS
