/* storage.h: libvirt's virStorageSource: a disk's <source> (local path, network
 * protocol and hosts, volume, nvme, vhost-user), its parse, format and description. */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

G_BEGIN_DECLS

typedef enum {
    STORAGE_TYPE_NONE = 0,   /* libvirt's VIR_STORAGE_TYPE_NONE: unknown / empty */
    STORAGE_TYPE_FILE,
    STORAGE_TYPE_BLOCK,
    STORAGE_TYPE_DIR,
    STORAGE_TYPE_NETWORK,
    STORAGE_TYPE_VOLUME,
    STORAGE_TYPE_NVME,
    STORAGE_TYPE_VHOST_USER,
} StorageType;

const char *storage_type_to_string(StorageType type);  /* "file", "block", ... "" for NONE */
int storage_type_from_string(const char *str);         /* -1 when unknown */

typedef struct {
    char *name;        /* hostname or address; NULL for unix */
    guint port;        /* 0 = none (see STORAGE_PARSE_DEFAULT_PORTS) */
    char *transport;   /* NULL = tcp; "tcp", "unix", "rdma" */
    char *socket;      /* unix socket path */
} NetHost;

void storage_host_free(NetHost *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NetHost, storage_host_free)

/* virDomainStorageNetworkParseHost: a <host> of a network source, or a backup's
 * <server>. Attributes are read as libvirt reads them (an empty one is a value);
 * transport='tcp' is kept as NULL; no default port. Errors: CORE_ERROR_INVALID with
 * libvirt's texts ("unknown protocol transport type '%s'", "missing socket for unix
 * transport", "missing name for host", "port '%s' out of range", ...). */
NetHost *storage_host_parse(xmlNode *node, GError **error);

typedef struct StorageSource StorageSource;
struct StorageSource {
    StorageType type;
    char *format;            /* "qcow2", "raw" ...; NULL = not given */
    char *path;              /* file= / dev= / dir=; NULL for network */
    char *protocol;          /* network: nbd, rbd, gluster, http ... */
    char *name;              /* network: volume/image name */
    GPtrArray *hosts;        /* NetHost *, network only; never NULL */
    char *rel_path;          /* as a backing file header spelled it (probing) */
    guint index;             /* <source index=>/<backingStore index=>: live parses only */
    gboolean readonly;
    StorageSource *backing;  /* next element down; NULL: none known */
    gboolean backing_terminated; /* TRUE: an empty <backingStore/> ends the chain here */
    gboolean detected;       /* TRUE: filled by probing, not by the user's XML */
    char *pool;              /* volume: <source pool=> (the volume name is in @name) */
};

StorageSource *storage_source_new(void);
void storage_source_free(StorageSource *src);      /* frees the whole chain below too */
StorageSource *storage_source_copy(const StorageSource *src);  /* deep, with backing chain */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(StorageSource, storage_source_free)

/* "nbd+unix:///export?socket=/run/x.sock", "gluster://host:24007/vol/img",
 * "rbd:pool/img", "http://host:80/path" ... for disks/vda/source. Owned. */
char *storage_source_describe(const StorageSource *src);

/* Default port of a network protocol (http 80 ... vxhs 9999), 0 when none. */
guint storage_source_default_port(const char *protocol);

/* TRUE for the image formats libvirt accepts in <driver type> / <format type>
 * (raw, qcow2, ...; not "none"). */
gboolean storage_format_is_known(const char *format);

/* TRUE for libvirt's network disk protocols (nbd, rbd, ... nfs). */
gboolean storage_protocol_is_known(const char *protocol);

/* The <source> attribute that holds a local source's path: "file", "dev" (block)
 * or "dir"; NULL for the other types. */
const char *storage_source_path_attr(StorageType type);

/* libvirt's virStorageSourceIsEmpty: no source (NULL or type none), a local
 * type without a path, or a network one without a protocol. */
gboolean storage_source_is_empty(const StorageSource *src);

typedef enum {
    /* A snapshot <disk>'s <source>: a missing or unknown protocol= is CORE_ERROR_PARSE
     * with the texts "missing network source protocol type" and "unknown protocol
     * type '%s'" (tests/unit/test-snapshot.c); a domain's gets libvirt 9.0's
     * virXMLPropEnum texts (CORE_ERROR_INVALID). */
    STORAGE_PARSE_SNAPSHOT = 1 << 0,
    /* virStorageSourceNetworkAssignDefaultPorts: a tcp host without port= gets its
     * protocol's default, as a domain's disks do; a snapshot's disks keep the ports
     * they were given (tests/data/xml2xml/snapshot-redefine-disks-types.out.xml). */
    STORAGE_PARSE_DEFAULT_PORTS = 1 << 1,
} StorageParseFlags;

/* virDomainStorageSourceParse: the <source> element @node for @src->type (set by the
 * caller from the disk's type=), with @flags (StorageParseFlags). Checks what libvirt
 * checks (network protocol, name, hosts, http cookies; volume, nvme, vhost-user
 * attributes) and rewrites @node's network parts in libvirt's canonical spelling
 * (attribute order, no transport='tcp'). Errors: CORE_ERROR_INVALID with libvirt's
 * texts, but see STORAGE_PARSE_SNAPSHOT. */
gboolean storage_source_parse(xmlNode *node, StorageSource *src, guint flags, GError **error);

/* virDomainDiskSourceFormat for a model without a document (snapshot disks): appends
 * <source .../> at @indent; nothing when it would have no attribute and no child, as
 * virXMLFormatElement leaves such an element out. */
void storage_source_format(GString *out, const StorageSource *src, int indent);

G_END_DECLS
