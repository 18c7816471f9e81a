/* domain.c: the libvirt <domain> model: a lossless xmlDoc plus the fields snapfs reads. */
#include "domain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xmlutil.h"

/* The document is the truth: parsing rewrites the modelled parts of it into
 * libvirt's canonical spelling (uuid/genid lower case, default ports, <host>
 * attribute order, no index= on inactive parses), so formatting is a plain
 * serialisation of a copy with the per-flag removals (secrets, index=, detected
 * chain members). Mutators update the model and the document together. */

/* ------------------------------------------------------------------ */
/* Enumerations */

/* virDomainVirtType. */
static const char *const domain_virt_types[] = {
    "none", "qemu", "kqemu", "kvm", "xen", "lxc", "uml", "openvz", "test", "vmware",
    "hyperv", "vbox", "phyp", "parallels", "bhyve", "vz", NULL,
};

static const char *const disk_devices[] = { "disk", "cdrom", "floppy", "lun", NULL };
static const char *const disk_snapshot_modes[] = { "no", "internal", "external", "manual", NULL };

static gboolean
domain_str_in(const char *str, const char *const *list)
{
    for (guint i = 0; str && list[i]; i++)
        if (strcmp(str, list[i]) == 0)
            return TRUE;
    return FALSE;
}

/* ------------------------------------------------------------------ */
/* Small DOM helpers */

static void
domain_node_remove(xmlNode *node)
{
    if (node) {
        xmlUnlinkNode(node);
        xmlFreeNode(node);
    }
}

static void
domain_node_set_text(xmlNode *node, const char *text)
{
    g_autofree xmlChar *enc = xmlEncodeSpecialChars(node->doc, (const xmlChar *)text);

    xmlNodeSetContent(node, enc);
}

/* Inserts @node as the first element-or-text child of @parent. */
static void
domain_node_prepend(xmlNode *parent, xmlNode *node)
{
    if (parent->children)
        xmlAddPrevSibling(parent->children, node);
    else
        xmlAddChild(parent, node);
}

static xmlNode *
domain_node_new(xmlDoc *doc, const char *name)
{
    return xmlNewDocNode(doc, NULL, (const xmlChar *)name, NULL);
}

static void
domain_node_set_prop(xmlNode *node, const char *name, const char *value)
{
    xmlSetProp(node, (const xmlChar *)name, (const xmlChar *)value);
}

static void
domain_node_unset_prop(xmlNode *node, const char *name)
{
    xmlUnsetProp(node, (const xmlChar *)name);
}

/* ------------------------------------------------------------------ */
/* Backing chains */

/* Puts <format>, <source>, <backingStore> first, in libvirt's output order. */
static void
domain_backing_reorder(xmlNode *bs)
{
    static const char *const order[] = { "backingStore", "source", "format" };

    for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
        xmlNode *c = xmlutil_child(bs, order[i]);

        if (c) {
            xmlUnlinkNode(c);
            domain_node_prepend(bs, c);
        }
    }
}

/* virDomainDiskBackingStoreParse: the <backingStore> child of @parent. */
static gboolean
domain_backing_parse(xmlNode *parent, StorageSource *src, guint flags, GError **error)
{
    xmlNode *bs = xmlutil_child(parent, "backingStore");
    g_autofree char *type = NULL;
    g_autofree char *format = NULL;
    g_autofree char *idx = NULL;
    g_autoptr(StorageSource) back = NULL;
    xmlNode *source;
    int t;

    if (!bs)
        return TRUE;
    if (!(type = xmlutil_prop(bs, "type"))) {
        /* the terminator: libvirt prints it bare */
        src->backing_terminated = TRUE;
        while (bs->properties)
            xmlRemoveProp(bs->properties);
        while (bs->children)
            domain_node_remove(bs->children);
        return TRUE;
    }
    if (flags & DOMAIN_PARSE_LIVE)
        idx = xmlutil_prop(bs, "index");
    else
        domain_node_unset_prop(bs, "index");
    if (xmlutil_child(bs, "format"))
        format = xmlutil_prop(xmlutil_child(bs, "format"), "type");
    if (!format)
        return core_error_invalid(error, "missing disk backing store format");
    if (!(source = xmlutil_child(bs, "source")))
        return core_error_invalid(error, "missing disk backing store source");
    if ((t = storage_type_from_string(type)) <= 0)
        return core_error_invalid(error, "unknown storage source type '%s'", type);
    if (!storage_format_is_known(format))
        return core_error_invalid(error, "unknown storage source format '%s'", format);
    back = storage_source_new();
    back->type = (StorageType)t;
    back->format = g_steal_pointer(&format);
    back->readonly = TRUE;   /* backing stores are always read-only */
    if (idx && !xmlutil_parse_uip(idx, &back->index))
        return core_error_invalid(error, "invalid storage source index '%s'", idx);
    if (!(flags & DOMAIN_PARSE_LIVE))
        domain_node_unset_prop(source, "index");
    if (!storage_source_parse(source, back, STORAGE_PARSE_DEFAULT_PORTS, error) ||
        !domain_backing_parse(bs, back, flags, error))
        return FALSE;
    domain_backing_reorder(bs);
    src->backing = g_steal_pointer(&back);
    return TRUE;
}

