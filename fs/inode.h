/* inode.h: fuse_ino_t <-> view nodes, with the kernel's lookup counts. */
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <glib.h>

#include "view.h"

G_BEGIN_DECLS

typedef struct InodeTable InodeTable;

InodeTable *inode_table_new(void);
void inode_table_free(InodeTable *table);

/* The node of @ino as an owned copy (safe after a concurrent forget), or NULL. */
ViewNode *inode_get(InodeTable *table, fuse_ino_t ino);

/* The inode of @node, created if new; its lookup count grows by one. */
fuse_ino_t inode_ref(InodeTable *table, const ViewNode *node);

/* The inode of @node without taking a lookup reference (0 when unknown). */
fuse_ino_t inode_peek(InodeTable *table, const ViewNode *node);

void inode_forget(InodeTable *table, fuse_ino_t ino, guint64 nlookup);

/* Swaps the stored data version of @ino; TRUE when it equals @version or the file
 * was never opened (the kernel's page cache of the file is valid). */
gboolean inode_data_version_same(InodeTable *table, fuse_ino_t ino, guint64 version);

/* The size the kernel was last told for @ino (every attribute reply notes it): a
 * file whose size is unchanged since may be read through the page cache. */
void inode_note_size(InodeTable *table, fuse_ino_t ino, guint64 size);
gboolean inode_size_reported(InodeTable *table, fuse_ino_t ino, guint64 size);

guint inode_count(InodeTable *table);

/* After a rename the kernel keeps the moved inode under the new name: make the
 * inode of @from stand for @to from now on (an inode that stood for @to keeps its
 * number until forgotten, but is no longer found by position). */
void inode_retarget(InodeTable *table, const ViewNode *from, const ViewNode *to);

/* The inodes whose node belongs to domain @dom (NULL: every inode), control files
 * excluded. Owned array of fuse_ino_t values (guint64). */
GArray *inode_list_domain(InodeTable *table, const char *dom);

G_END_DECLS
