/* snapshot.h: the <domainsnapshot> model, parse (create, redefine, metadata file), validate, format. */
#pragma once

#include <glib.h>

#include "domain.h"

G_BEGIN_DECLS

/* libvirt's virDomainSnapshotState: virDomainState values, then disk-snapshot. */
typedef enum {
    SNAP_STATE_NOSTATE = 0,
    SNAP_STATE_RUNNING,
    SNAP_STATE_BLOCKED,
    SNAP_STATE_PAUSED,
    SNAP_STATE_SHUTDOWN,
    SNAP_STATE_SHUTOFF,
    SNAP_STATE_CRASHED,
    SNAP_STATE_PMSUSPENDED,
    SNAP_STATE_DISK_SNAPSHOT,
} SnapState;

const char *snapshot_state_to_string(SnapState state);
int snapshot_state_from_string(const char *str);   /* -1 when unknown */

typedef enum {
    SNAP_LOC_DEFAULT = 0,
    SNAP_LOC_NO,
    SNAP_LOC_INTERNAL,
    SNAP_LOC_EXTERNAL,
    SNAP_LOC_MANUAL,
} SnapLocation;

const char *snapshot_location_to_string(SnapLocation loc);  /* "" for DEFAULT */
int snapshot_location_from_string(const char *str);  /* "default" -> 0; -1 when unknown */

typedef struct {
    char *name;               /* target dev after alignment */
    SnapLocation snapshot;
    StorageSource *src;       /* type, path, format (<driver type>); never NULL */
    gboolean delete_in_progress;  /* <snapshotDeleteInProgress/> */
    guint64 metadata_cache_max_size;  /* <driver><metadata_cache><max_size>, bytes; 0 = none */
} SnapDiskDef;

typedef struct {
    char *name;
    char *description;
    SnapState state;
    char *parent;             /* parent's name, NULL for a root */
    gint64 creation_time;     /* Unix seconds */
    SnapLocation memory;
    char *memory_file;
    GPtrArray *disks;         /* SnapDiskDef * */
    DomainDef *dom;           /* full <domain>; NULL in the legacy uuid-only form */
    gboolean has_legacy_uuid;
    guint8 legacy_uuid[UTIL_UUID_LEN];
    DomainDef *inactive_dom;  /* <inactiveDomain> */
    char *cookie;             /* the <cookie> element serialised, kept verbatim */
    int active;               /* -1 = absent, 0, 1 (metadata files) */
    char *light_token;        /* non-NULL: loaded light (snapshot_make_light()), dom and
                               * inactive_dom left out; how its backend reads them
                               * again (the files backend: the file's path; the
                               * daemon backend: the document the daemon gave) */
    gboolean light_dom;       /* light: dom was there before it was left out */
    char **light_images;      /* light: snapshot_image_refs() of the domains left out */
} SnapshotDef;

typedef enum {
    SNAPSHOT_PARSE_REDEFINE = 1 << 0,   /* VIR_DOMAIN_SNAPSHOT_PARSE_REDEFINE */
    SNAPSHOT_PARSE_DISKS = 1 << 1,      /* VIR_DOMAIN_SNAPSHOT_PARSE_DISKS */
    SNAPSHOT_PARSE_INTERNAL = 1 << 2,   /* metadata file: <active> required */
    SNAPSHOT_PARSE_OFFLINE = 1 << 3,    /* the VM is inactive (create) */
} SnapshotParseFlags;

typedef enum {
    SNAPSHOT_FORMAT_SECURE = 1 << 0,    /* passwords and cookies kept */
    SNAPSHOT_FORMAT_INTERNAL = 1 << 1,  /* emit <active> */
} SnapshotFormatFlags;

/* The local images @def's domains (dom, inactive_dom) name, sources and their
 * <backingStore> chains, as NULL-terminated pairs: target dev, path; a disk's top
 * first. From light_images when @def is light. Owned (g_strfreev); NULL when none. */
char **snapshot_image_refs(const SnapshotDef *def);

/* Makes @def light: its domains dropped (light_dom and light_images keep what
 * tree/ and the image users need of them), @token (owned copy) in light_token: where
 * its backend reads them again, a file path for the files backend, the document
 * itself for the daemon backend. */