/* ------------------------------------------------------------------ */
/* Disks */

static void
disk_def_free(gpointer data)
{
    DiskDef *disk = data;

    if (!disk)
        return;
    g_free(disk->device);
    g_free(disk->dst);
    g_free(disk->bus);
    g_free(disk->snapshot);
    storage_source_free(disk->src);
    g_free(disk);
}

/* The bus libvirt's parser assigns when <target> has none. */
static const char *
domain_default_bus(const DiskDef *disk)
{
    if (g_strcmp0(disk->device, "floppy") == 0)
        return "fdc";
    if (g_str_has_prefix(disk->dst, "hd"))
        return "ide";
    if (g_str_has_prefix(disk->dst, "fd"))
        return "fdc";
    if (g_str_has_prefix(disk->dst, "vd"))
        return "virtio";
    if (g_str_has_prefix(disk->dst, "xvd"))
        return "xen";
    if (g_str_has_prefix(disk->dst, "ub"))
        return "usb";
    return "scsi";
}

/* A local <source> naming nothing (file='' or bare): libvirt drops it. */
static gboolean
domain_source_is_empty(xmlNode *source, const StorageSource *src)
{
    if (src->path || src->type == STORAGE_TYPE_NETWORK || src->type == STORAGE_TYPE_VOLUME ||
        src->type == STORAGE_TYPE_NVME || src->type == STORAGE_TYPE_VHOST_USER)
        return FALSE;
    for (xmlNode *c = source->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return FALSE;
    for (xmlAttr *a = source->properties; a; a = a->next) {
        g_autofree char *v = xmlutil_prop(source, (const char *)a->name);

        if (v)
            return FALSE;
    }
    return TRUE;
}

static DiskDef *
domain_disk_parse(xmlNode *node, guint flags, GError **error)
{
    DiskDef *disk = g_new0(DiskDef, 1);
    g_autofree char *type = xmlutil_prop(node, "type");
    xmlNode *driver = xmlutil_child(node, "driver");
    xmlNode *source = xmlutil_child(node, "source");
    xmlNode *target = xmlutil_child(node, "target");
    int t = STORAGE_TYPE_FILE;

    disk->node = node;
    disk->src = storage_source_new();
    if (type && (t = storage_type_from_string(type)) <= 0) {
        xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, "type", type);
        goto fail;
    }
    disk->src->type = (StorageType)t;
    if (!(disk->device = xmlutil_prop(node, "device")))
        disk->device = g_strdup("disk");
    else if (!domain_str_in(disk->device, disk_devices)) {
        xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, "device", disk->device);
        goto fail;
    }
    disk->snapshot = xmlutil_prop(node, "snapshot");
    if (disk->snapshot && !domain_str_in(disk->snapshot, disk_snapshot_modes)) {
        xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, "snapshot", disk->snapshot);
        goto fail;
    }
    if (source) {
        if (!storage_source_parse(source, disk->src, STORAGE_PARSE_DEFAULT_PORTS, error))
            goto fail;
        if (flags & DOMAIN_PARSE_LIVE) {
            g_autofree char *idx = xmlutil_prop(source, "index");

            if (idx && !xmlutil_parse_uip(idx, &disk->src->index)) {
                core_error_invalid(error, "invalid disk index '%s'", idx);
                goto fail;
            }
        } else {
            domain_node_unset_prop(source, "index");
        }
    }
    if (!domain_backing_parse(node, disk->src, flags, error))
        goto fail;
    if (driver && (disk->src->format = xmlutil_prop(driver, "type"))) {
        if (strcmp(disk->src->format, "aio") == 0) {
            /* Xen back-compat: libvirt stores and prints raw */
            g_free(disk->src->format);
            disk->src->format = g_strdup("raw");
            domain_node_set_prop(driver, "type", "raw");
        } else if (!storage_format_is_known(disk->src->format)) {
            core_error_invalid(error, "unknown driver format value '%s'", disk->src->format);
            goto fail;
        }
    }
    if (target) {
        disk->dst = xmlutil_prop(target, "dev");
        disk->bus = xmlutil_prop(target, "bus");
    }
    if (target && disk->dst && !disk->bus) {
        /* libvirt picks the bus from the target name when none is given */
        disk->bus = g_strdup(domain_default_bus(disk));
        domain_node_set_prop(target, "bus", disk->bus);
    }
    if (!disk->dst) {
        if (disk->src->path)
            core_error_invalid(error, "missing target information for device %s", disk->src->path);
        else
            core_error_invalid(error, "missing target information");
        goto fail;
    }
    disk->readonly = xmlutil_child(node, "readonly") != NULL;
    disk->src->readonly = disk->readonly;
    /* libvirt always prints type= and device= first */
    if (!type)
        domain_node_set_prop(node, "type", "file");
    if (!xmlHasProp(node, (const xmlChar *)"device"))
        domain_node_set_prop(node, "device", "disk");
    xmlutil_reorder_attrs(node, (const char *const[]){ "type", "device", NULL });
    if (source && domain_source_is_empty(source, disk->src))
        domain_node_remove(source);
    return disk;

