/* hier.h: the snapshot hierarchy of one domain: parents, children, current, tree layout. */
#pragma once

#include <glib.h>

#include "snapshot.h"

G_BEGIN_DECLS

typedef struct SnapNode SnapNode;
struct SnapNode {
    SnapshotDef *def;        /* owned */
    SnapNode *parent;        /* NULL for a root */
    GPtrArray *children;     /* SnapNode * (borrowed), in insertion order */
};

typedef struct {
    GHashTable *by_name;     /* name -> SnapNode * (owned) */
    SnapNode *current;       /* NULL: none */
} SnapTree;

SnapTree *hier_new(void);
void hier_free(SnapTree *tree);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapTree, hier_free)

guint hier_count(const SnapTree *tree);
SnapNode *hier_lookup(const SnapTree *tree, const char *name);

/* Adds @def (taking ownership) without linking; CORE_ERROR_EXISTS "domain moment %s
 * already exists" when the name is taken (def then freed). */
SnapNode *hier_add(SnapTree *tree, SnapshotDef *def, GError **error);

/* Rebuilds every parent/children link from the parent names
 * (virDomainMomentUpdateRelations). Returns FALSE when a parent is missing or a
 * cycle exists: such snapshots become roots (the caller clears current). */
gboolean hier_update_relations(SnapTree *tree);

/* virDomainMomentCheckCycles for a redefinition of @def: "cannot set moment %s as
 * its own parent", "parent %s for moment %s not found" (CORE_ERROR_NOT_FOUND),
 * "parent %s would create cycle to %s". */
gboolean hier_check_cycles(const SnapTree *tree, const SnapshotDef *def, GError **error);

/* Moves @node under @parent (NULL = root); its children stay attached. */
void hier_set_parent(SnapTree *tree, SnapNode *node, SnapNode *parent);

/* Removes @node: its children move to its parent (their def->parent updated);
 * current moves to the parent when @node was current. Returns the list of nodes
 * whose metadata changed (children), borrowed. */
GPtrArray *hier_remove(SnapTree *tree, SnapNode *node);

/* Sorted lists (borrowed nodes). */
GPtrArray *hier_roots(const SnapTree *tree);                       /* name order, case-insensitive */
GPtrArray *hier_topological(const SnapTree *tree);                 /* parents first, then name order */
GPtrArray *hier_descendants(const SnapTree *tree, SnapNode *node); /* parents first */
gboolean hier_is_leaf(const SnapNode *node);

/* virsh snapshot-list --tree byte for byte (from NULL = whole tree; with @from, only
 * its direct children unless @descendants). Owned. */
char *hier_render_tree(const SnapTree *tree, SnapNode *from, gboolean descendants);

/* virsh's name order (vshStrcasecmp). */
int hier_name_cmp(const char *a, const char *b);

G_END_DECLS
