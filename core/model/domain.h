/* domain.h: the inactive <domain> model: what snapfs needs, the rest kept losslessly. */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

#include "storage.h"
#include "util.h"

G_BEGIN_DECLS

typedef struct {
    char *device;        /* disk, cdrom, floppy, lun */
    char *dst;           /* <target dev> */
    char *bus;           /* <target bus> */
    char *snapshot;      /* the disk's own snapshot= attribute (no|internal|external|manual) */
    gboolean readonly;   /* <readonly/> */
    StorageSource *src;  /* never NULL; type NONE + no path = empty media */
    xmlNode *node;       /* the <disk> element inside DomainDef.doc */
} DiskDef;

typedef struct {
    xmlDoc *doc;         /* the whole document: what we do not model is kept here */
    char *type;          /* <domain type=> ("kvm", "qemu" ...); NULL in legacy uuid-only form */
    char *name;
    guint8 uuid[UTIL_UUID_LEN];
    gboolean has_uuid;
    gboolean has_genid;
    guint8 genid[UTIL_UUID_LEN];
    char *title;
    char *description;
    GPtrArray *disks;    /* DiskDef *, in document order */
    guint vcpus_max;     /* <vcpu> (1 when absent), for the ABI check */
    guint64 memory_kib;  /* <memory> in KiB (0 when absent), for the ABI check */
    guint64 current_memory_kib; /* <currentMemory> in KiB (= memory_kib when absent) */
} DomainDef;

typedef enum {
    DOMAIN_PARSE_INACTIVE = 0,       /* define: index= ignored */
    DOMAIN_PARSE_LIVE = 1 << 0,      /* status parse: index= read */
    DOMAIN_PARSE_NO_UUID_OK = 1 << 1,/* a missing <uuid> is generated (define) instead of an error */
} DomainParseFlags;

typedef enum {
    DOMAIN_FORMAT_SECURE = 1 << 0,   /* keep graphics passwd= and http cookies */
    DOMAIN_FORMAT_LIVE = 1 << 1,     /* keep index= attributes */
} DomainFormatFlags;

/* Parses an inactive <domain> document. Errors: CORE_ERROR_PARSE (not well
 * formed, wrong root), CORE_ERROR_INVALID with libvirt's texts ("element 'genid'
 * can only appear once", "malformed genid element", "missing disk backing store
 * format", ...). <genid/> gets a random v4 GUID here, at parse time. */
DomainDef *domain_parse(const char *buf, gsize len, guint flags, GError **error);

/* The same, from an element of another document (snapshot <domain>/<inactiveDomain>):
 * the subtree is copied; @node keeps belonging to its document. */
DomainDef *domain_parse_node(xmlNode *node, guint flags, GError **error);

void domain_free(DomainDef *def);
DomainDef *domain_copy(const DomainDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomainDef, domain_free)

/* Formats the document as libvirt does (two-space indent, single quotes), with
 * the modelled fields in their canonical spelling (genid lower case, default
 * ports). @root_name replaces the root element's name (NULL = "domain"; snapshots
 * use "inactiveDomain"). Appends at @indent. Cannot fail. */
void domain_format_buf(GString *out, const DomainDef *def, guint flags, int indent,
                       const char *root_name);
char *domain_format(const DomainDef *def, guint flags);   /* owned, trailing newline */

/* virDomainDiskByName: a target dev, or a source path when @name starts with '/'
 * (NULL when absent or ambiguous). */
/* Appends to @out (of char *, owned by it) a pair (target dev, path) for each local
 * image @dom names, each disk's source first, then its <backingStore> chain. @dom may
 * be NULL. */
void domain_add_image_refs(const DomainDef *dom, GPtrArray *out);

DiskDef *domain_disk_by_name(const DomainDef *def, const char *name);

/* Replaces @disk's <source> and <driver type> with @src (taking ownership),
 * updating the document. With @keep_old_as_backing the old source becomes the new
 * source's <backingStore> (only when the old chain was known, as libvirt does),
 * replacing any chain @src had; otherwise @src's own chain (e.g. detected members)
 * is written below it and the old source is freed. Sets disk type= and creates a
 * <driver name='qemu'> when @src has a format and the disk had no <driver>. */
void domain_disk_set_source(DomainDef *def, DiskDef *disk, StorageSource *src,
                            gboolean keep_old_as_backing);

/* The <disk> element with its nested <backingStore> chain, for disks/vda.xml. */
char *domain_disk_format(const DomainDef *def, const DiskDef *disk, guint flags);

/* Sets (or with @genid NULL removes) the genid, updating the document. */
void domain_set_genid(DomainDef *def, const guint8 *genid);

/* virDomainDefCheckABIStability for what snapfs models: name ("Target domain name
 * '%s' does not match source '%s'"), uuid, genid (libvirt's texts), vcpu, memory,
 * disk count and targets. Sets CORE_ERROR_INVALID. */
gboolean domain_check_abi(const DomainDef *src, const DomainDef *dst, GError **error);

G_END_DECLS