fail:
    disk_def_free(disk);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* The domain */

void
domain_free(DomainDef *def)
{
    if (!def)
        return;
    if (def->doc)
        xmlFreeDoc(def->doc);
    g_free(def->type);
    g_free(def->name);
    g_free(def->title);
    g_free(def->description);
    if (def->disks)
        g_ptr_array_unref(def->disks);
    g_free(def);
}

static DomainDef *
domain_def_new(void)
{
    DomainDef *def = g_new0(DomainDef, 1);

    def->disks = g_ptr_array_new_with_free_func(disk_def_free);
    def->vcpus_max = 1;
    return def;
}

/* Moves name, uuid, genid, title, description to the front in libvirt's order. */
static void
domain_reorder_ids(xmlNode *root)
{
    static const char *const order[] = { "description", "title", "genid", "uuid", "name" };

    for (guint i = 0; i < G_N_ELEMENTS(order); i++) {
        xmlNode *c = xmlutil_child(root, order[i]);

        if (c) {
            xmlUnlinkNode(c);
            domain_node_prepend(root, c);
        }
    }
}

/* virDomainParseMemory for <memory>: a scaled value rounded up to KiB. */
static guint64
domain_parse_memory(xmlNode *node)
{
    static const struct {
        const char *unit;
        guint64 scale;
    } units[] = {
        { "b", 1 }, { "bytes", 1 }, { "k", 1024 }, { "KiB", 1024 }, { "KB", 1000 },
        { "M", 1ULL << 20 }, { "MiB", 1ULL << 20 }, { "MB", 1000000 },
        { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "GB", 1000000000 },
        { "T", 1ULL << 40 }, { "TiB", 1ULL << 40 }, { "TB", 1000000000000ULL },
        { "P", 1ULL << 50 }, { "PiB", 1ULL << 50 }, { "PB", 1000000000000000ULL },
        { "E", 1ULL << 60 }, { "EiB", 1ULL << 60 }, { "EB", 1000000000000000000ULL },
    };
    g_autofree char *text = node ? xmlutil_text(node) : NULL;
    g_autofree char *unit = node ? xmlutil_prop(node, "unit") : NULL;
    guint64 scale = 1024;
    guint64 v;
    char *end = NULL;

    if (!text)
        return 0;
    if (unit) {
        guint i;

        for (i = 0; i < G_N_ELEMENTS(units); i++)
            if (g_ascii_strcasecmp(unit, units[i].unit) == 0 &&
                (strlen(unit) == 1 || strcmp(unit, units[i].unit) == 0 ||
                 g_ascii_strcasecmp(unit, "bytes") == 0))
                break;
        if (i == G_N_ELEMENTS(units))
            return 0;
        scale = units[i].scale;
    }
    v = g_ascii_strtoull(g_strstrip(text), &end, 10);
    if (!end || *end || (scale && v > G_MAXUINT64 / scale))
        return 0;
    v *= scale;
    return v / 1024 + (v % 1024 != 0);
}

static gboolean
domain_parse_ids(DomainDef *def, xmlNode *root, guint flags, gboolean legacy, GError **error)
{
    xmlNode *uuid_node = xmlutil_child(root, "uuid");
    g_autofree char *uuid = uuid_node ? xmlutil_text(uuid_node) : NULL;
    char buf[UTIL_UUID_STRLEN + 1];
    guint ngenid = xmlutil_count_children(root, "genid");

    def->name = xmlutil_child_text(root, "name");
    if (!def->name && !legacy)
        return core_error_invalid(error, "missing name information");
    if (uuid) {
        if (!util_uuid_parse(uuid, def->uuid))
            return core_error_invalid(error, "malformed uuid element");
        def->has_uuid = TRUE;
    } else if (flags & DOMAIN_PARSE_NO_UUID_OK) {
        util_uuid_generate(def->uuid);
        def->has_uuid = TRUE;
        if (!uuid_node) {
            uuid_node = domain_node_new(def->doc, "uuid");
            xmlAddChild(root, uuid_node);
        }
    } else {
        return core_error_invalid(error, "missing UUID");
    }
    util_uuid_format(def->uuid, buf);
    domain_node_set_text(uuid_node, buf);

    if (ngenid > 1)
        return core_error_invalid(error, "element 'genid' can only appear once");
    if (ngenid == 1) {
        xmlNode *node = xmlutil_child(root, "genid");
        g_autofree char *text = xmlutil_text(node);

        if (!text)
            util_uuid_generate(def->genid);   /* <genid/>: generated at parse time */
        else if (!util_uuid_parse(text, def->genid))
            return core_error_invalid(error, "malformed genid element");
        def->has_genid = TRUE;
        util_uuid_format(def->genid, buf);
        domain_node_set_text(node, buf);
    }
    return TRUE;
}

