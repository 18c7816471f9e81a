/* view.h: what the mounted tree contains, computed from core/ objects (no FUSE here). */
#pragma once

#include <glib.h>
#include <sys/stat.h>

#include "chain.h"
#include "image.h"
#include "backend.h"

G_BEGIN_DECLS

typedef enum {
    VIEW_ROOT,
    VIEW_DOM,            /* NAME/ */
    VIEW_DOM_FILE,       /* NAME/{domain.xml,domain.secure.xml,uuid,genid,tree,snapshots.tsv} */
    VIEW_DOM_CURRENT,    /* NAME/current -> snapshots/S */
    VIEW_DISKS,          /* NAME/disks/ or NAME/snapshots/S/disks/ */
    VIEW_DISK_DIR,       /* disks/vda[N]/ */
    VIEW_DISK_FILE,      /* disks/vda[N]/{source,type,format,info,data} */
    VIEW_DISK_BACKING,   /* disks/vda[N]/backing -> ../vda[N+1] */
    VIEW_DISK_XML,       /* disks/vda.xml */
    VIEW_SNAPS,          /* NAME/snapshots/ */
    VIEW_SNAP,           /* NAME/snapshots/S/ */
    VIEW_SNAP_FILE,      /* S/{snapshot.xml,snapshot.secure.xml,domain.xml,description,state,creationTime} */
    VIEW_SNAP_PARENT,    /* S/parent -> ../P */
    VIEW_SNAP_CHILDREN,  /* S/children/ */
    VIEW_SNAP_CHILD,     /* S/children/C -> ../../C */
    VIEW_CTL_DIR,        /* ctl/ (dom NULL: the top one) */
    VIEW_CTL_FILE,       /* ctl/{create,...,result} (leaf) */
    VIEW_TEMP_LINK,      /* NAME/LEAF: a symlink made by `ln -sfn` before its rename onto current */
    VIEW_GUEST_FILES,    /* disks/vda[N]/files/: one directory per guest filesystem */
    VIEW_GUEST_ENTRY,    /* files/VOL/...: leaf "VOL/INO", the guest's inode INO of volume VOL */
} ViewKind;

/* Where a node is: enough to find it again after the store changed. */
typedef struct {
    ViewKind kind;
    char *dom;
    char *snap;   /* snapshot name for VIEW_SNAP* and snapshot disks; NULL otherwise */
    char *disk;   /* chain label "vda[1]" (DISK_DIR/FILE/BACKING) or target "vda" (DISK_XML) */
    char *leaf;   /* file name for *_FILE, child name for SNAP_CHILD */
} ViewNode;

void view_node_free(ViewNode *node);
ViewNode *view_node_copy(const ViewNode *node);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ViewNode, view_node_free)

typedef struct View View;

typedef struct {
    char *name;
    mode_t type;          /* S_IFDIR, S_IFREG, S_IFLNK (any type inside files/) */
} ViewDirent;

void view_dirent_free(ViewDirent *ent);

/* The tree of @backend's domains (borrowed: it outlives the view). @watch: changes made
 * outside are found by the backend's watch (falling back to polling where it cannot
 * watch); FALSE: by polling only, every 300-900 ms. */
View *view_new(Backend *backend, gboolean watch);
void view_free(View *view);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(View, view_free)

/* The child @name of @parent, or NULL with G_FILE_ERROR_NOENT. Owned. */
ViewNode *view_lookup(View *view, const ViewNode *parent, const char *name, GError **error);

/* Attributes of @node as they are now (size exact). ENOENT when it is gone. */
gboolean view_stat(View *view, const ViewNode *node, struct stat *st, GError **error);
/* view_stat(), and in @version the version of the content of a generated file whose
 * bytes change only with a new load of its domain (view_content_fixed()), from the
 * same load as the size; 0 for any other node. */
gboolean view_stat_version(View *view, const ViewNode *node, struct stat *st, guint64 *version,
                           GError **error);
/* TRUE when @node is a generated file whose bytes change only when its domain is loaded
 * again (not a control file, a data file or a file of the running domain): a version
 * names its bytes. */
gboolean view_content_fixed(const ViewNode *node);

/* Directory entries without . and .. (ViewDirent *). */
GPtrArray *view_readdir(View *view, const ViewNode *node, GError **error);

/* TRUE when @node exists and is a directory (ENOTDIR when it is not); no listing. */
gboolean view_is_dir(View *view, const ViewNode *node, GError **error);

/* The content of a generated file; @version (optional) receives its version, as
 * view_content_version() gives it. */
GBytes *view_read_content(View *view, const ViewNode *node, guint64 *version, GError **error);
/* Size and version (a hash of the bytes) of what view_read_content() gives now,
 * without formatting it again while the domain stays loaded. @made (optional)
 * receives the bytes when they had to be made for this, else NULL. */
gboolean view_content_version(View *view, const ViewNode *node, guint64 *version, guint64 *size,
                              GBytes **made, GError **error);
char *view_readlink(View *view, const ViewNode *node, GError **error);

/* Opens the guest view of a data file; @version receives a fingerprint of the
 * layers (mtimes, sizes) so the caller can keep the page cache when unchanged. */
Image *view_open_data(View *view, const ViewNode *node, guint64 *version, GError **error);

/* Guest files (tree/guest.c): a regular file inside files/ opened for reading. Each
 * call may come from any thread. */
typedef struct ViewGuestFile ViewGuestFile;

gboolean view_node_is_guest(const ViewNode *node);
ViewGuestFile *view_guest_open(View *view, const ViewNode *node, GError **error);
void view_guest_close(ViewGuestFile *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ViewGuestFile, view_guest_close)
guint64 view_guest_size(ViewGuestFile *f);
gssize view_guest_pread(ViewGuestFile *f, void *buf, gsize len, guint64 off, GError **error);
gboolean view_guest_seek(ViewGuestFile *f, guint64 off, gboolean data, guint64 *result,
                         GError **error);
/* The extended attributes of @node, GuestXattr * (core/guest/guest.h); none outside
 * files/. Owned. */
GPtrArray *view_xattrs(View *view, const ViewNode *node, GError **error);

/* Control files. */
gboolean view_ctl_is_result(const ViewNode *node);
const char *const *view_ctl_names(gboolean top);

/* ctl/result of the domain @dom (NULL: the top ctl/). */
void view_set_result(View *view, const char *dom, gboolean ok, const char *text);

/* Symlinks a user made in a domain directory (GNU ln -sfn's temporary name),
 * kept in memory until renamed onto `current` or removed. */
gboolean view_templink_add(View *view, const char *dom, const char *name, const char *target,
                           GError **error);
char *view_templink_take(View *view, const char *dom, const char *name);   /* owned target */

/* Backup jobs, one per domain (the backend's). */
gboolean view_backup_start(View *view, const char *dom, const char *xml, gsize len,
                           char **result, GError **error);
gboolean view_backup_cancel(View *view, const char *dom, char **result, GError **error);

Backend *view_backend(View *view);

/* Re-examines the store as an access would (each loaded domain whose re-check
 * interval has passed, and the domain list): domains that changed are dropped, to
 * be reloaded on their next access, and their names returned (owned), so the
 * caller can invalidate what the kernel caches of them. "" in the result means
 * the domain list changed. */
GPtrArray *view_poll(View *view);

/* Forgets the loaded state of @dom (NULL: all), so the next access reloads it. */
void view_invalidate(View *view, const char *dom);

G_END_DECLS