void snapshot_make_light(SnapshotDef *def, const char *token);
/* Gives @full, @light's definition read again to make it full, what its tree decided of
 * @light since the load: its parent (a delete moves it) and <active>. */
void snapshot_keep_relations(SnapshotDef *full, const SnapshotDef *light);

SnapshotDef *snapshot_def_new(void);
void snapshot_def_free(SnapshotDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapshotDef, snapshot_def_free)
void snapshot_disk_def_free(SnapDiskDef *disk);
SnapDiskDef *snapshot_disk_def_new(void);              /* src = a new file-type source */
SnapDiskDef *snapshot_disk_def_copy(const SnapDiskDef *disk);   /* deep */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapDiskDef, snapshot_disk_def_free)
/* Deep copy (dom and inactive_dom through domain_copy()). Owned. */
SnapshotDef *snapshot_def_copy(const SnapshotDef *def);

/* virDomainSnapshotDefParse with @flags: shape, enums, required elements under
 * REDEFINE, memory rules, disk rules, create-time defaults (creationTime = now,
 * name = creationTime when missing; skipped under REDEFINE). Errors carry
 * libvirt's texts (CORE_ERROR_PARSE / CORE_ERROR_INVALID / CORE_ERROR_UNSUPPORTED). */
SnapshotDef *snapshot_parse(const char *buf, gsize len, guint flags, GError **error);

/* Same from an already parsed <domainsnapshot> element (used by `import`). */
SnapshotDef *snapshot_parse_node(xmlNode *root, guint flags, GError **error);

/* The qemu name rules: "invalid snapshot name '%s': name can't contain '/'" ... */
gboolean snapshot_check_name(const char *name, GError **error);

/* qemuSnapshotCreateXMLValidateDef's state rule: running, paused,
 * shutdown, shutoff, crashed; disk-snapshot only with @redefine. Errors
 * (CORE_ERROR_INVALID / UNSUPPORTED): "Invalid domain state %s",
 * "qemu doesn't support taking snapshots of PMSUSPENDED guests". */
gboolean snapshot_check_state(SnapState state, gboolean redefine, GError **error);

/* virDomainSnapshotAlignDisks against @dom: one entry per domain disk in domain
 * order, default location @default_loc (SNAP_LOC_INTERNAL or SNAP_LOC_EXTERNAL),
 * path names rewritten to targets, libvirt's texts. With
 * @assign_names the default external overlay names are generated. */
gboolean snapshot_align_disks(SnapshotDef *def, const DomainDef *dom, SnapLocation default_loc,
                              gboolean assign_names, GError **error);

/* libvirt's default overlay name: everything after the last '.' of the file name
 * dropped, then '.' + @snapname. Owned. */
char *snapshot_external_name(const char *path, const char *snapname);

/* The state/disk-only/uuid/ABI checks of virDomainSnapshotRedefineValidate
 * of @def against @old (an existing snapshot of the same name, or NULL) and the
 * domain @dom, then check 6 (disk alignment, "missing domain in snapshot") on a
 * copy of @def: @def is not modified. Checks 2-6 in libvirt's order; check 1
 * (parent/cycles) is snaptree.c's. Sets CORE_ERROR_INVALID / UNSUPPORTED. */
gboolean snapshot_redefine_validate(const SnapshotDef *def, const SnapshotDef *old,
                                    const DomainDef *dom, gboolean disk_only_flag,
                                    GError **error);

/* virDomainSnapshotRedefinePrep without the cycle check (snaptree.c): the checks of
 * snapshot_redefine_validate(), then @def's disks aligned in place against
 * def->dom, else old->dom (default location external for a disk-snapshot state or
 * any external memory/disk, else internal), with default overlay names. @def is
 * untouched on failure only up to the alignment step. */
gboolean snapshot_redefine_prep(SnapshotDef *def, const SnapshotDef *old,
                                const DomainDef *dom, gboolean disk_only_flag,
                                GError **error);

/* virDomainSnapshotDefFormat: fixed order and indent, trailing newline. Cannot fail. */
char *snapshot_format(const SnapshotDef *def, guint flags);

/* TRUE when any disk or the memory is external (the EXTERNAL list filter). */
gboolean snapshot_is_external(const SnapshotDef *def);

G_END_DECLS