/* One number of passwdValidTo as libvirt's virStrToLong_i() reads it (strtol:
 * leading blanks and a sign allowed, an int, at least one digit), followed by
 * @sep. Advances *@p past @sep. */
static gboolean
domain_valid_to_field(const char **p, char sep)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(*p, &end, 10);
    if (errno || end == *p || v != (int)v || *end != sep)
        return FALSE;
    *p = end + (sep ? 1 : 0);
    return TRUE;
}

/* virDomainGraphicsAuthDefParseXML, for vnc and spice with a passwd attribute:
 * passwdValidTo is YYYY-MM-DDTHH:MM:SS read field by field (libvirt checks the
 * syntax only, not the ranges), then connected. */
static gboolean
domain_graphics_check(xmlNode *node, GError **error)
{
    static const char *const connected_values[] = { "fail", "disconnect", "keep", NULL };
    g_autofree char *type = xmlutil_prop(node, "type");
    g_autofree char *passwd = xmlutil_prop_raw(node, "passwd");
    g_autofree char *valid_to = NULL;
    g_autofree char *connected = NULL;

    if (!passwd || (g_strcmp0(type, "vnc") != 0 && g_strcmp0(type, "spice") != 0))
        return TRUE;
    if ((valid_to = xmlutil_prop_raw(node, "passwdValidTo"))) {
        const char *p = valid_to;

        if (!domain_valid_to_field(&p, '-') || !domain_valid_to_field(&p, '-') ||
            !domain_valid_to_field(&p, 'T') || !domain_valid_to_field(&p, ':') ||
            !domain_valid_to_field(&p, ':') || !domain_valid_to_field(&p, '\0'))
            return core_error_invalid(error, "cannot parse password validity time '%s', expect "
                                      "YYYY-MM-DDTHH:MM:SS", valid_to);
    }
    if ((connected = xmlutil_prop_raw(node, "connected"))) {
        if (!domain_str_in(connected, connected_values))
            return core_error_invalid(error, "unknown connected value %s", connected);
        if (strcmp(type, "vnc") == 0 && strcmp(connected, "keep") != 0)
            return core_error_invalid(error, "VNC supports connected='keep' only");
    }
    return TRUE;
}

static DomainDef *
domain_parse_doc(xmlDoc *doc, guint flags, GError **error)
{
    g_autoptr(DomainDef) def = domain_def_new();
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *devices;
    g_autofree char *vcpu = NULL;
    gboolean legacy;

    def->doc = doc;
    def->type = xmlutil_prop(root, "type");
    /* Old snapshot metadata embeds <domain><uuid>...</uuid></domain> only. */
    legacy = !def->type && !xmlutil_child(root, "name") && xmlutil_child(root, "uuid");
    if (!domain_parse_ids(def, root, flags, legacy, error))
        return NULL;
    if (!legacy) {
        xmlNode *os = xmlutil_child(root, "os");
        g_autofree char *ostype = os ? xmlutil_child_text(os, "type") : NULL;

        if (!def->type) {
            core_error_invalid(error, "missing domain type attribute");
            return NULL;
        }
        if (!domain_str_in(def->type, domain_virt_types)) {
            core_error_invalid(error, "invalid domain type %s", def->type);
            return NULL;
        }
        if (!ostype) {
            core_error_invalid(error, "an os <type> must be specified");
            return NULL;
        }
    }
    def->title = xmlutil_child_text(root, "title");
    def->description = xmlutil_child_text(root, "description");
    /* libvirt reads both as strings and prints nothing for an empty one */
    if (!def->title)
        domain_node_remove(xmlutil_child(root, "title"));
    if (!def->description)
        domain_node_remove(xmlutil_child(root, "description"));
    if ((vcpu = xmlutil_child_text(root, "vcpu")) && !xmlutil_parse_uip(vcpu, &def->vcpus_max)) {
        core_error_invalid(error, "maximum vcpus count must be an integer");
        return NULL;
    }
    def->memory_kib = domain_parse_memory(xmlutil_child(root, "memory"));
    def->current_memory_kib = domain_parse_memory(xmlutil_child(root, "currentMemory"));
    /* post-parse: the balloon starts full unless told otherwise */
    if (def->current_memory_kib == 0 || def->current_memory_kib > def->memory_kib)
        def->current_memory_kib = def->memory_kib;
    domain_reorder_ids(root);

    devices = xmlutil_child(root, "devices");
    for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next) {
        DiskDef *disk;

        if (!xmlutil_is_element(c, "disk"))
            continue;
        if (!(disk = domain_disk_parse(c, flags, error)))
            return NULL;
        g_ptr_array_add(def->disks, disk);
    }
    /* libvirt parses <graphics> after every disk */
    for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next)
        if (xmlutil_is_element(c, "graphics") && !domain_graphics_check(c, error))
            return NULL;
    return g_steal_pointer(&def);
}

