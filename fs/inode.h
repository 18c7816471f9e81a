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

/* inode_ref() for the kernel's entry @name in directory @parent. A @version other than
 * 0 (view_stat_version()) makes the inode one of that version of a generated text, of
 * @size bytes: each version has its own inode, so its own page cache and size, as a
 * file replaced by rename has on a local filesystem. */
fuse_ino_t inode_ref_entry(InodeTable *table, const ViewNode *node, guint64 version,
                           guint64 size, fuse_ino_t parent, const char *name);

/* Where the kernel has an entry of a text inode (an owned copy). */
typedef struct {
    fuse_ino_t parent;
    char *name;
} InodeEntry;
void inode_entry_free(InodeEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(InodeEntry, inode_entry_free)

typedef enum {
    INODE_TEXT_NONE,      /* not the inode of one version: direct I/O */
    INODE_TEXT_SAME,      /* the version of the text now: its pages may be kept */
    INODE_TEXT_HELD,      /* an older version that page-cache readers still read */
    INODE_TEXT_RETIRED,   /* an older version no open reads through the page cache:
                             read with direct I/O from now on, sized as the text now */
} InodeText;

/* What an open (@open) or an attribute reply of inode @ino should do, now that its
 * generated text is at @version. SAME and HELD give the inode's own @size and version
 * (@own), and for an open count one more page-cache reader, until inode_text_close().
 * An older version no page-cache reader reads is retired for good: a lookup of that
 * version again gets a new inode. */
InodeText inode_text_access(InodeTable *table, fuse_ino_t ino, guint64 version, gboolean open,
                            guint64 *size, guint64 *own);
/* A page-cache reader counted by inode_text_access() has closed. */
void inode_text_close(InodeTable *table, fuse_ino_t ino);

/* The kernel's entries of the text inodes of domain @dom (NULL: every domain), as
 * InodeEntry *, but for those in a domain's directory (looked up every time). */
GPtrArray *inode_list_texts(InodeTable *table, const char *dom);

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

/* The inodes whose node belongs to domain @dom (NULL: every inode), control files and
 * the inodes of one version of a text (which never change) excluded. Owned array of
 * fuse_ino_t values (guint64). */
GArray *inode_list_domain(InodeTable *table, const char *dom);

G_END_DECLS