DomainDef *
domain_parse(const char *buf, gsize len, guint flags, GError **error)
{
    xmlDoc *doc = xmlutil_read(buf, len, "domain", error);
    DomainDef *def;

    if (!doc)
        return NULL;
    if (!(def = domain_parse_doc(doc, flags, error)))
        return NULL;   /* domain_free() of the half-built def freed @doc */
    return def;
}

DomainDef *
domain_parse_node(xmlNode *node, guint flags, GError **error)
{
    xmlDoc *doc = xmlNewDoc((const xmlChar *)"1.0");
    xmlNode *copy = xmlDocCopyNode(node, doc, 1);

    xmlDocSetRootElement(doc, copy);
    /* <inactiveDomain> of a snapshot is a <domain> under another name */
    xmlNodeSetName(copy, (const xmlChar *)"domain");
    return domain_parse_doc(doc, flags, error);
}

/* Disk elements of @root in document order (what domain_parse_doc collected). */
static GPtrArray *
domain_disk_nodes(xmlNode *root)
{
    GPtrArray *nodes = g_ptr_array_new();
    xmlNode *devices = xmlutil_child(root, "devices");

    for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next)
        if (xmlutil_is_element(c, "disk"))
            g_ptr_array_add(nodes, c);
    return nodes;
}

DomainDef *
domain_copy(const DomainDef *def)
{
    DomainDef *copy = domain_def_new();
    g_autoptr(GPtrArray) nodes = NULL;

    copy->doc = xmlCopyDoc(def->doc, 1);
    copy->type = g_strdup(def->type);
    copy->name = g_strdup(def->name);
    memcpy(copy->uuid, def->uuid, sizeof(def->uuid));
    copy->has_uuid = def->has_uuid;
    copy->has_genid = def->has_genid;
    memcpy(copy->genid, def->genid, sizeof(def->genid));
    copy->title = g_strdup(def->title);
    copy->description = g_strdup(def->description);
    copy->vcpus_max = def->vcpus_max;
    copy->memory_kib = def->memory_kib;
    copy->current_memory_kib = def->current_memory_kib;
    nodes = domain_disk_nodes(xmlDocGetRootElement(copy->doc));
    g_assert(nodes->len == def->disks->len);
    for (guint i = 0; i < def->disks->len; i++) {
        const DiskDef *d = def->disks->pdata[i];
        DiskDef *c = g_new0(DiskDef, 1);

        c->device = g_strdup(d->device);
        c->dst = g_strdup(d->dst);
        c->bus = g_strdup(d->bus);
        c->snapshot = g_strdup(d->snapshot);
        c->readonly = d->readonly;
        c->src = storage_source_copy(d->src);
        c->node = nodes->pdata[i];
        g_ptr_array_add(copy->disks, c);
    }
    return copy;
}

/* ------------------------------------------------------------------ */
/* Formatting */

static gboolean
domain_is_http(const StorageSource *src)
{
    return src->type == STORAGE_TYPE_NETWORK &&
           (g_strcmp0(src->protocol, "http") == 0 || g_strcmp0(src->protocol, "https") == 0);
}

/* Applies the per-flag removals to a copy of a <disk> element whose model is @disk. */
static void
domain_strip_disk(xmlNode *node, const DiskDef *disk, guint flags)
{
    xmlNode *parent = node;
    const StorageSource *src = disk->src;
    gboolean top = TRUE;

    while (src && parent) {
        xmlNode *source = xmlutil_child(parent, "source");
        xmlNode *bs = xmlutil_child(parent, "backingStore");

        if (!(flags & DOMAIN_FORMAT_SECURE) && source && domain_is_http(src)) {
            xmlNode *cookies;

            while ((cookies = xmlutil_child(source, "cookies")))
                domain_node_remove(cookies);
        }
        if (!(flags & DOMAIN_FORMAT_LIVE)) {
            if (source)
                domain_node_unset_prop(source, "index");
            if (!top)
                domain_node_unset_prop(parent, "index");
        }
        if (!src->backing)
            break;
        if (!(flags & DOMAIN_FORMAT_LIVE) && src->backing->detected) {
            /* inactive XML does not show what probing found */
            domain_node_remove(bs);
            break;
        }
        parent = bs;
        src = src->backing;
        top = FALSE;
    }
}

static void
domain_strip(const DomainDef *def, xmlNode *root, guint flags)
{
    g_autoptr(GPtrArray) nodes = domain_disk_nodes(root);
    xmlNode *devices = xmlutil_child(root, "devices");

    g_assert(nodes->len == def->disks->len);
    for (guint i = 0; i < nodes->len; i++)
        domain_strip_disk(nodes->pdata[i], def->disks->pdata[i], flags);
    if (!(flags & DOMAIN_FORMAT_SECURE)) {
        for (xmlNode *c = devices ? devices->children : NULL; c; c = c->next)
            if (xmlutil_is_element(c, "graphics"))
                domain_node_unset_prop(c, "passwd");
    }
}

void
domain_format_buf(GString *out, const DomainDef *def, guint flags, int indent,
                  const char *root_name)
{
    xmlNode *copy = xmlDocCopyNode(xmlDocGetRootElement(def->doc), def->doc, 1);
    xmlNode *metadata = xmlutil_child(copy, "metadata");

    domain_strip(def, copy, flags);
    if (root_name)
        xmlNodeSetName(copy, (const xmlChar *)root_name);
    if (!metadata) {
        xmlutil_format_node(out, copy, indent);
    } else {
        /* Our serialiser for the rest, libxml2's layout for <metadata>: the
         * element is swapped for a placeholder comment, replaced afterwards. */
        g_autofree char *mark = g_strdup_printf("snapfs-metadata-%p", (void *)metadata);
        g_autofree char *line = NULL;
        xmlNode *placeholder = xmlNewDocComment(def->doc, (const xmlChar *)mark);
        GString *meta = g_string_new(NULL);
        GString *all = g_string_new(NULL);
        const char *at;
        const char *eol;
        gsize start;

        xmlReplaceNode(metadata, placeholder);
        xmlutil_format_node(all, copy, indent);
        line = g_strdup_printf("<!--%s-->\n", mark);
        at = strstr(all->str, line);
        g_assert(at);
        start = at - all->str;
        while (start > 0 && all->str[start - 1] == ' ')
            start--;
        eol = at + strlen(line);
        xmlutil_format_node_dump(meta, metadata, (int)((at - all->str) - start));
        g_string_append_len(out, all->str, start);
        g_string_append(out, meta->str);
        g_string_append(out, eol);
        g_string_free(meta, TRUE);
        g_string_free(all, TRUE);
        xmlFreeNode(metadata);
    }
    xmlFreeNode(copy);
}

char *
domain_format(const DomainDef *def, guint flags)
{
    GString *out = g_string_new(NULL);

    domain_format_buf(out, def, flags, 0, NULL);
    return g_string_free(out, FALSE);
}

char *
domain_disk_format(const DomainDef *def, const DiskDef *disk, guint flags)
{
    GString *out = g_string_new(NULL);
    xmlNode *copy = xmlDocCopyNode(disk->node, def->doc, 1);

    domain_strip_disk(copy, disk, flags);
    xmlutil_format_node(out, copy, 0);
    xmlFreeNode(copy);
    return g_string_free(out, FALSE);
}

/* ------------------------------------------------------------------ */
/* Lookups and mutations */

DiskDef *
domain_disk_by_name(const DomainDef *def, const char *name)
{
    DiskDef *found = NULL;

    for (guint i = 0; i < def->disks->len; i++) {
        DiskDef *disk = def->disks->pdata[i];

        if (*name != '/') {
            if (g_strcmp0(disk->dst, name) == 0)
                return disk;
        } else if (g_strcmp0(disk->src->path, name) == 0) {
            if (found)
                return NULL;   /* ambiguous */
            found = disk;
        }
    }
    return found;
}

/* A new <source> element (attributes and hosts) describing @src. */
static xmlNode *
domain_source_node_new(xmlDoc *doc, const StorageSource *src)
{
    xmlNode *node = domain_node_new(doc, "source");
    char buf[16];

    switch (src->type) {
    case STORAGE_TYPE_FILE:
    case STORAGE_TYPE_BLOCK:
    case STORAGE_TYPE_DIR:
        if (src->path)
            domain_node_set_prop(node, storage_source_path_attr(src->type), src->path);
        break;
    case STORAGE_TYPE_NETWORK:
        if (src->protocol)
            domain_node_set_prop(node, "protocol", src->protocol);
        if (src->name)
            domain_node_set_prop(node, "name", src->name);
        for (guint i = 0; i < src->hosts->len; i++) {
            const NetHost *h = src->hosts->pdata[i];
            xmlNode *hn = domain_node_new(doc, "host");
            guint port = h->port;

            if (!port && !h->transport)
                port = storage_source_default_port(src->protocol);
            if (h->name)
                domain_node_set_prop(hn, "name", h->name);
            if (port) {
                g_snprintf(buf, sizeof(buf), "%u", port);
                domain_node_set_prop(hn, "port", buf);
            }
            if (h->transport && strcmp(h->transport, "tcp") != 0)
                domain_node_set_prop(hn, "transport", h->transport);
            if (h->socket)
                domain_node_set_prop(hn, "socket", h->socket);
            xmlAddChild(node, hn);
        }
        break;
    case STORAGE_TYPE_VOLUME:
        if (src->pool)
            domain_node_set_prop(node, "pool", src->pool);
        if (src->name)
            domain_node_set_prop(node, "volume", src->name);
        break;
    case STORAGE_TYPE_NVME:
        domain_node_set_prop(node, "type", "pci");
        if (src->name)
            domain_node_set_prop(node, "namespace", src->name);
        break;
    case STORAGE_TYPE_VHOST_USER:
        domain_node_set_prop(node, "type", "unix");
        if (src->hosts->len && ((NetHost *)src->hosts->pdata[0])->socket)
            domain_node_set_prop(node, "path", ((NetHost *)src->hosts->pdata[0])->socket);
        break;
    case STORAGE_TYPE_NONE:
    default:
        break;
    }
    return node;
}

/* The <backingStore> chain for @src (model only), or NULL when unknown. */
static xmlNode *
domain_backing_node_new(xmlDoc *doc, const StorageSource *src)
{
    xmlNode *bs;
    xmlNode *fmt;
    xmlNode *below;
    char buf[16];

    if (!src->backing)
        return src->backing_terminated ? domain_node_new(doc, "backingStore") : NULL;
    src = src->backing;
    bs = domain_node_new(doc, "backingStore");
    domain_node_set_prop(bs, "type", storage_type_to_string(src->type));
    if (src->index) {
        g_snprintf(buf, sizeof(buf), "%u", src->index);
        domain_node_set_prop(bs, "index", buf);
    }
    fmt = domain_node_new(doc, "format");
    domain_node_set_prop(fmt, "type", src->format ? src->format : "raw");
    xmlAddChild(bs, fmt);
    xmlAddChild(bs, domain_source_node_new(doc, src));
    if ((below = domain_backing_node_new(doc, src)))
        xmlAddChild(bs, below);
    return bs;
}

void
domain_disk_set_source(DomainDef *def, DiskDef *disk, StorageSource *src,
                       gboolean keep_old_as_backing)
{
    StorageSource *old = disk->src;
    xmlNode *dnode = disk->node;
    xmlNode *old_source = xmlutil_child(dnode, "source");
    xmlNode *old_bs = xmlutil_child(dnode, "backingStore");
    xmlNode *driver = xmlutil_child(dnode, "driver");
    xmlNode *new_source = domain_source_node_new(def->doc, src);
    gboolean keep = keep_old_as_backing && old_source &&
                    (old->backing || old->backing_terminated);
    char buf[16];

    g_assert(src != old);
    if (src->index) {
        g_snprintf(buf, sizeof(buf), "%u", src->index);
        domain_node_set_prop(new_source, "index", buf);
    }
    if (old_source)
        xmlAddPrevSibling(old_source, new_source);
    else if (driver)
        xmlAddNextSibling(driver, new_source);
    else
        domain_node_prepend(dnode, new_source);

    if (keep) {
        xmlNode *bs = domain_node_new(def->doc, "backingStore");
        xmlNode *fmt = domain_node_new(def->doc, "format");

        domain_node_set_prop(bs, "type", storage_type_to_string(old->type));
        if (old->index) {
            g_snprintf(buf, sizeof(buf), "%u", old->index);
            domain_node_set_prop(bs, "index", buf);
        }
        domain_node_set_prop(fmt, "type", old->format ? old->format : "raw");
        xmlAddChild(bs, fmt);
        xmlUnlinkNode(old_source);
        /* the index moves to <backingStore>; startupPolicy is for the top only */
        domain_node_unset_prop(old_source, "index");
        domain_node_unset_prop(old_source, "startupPolicy");
        xmlAddChild(bs, old_source);
        if (old_bs) {
            xmlUnlinkNode(old_bs);
            xmlAddChild(bs, old_bs);
        }
        xmlAddNextSibling(new_source, bs);
        if (!old->format)
            old->format = g_strdup("raw");
        old->readonly = TRUE;
        storage_source_free(src->backing);
        src->backing = old;
        src->backing_terminated = FALSE;
    } else {
        xmlNode *chain = domain_backing_node_new(def->doc, src);

        domain_node_remove(old_source);
        domain_node_remove(old_bs);
        storage_source_free(old);
        if (chain)
            xmlAddNextSibling(new_source, chain);
    }

    if (src->format) {
        if (!driver) {
            driver = domain_node_new(def->doc, "driver");
            domain_node_set_prop(driver, "name", "qemu");
            xmlAddPrevSibling(new_source, driver);
        }
        domain_node_set_prop(driver, "type", src->format);
    } else if (driver) {
        domain_node_unset_prop(driver, "type");
    }
    domain_node_set_prop(dnode, "type", src->type == STORAGE_TYPE_NONE ?
                                        "file" : storage_type_to_string(src->type));
    src->readonly = disk->readonly;
    disk->src = src;
}

void
domain_set_genid(DomainDef *def, const guint8 *genid)
{
    xmlNode *root = xmlDocGetRootElement(def->doc);
    xmlNode *node = xmlutil_child(root, "genid");
    char buf[UTIL_UUID_STRLEN + 1];

    if (!genid) {
        domain_node_remove(node);
        def->has_genid = FALSE;
        memset(def->genid, 0, sizeof(def->genid));
        return;
    }
    memmove(def->genid, genid, UTIL_UUID_LEN);
    def->has_genid = TRUE;
    if (!node) {
        xmlNode *after = xmlutil_child(root, "uuid");

        if (!after)
            after = xmlutil_child(root, "name");
        node = domain_node_new(def->doc, "genid");
        if (after)
            xmlAddNextSibling(after, node);
        else
            domain_node_prepend(root, node);
    }
    util_uuid_format(def->genid, buf);
    domain_node_set_text(node, buf);
}

gboolean
domain_check_abi(const DomainDef *src, const DomainDef *dst, GError **error)
{
    char a[UTIL_UUID_STRLEN + 1];
    char b[UTIL_UUID_STRLEN + 1];

    /* Messages print the target first, as libvirt does. */
    if (g_strcmp0(src->type, dst->type) != 0)
        return core_error_invalid(error, "Target domain virt type %s does not match source %s",
                                  dst->type ? dst->type : "", src->type ? src->type : "");
    if (memcmp(src->uuid, dst->uuid, UTIL_UUID_LEN) != 0) {
        util_uuid_format(dst->uuid, a);
        util_uuid_format(src->uuid, b);
        return core_error_invalid(error, "Target domain uuid %s does not match source %s", a, b);
    }
    if (src->has_genid != dst->has_genid)
        return core_error_invalid(error, "Target domain requested genid does not match source");
    if (src->has_genid && memcmp(src->genid, dst->genid, UTIL_UUID_LEN) != 0) {
        util_uuid_format(dst->genid, a);
        util_uuid_format(src->genid, b);
        return core_error_invalid(error, "Target domain genid %s does not match source %s", a, b);
    }
    if (g_strcmp0(src->name, dst->name) != 0)
        return core_error_invalid(error, "Target domain name '%s' does not match source '%s'",
                                  dst->name ? dst->name : "", src->name ? src->name : "");
    if (src->memory_kib != dst->memory_kib)
        return core_error_invalid(error, "Target domain max memory %lld does not match source %lld",
                                  (long long)dst->memory_kib, (long long)src->memory_kib);
    if (src->current_memory_kib != dst->current_memory_kib)
        return core_error_invalid(error,
                                  "Target domain current memory %lld does not match source %lld",
                                  (long long)dst->current_memory_kib,
                                  (long long)src->current_memory_kib);
    if (src->vcpus_max != dst->vcpus_max)
        return core_error_invalid(error, "Target domain vCPU max %zu does not match source %zu",
                                  (size_t)dst->vcpus_max, (size_t)src->vcpus_max);
    if (src->disks->len != dst->disks->len)
        return core_error_invalid(error, "Target domain disk count %zu does not match source %zu",
                                  (size_t)dst->disks->len, (size_t)src->disks->len);
    for (guint i = 0; i < src->disks->len; i++) {
        const DiskDef *s = src->disks->pdata[i];
        const DiskDef *d = dst->disks->pdata[i];

        if (g_strcmp0(s->device, d->device) != 0)
            return core_error_invalid(error, "Target disk device %s does not match source %s",
                                      d->device, s->device);
        if (g_strcmp0(s->bus, d->bus) != 0)
            return core_error_invalid(error, "Target disk bus %s does not match source %s",
                                      d->bus ? d->bus : "", s->bus ? s->bus : "");
        if (g_strcmp0(s->dst, d->dst) != 0)
            return core_error_invalid(error, "Target disk %s does not match source %s", d->dst,
                                      s->dst);
    }
    return TRUE;
}

void
domain_add_image_refs(const DomainDef *dom, GPtrArray *out)
{
    for (guint i = 0; dom && i < dom->disks->len; i++) {
        const DiskDef *disk = dom->disks->pdata[i];

        for (const StorageSource *src = disk->src; src; src = src->backing) {
            if ((src->type != STORAGE_TYPE_FILE && src->type != STORAGE_TYPE_BLOCK) ||
                !src->path || !disk->dst)
                continue;
            g_ptr_array_add(out, g_strdup(disk->dst));
            g_ptr_array_add(out, g_strdup(src->path));
        }
    }
}
