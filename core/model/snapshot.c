/* snapshot.c: libvirt 9.0's <domainsnapshot>: parse (create, redefine, metadata), align, format. */
#include "snapshot.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "util.h"
#include "xmlutil.h"

/* virDomainSnapshotState: virDomainState, then disk-snapshot. */
static const char *const snapshot_state_names[] = {
    "nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed",
    "pmsuspended", "disk-snapshot",
};

/* virDomainSnapshotLocation; DEFAULT prints as "" (never emitted). */
static const char *const snapshot_location_names[] = {
    "default", "no", "internal", "external", "manual",
};

/* virStorageType as libvirt 9.0 spells it, in StorageType order. */
static const char *const snapshot_storage_type_names[] = {
    "none", "file", "block", "dir", "network", "volume", "nvme", "vhostuser",
};

static int
snapshot_enum_from_string(const char *const *names, guint n, const char *str)
{
    if (!str)
        return -1;
    for (guint i = 0; i < n; i++)
        if (g_str_equal(names[i], str))
            return (int)i;
    return -1;
}

const char *
snapshot_state_to_string(SnapState state)
{
    if ((guint)state >= G_N_ELEMENTS(snapshot_state_names))
        return "";
    return snapshot_state_names[state];
}

int
snapshot_state_from_string(const char *str)
{
    return snapshot_enum_from_string(snapshot_state_names, G_N_ELEMENTS(snapshot_state_names), str);
}

const char *
snapshot_location_to_string(SnapLocation loc)
{
    if (loc == SNAP_LOC_DEFAULT || (guint)loc >= G_N_ELEMENTS(snapshot_location_names))
        return "";
    return snapshot_location_names[loc];
}

int
snapshot_location_from_string(const char *str)
{
    return snapshot_enum_from_string(snapshot_location_names, G_N_ELEMENTS(snapshot_location_names),
                                     str);
}

/* ------------------------------------------------------------------------- */
/* Objects */

SnapDiskDef *
snapshot_disk_def_new(void)
{
    SnapDiskDef *disk = g_new0(SnapDiskDef, 1);

    disk->src = storage_source_new();
    disk->src->type = STORAGE_TYPE_FILE;
    return disk;
}

void
snapshot_disk_def_free(SnapDiskDef *disk)
{
    if (!disk)
        return;
    g_free(disk->name);
    storage_source_free(disk->src);
    g_free(disk);
}

SnapDiskDef *
snapshot_disk_def_copy(const SnapDiskDef *disk)
{
    SnapDiskDef *copy = g_new0(SnapDiskDef, 1);

    copy->name = g_strdup(disk->name);
    copy->snapshot = disk->snapshot;
    copy->src = disk->src ? storage_source_copy(disk->src) : storage_source_new();
    copy->delete_in_progress = disk->delete_in_progress;
    copy->metadata_cache_max_size = disk->metadata_cache_max_size;
    return copy;
}

SnapshotDef *
snapshot_def_new(void)
{
    SnapshotDef *def = g_new0(SnapshotDef, 1);

    def->disks = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_disk_def_free);
    def->active = -1;
    return def;
}

void
snapshot_def_free(SnapshotDef *def)
{
    if (!def)
        return;
    g_free(def->name);
    g_free(def->description);
    g_free(def->parent);
    g_free(def->memory_file);
    if (def->disks)
        g_ptr_array_unref(def->disks);
    domain_free(def->dom);
    domain_free(def->inactive_dom);
    g_free(def->cookie);
    g_free(def->light_token);
    g_strfreev(def->light_images);
    g_free(def);
}

SnapshotDef *
snapshot_def_copy(const SnapshotDef *def)
{
    SnapshotDef *copy = snapshot_def_new();

    copy->name = g_strdup(def->name);
    copy->description = g_strdup(def->description);
    copy->state = def->state;
    copy->parent = g_strdup(def->parent);
    copy->creation_time = def->creation_time;
    copy->memory = def->memory;
    copy->memory_file = g_strdup(def->memory_file);
    for (guint i = 0; def->disks && i < def->disks->len; i++)
        g_ptr_array_add(copy->disks, snapshot_disk_def_copy(def->disks->pdata[i]));
    copy->dom = def->dom ? domain_copy(def->dom) : NULL;
    copy->has_legacy_uuid = def->has_legacy_uuid;
    memcpy(copy->legacy_uuid, def->legacy_uuid, sizeof(copy->legacy_uuid));
    copy->inactive_dom = def->inactive_dom ? domain_copy(def->inactive_dom) : NULL;
    copy->cookie = g_strdup(def->cookie);
    copy->active = def->active;
    copy->light_token = g_strdup(def->light_token);
    copy->light_dom = def->light_dom;
    copy->light_images = g_strdupv(def->light_images);
    return copy;
}

char **
snapshot_image_refs(const SnapshotDef *def)
{
    g_autoptr(GPtrArray) out = NULL;

    if (def->light_token)
        return g_strdupv(def->light_images);
    out = g_ptr_array_new_with_free_func(g_free);
    domain_add_image_refs(def->dom, out);
    domain_add_image_refs(def->inactive_dom, out);
    if (!out->len)
        return NULL;
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&out), FALSE);
}

void
snapshot_make_light(SnapshotDef *def, const char *token)
{
    char **refs = snapshot_image_refs(def);

    def->light_dom = def->dom != NULL;
    g_strfreev(def->light_images);
    def->light_images = refs;
    g_clear_pointer(&def->dom, domain_free);
    g_clear_pointer(&def->inactive_dom, domain_free);
    g_free(def->light_token);
    def->light_token = g_strdup(token);
}

void
snapshot_keep_relations(SnapshotDef *full, const SnapshotDef *light)
{
    g_free(full->parent);
    full->parent = g_strdup(light->parent);
    full->active = light->active;
}

/* ------------------------------------------------------------------------- */
/* Parsing helpers */

/* virXMLPropEnumDefault with VIR_XML_PROP_NONZERO: absent -> @dflt (TRUE), a
 * value that is unknown or the zero value -> libvirt's error. */
static gboolean
snapshot_prop_enum(xmlNode *node, const char *attr, const char *const *names, guint n, int dflt,
                   int *out, GError **error)
{
    xmlChar *raw = xmlGetNoNsProp(node, (const xmlChar *)attr);
    int v;

    if (!raw) {
        *out = dflt;
        return TRUE;
    }
    v = snapshot_enum_from_string(names, n, (const char *)raw);
    if (v <= 0) {
        xmlutil_bad_attr(error, CORE_ERROR_PARSE, node, attr, (const char *)raw);
        xmlFree(raw);
        return FALSE;
    }
    xmlFree(raw);
    *out = v;
    return TRUE;
}

/* virScaleInteger with scale 1 and limit G_MAXUINT64. */
static gboolean
snapshot_scale_integer(guint64 *value, const char *suffix, GError **error)
{
    guint64 scale = 1;

    if (suffix && *suffix && g_ascii_strcasecmp(suffix, "b") != 0 &&
        g_ascii_strcasecmp(suffix, "byte") != 0 && g_ascii_strcasecmp(suffix, "bytes") != 0) {
        guint64 base;
        int power;

        if (!suffix[1] || g_ascii_strcasecmp(suffix + 1, "iB") == 0) {
            base = 1024;
        } else if (g_ascii_strcasecmp(suffix + 1, "B") == 0) {
            base = 1000;
        } else {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "unknown suffix '%s'", suffix);
            return FALSE;
        }
        switch (g_ascii_tolower(*suffix)) {
        case 'k': power = 1; break;
        case 'm': power = 2; break;
        case 'g': power = 3; break;
        case 't': power = 4; break;
        case 'p': power = 5; break;
        case 'e': power = 6; break;
        default:
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "unknown suffix '%s'", suffix);
            return FALSE;
        }
        while (power--)
            scale *= base;
    }
    if (*value > G_MAXUINT64 / scale) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "value too large: %" G_GUINT64_FORMAT "%s", *value, suffix ? suffix : "");
        return FALSE;
    }
    *value *= scale;
    return TRUE;
}

/* virParseScaledValue("./driver/metadata_cache/max_size", NULL, ..., 1, ULLONG_MAX, false). */
static gboolean
snapshot_parse_metadata_cache(xmlNode *disk, guint64 *out, GError **error)
{
    static const char xpath[] = "./driver/metadata_cache/max_size";
    xmlNode *size = xmlutil_child(xmlutil_child(xmlutil_child(disk, "driver"), "metadata_cache"),
                                  "max_size");
    g_autofree char *text = size ? xmlutil_text(size) : NULL;
    g_autofree char *unit = NULL;
    guint64 bytes = 0;

    *out = 0;
    if (!text)
        return TRUE;
    if (!xmlutil_parse_ullp(text, &bytes)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "Invalid value '%s' for element or attribute '%s'", text, xpath);
        return FALSE;
    }
    unit = xmlutil_prop(size, "unit");
    if (!snapshot_scale_integer(&bytes, unit, error))
        return FALSE;
    *out = bytes;
    return TRUE;
}

/* virDomainSnapshotDiskDefParseXML. */
static SnapDiskDef *
snapshot_parse_disk(xmlNode *node, guint flags, GError **error)
{
    g_autoptr(SnapDiskDef) disk = g_new0(SnapDiskDef, 1);
    g_autofree char *driver = NULL;
    xmlChar *name = xmlGetNoNsProp(node, (const xmlChar *)"name");
    xmlNode *source;
    int v;

    disk->src = storage_source_new();
    if (!name) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                            "missing name from disk snapshot element");
        return NULL;
    }
    disk->name = g_strdup((const char *)name);
    xmlFree(name);

    if (!snapshot_prop_enum(node, "snapshot", snapshot_location_names,
                            G_N_ELEMENTS(snapshot_location_names), SNAP_LOC_DEFAULT, &v, error))
        return NULL;
    disk->snapshot = v;
    if (!snapshot_prop_enum(node, "type", snapshot_storage_type_names,
                            G_N_ELEMENTS(snapshot_storage_type_names), STORAGE_TYPE_FILE, &v,
                            error))
        return NULL;
    disk->src->type = v;
    if (disk->src->type == STORAGE_TYPE_VOLUME || disk->src->type == STORAGE_TYPE_DIR) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "unsupported disk snapshot type '%s'",
                    snapshot_storage_type_names[disk->src->type]);
        return NULL;
    }
    if (flags & SNAPSHOT_PARSE_REDEFINE)
        disk->delete_in_progress = xmlutil_child(node, "snapshotDeleteInProgress") != NULL;

    /* Seclabels, encryption and the like inside a snapshot's <source> are not kept. */
    if ((source = xmlutil_child(node, "source")) &&
        !storage_source_parse(source, disk->src, STORAGE_PARSE_SNAPSHOT, error))
        return NULL;

    if (xmlutil_child(node, "driver"))
        driver = xmlutil_prop(xmlutil_child(node, "driver"), "type");
    if (driver) {
        if (!storage_format_is_known(driver)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "unknown disk snapshot driver '%s'", driver);
            return NULL;
        }
        disk->src->format = g_steal_pointer(&driver);
    }

    if (!snapshot_parse_metadata_cache(node, &disk->metadata_cache_max_size, error))
        return NULL;

    /* virStorageSourceIsRelative */
    if (disk->src->path && !g_path_is_absolute(disk->src->path) &&
        (disk->src->type == STORAGE_TYPE_FILE || disk->src->type == STORAGE_TYPE_BLOCK)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "disk snapshot image path '%s' must be absolute", disk->src->path);
        return NULL;
    }

    /* libvirt keeps a network source's name in src->path: it counts as a path. */
    if (disk->snapshot == SNAP_LOC_DEFAULT &&
        (disk->src->path || disk->src->format ||
         (disk->src->type == STORAGE_TYPE_NETWORK && disk->src->name)))
        disk->snapshot = SNAP_LOC_EXTERNAL;
    return g_steal_pointer(&disk);
}

/* The <domain> of a snapshot: full (with type=) or the old uuid-only form. */
static gboolean
snapshot_parse_domain(SnapshotDef *def, xmlNode *root, GError **error)
{
    xmlNode *node = xmlutil_child(root, "domain");
    g_autofree char *type = node ? xmlutil_prop(node, "type") : NULL;
    xmlNode *inactive;

    if (type) {
        if (!(def->dom = domain_parse_node(node, DOMAIN_PARSE_INACTIVE | DOMAIN_PARSE_NO_UUID_OK,
                                           error)))
            return FALSE;
    } else if (node) {
        /* "parsing older snapshot that lacks domain": dom stays NULL. */
        g_autofree char *uuid = xmlutil_child_text(node, "uuid");

        g_debug("parsing older snapshot that lacks domain");
        if (uuid && util_uuid_parse(uuid, def->legacy_uuid))
            def->has_legacy_uuid = TRUE;
    }
    if ((inactive = xmlutil_child(root, "inactiveDomain")) &&
        !(def->inactive_dom = domain_parse_node(inactive,
                                                DOMAIN_PARSE_INACTIVE | DOMAIN_PARSE_NO_UUID_OK,
                                                error)))
        return FALSE;
    return TRUE;
}

/* The <cookie> element serialised at indent 0, kept as it was written. */
static char *
snapshot_serialize_cookie(xmlNode *cookie)
{
    GString *out = g_string_new(NULL);

    xmlutil_format_node(out, cookie, 0);
    return g_string_free(out, FALSE);
}

SnapshotDef *
snapshot_parse_node(xmlNode *root, guint flags, GError **error)
{
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    gboolean offline = (flags & SNAPSHOT_PARSE_OFFLINE) != 0;
    gboolean redefine = (flags & SNAPSHOT_PARSE_REDEFINE) != 0;
    xmlNode *node;

    if (!root || root->type != XML_ELEMENT_NODE ||
        !xmlStrEqual(root->name, (const xmlChar *)"domainsnapshot")) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "unexpected root element <%s>, expecting <domainsnapshot>",
                    root ? (const char *)root->name : "");
        return NULL;
    }

    def->name = xmlutil_child_text(root, "name");
    if (!def->name && redefine) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                            "a redefined snapshot must have a name");
        return NULL;
    }
    def->description = xmlutil_child_text(root, "description");

    if (redefine) {
        g_autofree char *ctime = xmlutil_child_text(root, "creationTime");
        g_autofree char *state = NULL;
        int st;

        if (!xmlutil_parse_ll(ctime, &def->creation_time)) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                                "missing creationTime from existing snapshot");
            return NULL;
        }
        def->parent = xmlutil_child_text(xmlutil_child(root, "parent"), "name");
        if (!(state = xmlutil_child_text(root, "state"))) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                                "missing state from existing snapshot");
            return NULL;
        }
        if ((st = snapshot_state_from_string(state)) <= 0) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                        "Invalid state '%s' in domain snapshot XML", state);
            return NULL;
        }
        def->state = st;
        offline = def->state == SNAP_STATE_SHUTOFF || def->state == SNAP_STATE_DISK_SNAPSHOT;
        if (!snapshot_parse_domain(def, root, error))
            return NULL;
    } else {
        /* virDomainMomentDefPostParse: state, parent, creationTime and the
         * domain come from the VM, not from the XML. */
        def->creation_time = g_get_real_time() / G_USEC_PER_SEC;
        if (!def->name)
            def->name = g_strdup_printf("%" G_GINT64_FORMAT, def->creation_time);
    }

    if ((node = xmlutil_child(root, "memory"))) {
        int v;

        def->memory_file = xmlutil_prop(node, "file");
        if (!snapshot_prop_enum(node, "snapshot", snapshot_location_names,
                                G_N_ELEMENTS(snapshot_location_names), SNAP_LOC_DEFAULT, &v, error))
            return NULL;
        def->memory = v;
        if (def->memory == SNAP_LOC_MANUAL) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                                "'manual' memory snapshot mode not supported");
            return NULL;
        }
    }
    if (def->memory == SNAP_LOC_DEFAULT) {
        if (def->memory_file)
            def->memory = SNAP_LOC_EXTERNAL;
        else if (redefine)
            def->memory = offline ? SNAP_LOC_NO : SNAP_LOC_INTERNAL;
    }
    if (def->memory_file && def->memory != SNAP_LOC_EXTERNAL) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "memory filename '%s' requires external snapshot", def->memory_file);
        return NULL;
    }
    if (!def->memory_file && def->memory == SNAP_LOC_EXTERNAL) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "external memory snapshots require a filename");
        return NULL;
    }
    if (offline && def->memory != SNAP_LOC_DEFAULT && def->memory != SNAP_LOC_NO) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "memory state cannot be saved with offline or disk-only snapshot");
        return NULL;
    }
    if (def->memory_file && !g_path_is_absolute(def->memory_file)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "memory snapshot file path (%s) must be absolute", def->memory_file);
        return NULL;
    }

    /* Every element child of <disks> counts as a disk, whatever its name (./disks/ *). */
    for (xmlNode *c = (node = xmlutil_child(root, "disks")) ? node->children : NULL; c;
         c = c->next) {
        SnapDiskDef *disk;

        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (!(disk = snapshot_parse_disk(c, flags, error)))
            return NULL;
        g_ptr_array_add(def->disks, disk);
    }

    if (flags & SNAPSHOT_PARSE_INTERNAL) {
        g_autofree char *active = xmlutil_child_text(root, "active");
        gint64 v = 0;

        /* virXPathInt: a base-10 int, nothing after it. */
        if (!xmlutil_parse_ll(active, &v) || v < G_MININT || v > G_MAXINT) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                                "Could not find 'active' element");
            return NULL;
        }
        def->active = v != 0;
    }

    /* The save cookie belongs to a running VM's state: libvirt reads it only
     * for an online snapshot, and on create qemu replaces it with its own. */
    if (redefine && !offline && (node = xmlutil_child(root, "cookie")))
        def->cookie = snapshot_serialize_cookie(node);

    return g_steal_pointer(&def);
}

SnapshotDef *
snapshot_parse(const char *buf, gsize len, guint flags, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlutil_read(buf, len, "domainsnapshot", error);

    if (!doc)
        return NULL;
    return snapshot_parse_node(xmlDocGetRootElement(doc), flags, error);
}

/* ------------------------------------------------------------------------- */
/* Rules */

gboolean
snapshot_check_name(const char *name, GError **error)
{
    if (strchr(name, '/')) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "invalid snapshot name '%s': name can't contain '/'", name);
        return FALSE;
    }
    if (name[0] == '.') {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "invalid snapshot name '%s': name can't start with '.'", name);
        return FALSE;
    }
    return TRUE;
}

gboolean
snapshot_check_state(SnapState state, gboolean redefine, GError **error)
{
    switch (state) {
    case SNAP_STATE_RUNNING:
    case SNAP_STATE_PAUSED:
    case SNAP_STATE_SHUTDOWN:
    case SNAP_STATE_SHUTOFF:
    case SNAP_STATE_CRASHED:
        return TRUE;
    case SNAP_STATE_DISK_SNAPSHOT:
        if (redefine)
            return TRUE;
        break;
    case SNAP_STATE_PMSUSPENDED:
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "qemu doesn't support taking snapshots of PMSUSPENDED guests");
        return FALSE;
    case SNAP_STATE_NOSTATE:
    case SNAP_STATE_BLOCKED:
    default:
        break;
    }
    g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "Invalid domain state %s",
                snapshot_state_to_string(state));
    return FALSE;
}

gboolean
snapshot_is_external(const SnapshotDef *def)
{
    if (def->memory == SNAP_LOC_EXTERNAL)
        return TRUE;
    for (guint i = 0; i < def->disks->len; i++)
        if (((SnapDiskDef *)def->disks->pdata[i])->snapshot == SNAP_LOC_EXTERNAL)
            return TRUE;
    return FALSE;
}

char *
snapshot_external_name(const char *path, const char *snapname)
{
    g_autofree char *base = g_strdup(path);
    char *dot = strrchr(base, '.');

    /* Drop the suffix of the file name only: a dot in a directory name does not count. */
    if (dot && !strchr(dot, '/'))
        *dot = '\0';
    return g_strdup_printf("%s.%s", base, snapname);
}

/* libvirt's src->path: the file/device path, or a network source's name. */
static const char *
snapshot_src_path(const StorageSource *src)
{
    return src->type == STORAGE_TYPE_NETWORK ? src->name : src->path;
}

/* The domain disk's snapshot= as libvirt holds it after virDomainDiskDefPostParse:
 * a read-only or vhost-user disk without the attribute is "no". */
static SnapLocation
snapshot_domain_disk_location(const DiskDef *disk)
{
    int loc = snapshot_location_from_string(disk->snapshot);

    if (loc <= 0) {
        loc = SNAP_LOC_DEFAULT;
        if (disk->readonly || (disk->src && disk->src->readonly) ||
            (disk->src && disk->src->type == STORAGE_TYPE_VHOST_USER))
            loc = SNAP_LOC_NO;
    }
    return loc;
}

/* virDomainSnapshotDefAssignExternalNames: @def->disks is aligned with @dom->disks. */
static gboolean
snapshot_assign_external_names(SnapshotDef *def, const DomainDef *dom, GError **error)
{
    for (guint i = 0; i < def->disks->len; i++) {
        SnapDiskDef *disk = def->disks->pdata[i];
        const DiskDef *domdisk = dom->disks->pdata[i];
        const char *origpath;
        struct stat sb;

        if (disk->snapshot != SNAP_LOC_EXTERNAL || snapshot_src_path(disk->src))
            continue;
        if (disk->src->type != STORAGE_TYPE_FILE) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "cannot generate external snapshot name for disk '%s' on a '%s' device",
                        disk->name, snapshot_storage_type_names[disk->src->type]);
            return FALSE;
        }
        /* virDomainSnapshotDefAssignExternalNames takes a network source's name as its path. */
        if (!(origpath = domdisk->src ? snapshot_src_path(domdisk->src) : NULL)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "cannot generate external snapshot name for disk '%s' without source",
                        disk->name);
            return FALSE;
        }
        if (!util_path_outside(origpath, error)) {
            g_prefix_error(error, "cannot use the source of disk '%s': ", disk->name);
            return FALSE;
        }
        if (!util_path_stat(origpath, FALSE, &sb, NULL) || !S_ISREG(sb.st_mode)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "source for disk '%s' is not a regular file; "
                        "refusing to generate external snapshot name", disk->name);
            return FALSE;
        }
        disk->src->path = snapshot_external_name(origpath, def->name);
        for (guint j = 0; j < i; j++) {
            SnapDiskDef *other = def->disks->pdata[j];

            if (g_strcmp0(disk->src->path, other->src->path) == 0) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "cannot generate external snapshot name for disk '%s': "
                            "collision with disk '%s'", disk->name, other->name);
                return FALSE;
            }
        }
    }
    return TRUE;
}

gboolean
snapshot_align_disks(SnapshotDef *def, const DomainDef *dom, SnapLocation default_loc,
                     gboolean assign_names, GError **error)
{
    g_autoptr(GHashTable) map = NULL;
    g_autoptr(GPtrArray) olddisks = NULL;
    g_autoptr(GPtrArray) aligned = NULL;
    gboolean require_match = default_loc == SNAP_LOC_INTERNAL;

    if (!dom) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID, "missing domain in snapshot");
        return FALSE;
    }
    if (def->disks->len > dom->disks->len) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "too many disk snapshot requests for domain");
        return FALSE;
    }
    if (dom->disks->len == 0)
        return TRUE;

    /* Work on the old entries and install the result only on success. */
    olddisks = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_disk_def_free);
    for (guint i = 0; i < def->disks->len; i++)
        g_ptr_array_add(olddisks, snapshot_disk_def_copy(def->disks->pdata[i]));
    map = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < olddisks->len; i++) {
        SnapDiskDef *snapdisk = olddisks->pdata[i];
        DiskDef *domdisk = domain_disk_by_name(dom, snapdisk->name);
        int domloc;

        if (!domdisk) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "no disk named '%s'",
                        snapdisk->name);
            return FALSE;
        }
        if (g_hash_table_contains(map, domdisk->dst)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "disk '%s' specified twice",
                        snapdisk->name);
            return FALSE;
        }
        g_hash_table_insert(map, domdisk->dst, snapdisk);

        domloc = snapshot_domain_disk_location(domdisk);
        if (snapdisk->snapshot == SNAP_LOC_DEFAULT) {
            if (domloc != SNAP_LOC_DEFAULT && (!require_match || domloc == SNAP_LOC_NO))
                snapdisk->snapshot = domloc;
            else
                snapdisk->snapshot = default_loc;
        } else if (require_match && snapdisk->snapshot != default_loc &&
                   !(snapdisk->snapshot == SNAP_LOC_NO && domloc == SNAP_LOC_NO)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "disk '%s' must use snapshot mode '%s'", snapdisk->name,
                        snapshot_location_to_string(default_loc));
            return FALSE;
        }
        if (snapshot_src_path(snapdisk->src) && snapdisk->snapshot != SNAP_LOC_EXTERNAL) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "file '%s' for disk '%s' requires use of external snapshot mode",
                        snapshot_src_path(snapdisk->src), snapdisk->name);
            return FALSE;
        }
        if (g_strcmp0(snapdisk->name, domdisk->dst) != 0) {
            g_free(snapdisk->name);
            snapdisk->name = g_strdup(domdisk->dst);
        }
    }

    aligned = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_disk_def_free);
    for (guint i = 0; i < dom->disks->len; i++) {
        const DiskDef *domdisk = dom->disks->pdata[i];
        SnapDiskDef *existing = g_hash_table_lookup(map, domdisk->dst);
        SnapDiskDef *snapdisk;

        if (existing) {
            g_ptr_array_add(aligned, snapshot_disk_def_copy(existing));
            continue;
        }
        snapdisk = snapshot_disk_def_new();
        snapdisk->name = g_strdup(domdisk->dst);
        if (storage_source_is_empty(domdisk->src)) {
            snapdisk->snapshot = SNAP_LOC_NO;
        } else {
            snapdisk->snapshot = snapshot_domain_disk_location(domdisk);
        }
        if (snapdisk->snapshot == SNAP_LOC_DEFAULT)
            snapdisk->snapshot = default_loc;
        g_ptr_array_add(aligned, snapdisk);
    }

    {
        /* Names are generated on the aligned list; install it only on success. */
        GPtrArray *old = def->disks;

        def->disks = aligned;
        if (assign_names && !snapshot_assign_external_names(def, dom, error)) {
            def->disks = old;
            return FALSE;
        }
        aligned = old;   /* freed on return */
    }
    return TRUE;
}

/* Checks 2-5 of virDomainSnapshotRedefineValidate. */
static gboolean
snapshot_redefine_checks(const SnapshotDef *def, const SnapshotDef *old, const DomainDef *dom,
                         gboolean disk_only_flag, GError **error)
{
    if (disk_only_flag && def->state != SNAP_STATE_DISK_SNAPSHOT) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "disk-only flag for snapshot %s requires disk-snapshot state", def->name);
        return FALSE;
    }
    if (def->dom && dom && memcmp(def->dom->uuid, dom->uuid, UTIL_UUID_LEN) != 0) {
        char uuidstr[UTIL_UUID_STRLEN + 1];

        util_uuid_format(dom->uuid, uuidstr);
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "definition for snapshot %s must use uuid %s", def->name, uuidstr);
        return FALSE;
    }
    if (old) {
        gboolean old_online = old->state == SNAP_STATE_RUNNING || old->state == SNAP_STATE_PAUSED;
        gboolean new_online = def->state == SNAP_STATE_RUNNING || def->state == SNAP_STATE_PAUSED;

        if (old_online != new_online) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "cannot change between online and offline snapshot state in snapshot %s",
                        def->name);
            return FALSE;
        }
        if ((old->state == SNAP_STATE_DISK_SNAPSHOT) != (def->state == SNAP_STATE_DISK_SNAPSHOT)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "cannot change between disk only and full system in snapshot %s",
                        def->name);
            return FALSE;
        }
        if (old->dom && def->dom && !domain_check_abi(old->dom, def->dom, error))
            return FALSE;
    }
    /* Check 5: a new name gets no ABI check against the VM. */
    return TRUE;
}

gboolean
snapshot_redefine_prep(SnapshotDef *def, const SnapshotDef *old, const DomainDef *dom,
                       gboolean disk_only_flag, GError **error)
{
    SnapLocation loc = SNAP_LOC_INTERNAL;

    if (!snapshot_redefine_checks(def, old, dom, disk_only_flag, error))
        return FALSE;
    if (def->state == SNAP_STATE_DISK_SNAPSHOT || snapshot_is_external(def))
        loc = SNAP_LOC_EXTERNAL;
    return snapshot_align_disks(def, def->dom ? def->dom : (old ? old->dom : NULL), loc, TRUE,
                                error);
}

gboolean
snapshot_redefine_validate(const SnapshotDef *def, const SnapshotDef *old, const DomainDef *dom,
                           gboolean disk_only_flag, GError **error)
{
    g_autoptr(SnapshotDef) copy = snapshot_def_copy(def);

    return snapshot_redefine_prep(copy, old, dom, disk_only_flag, error);
}

/* ------------------------------------------------------------------------- */
/* Formatting */

/* virDomainSnapshotDiskDefFormat */
static void
snapshot_format_disk(GString *out, const SnapDiskDef *disk, int indent)
{
    const StorageSource *src = disk->src;
    gboolean has_source = snapshot_src_path(src) || src->format;

    if (!disk->name)
        return;
    xmlutil_indent(out, indent);
    g_string_append(out, "<disk name='");
    xmlutil_escape(out, disk->name);
    g_string_append_c(out, '\'');
    if (disk->snapshot != SNAP_LOC_DEFAULT)
        g_string_append_printf(out, " snapshot='%s'", snapshot_location_to_string(disk->snapshot));
    if (has_source)
        g_string_append_printf(out, " type='%s'", snapshot_storage_type_names[src->type]);
    if (!has_source && !disk->delete_in_progress) {
        g_string_append(out, "/>\n");
        return;
    }
    g_string_append(out, ">\n");
    if (disk->delete_in_progress) {
        xmlutil_indent(out, indent + 2);
        g_string_append(out, "<snapshotDeleteInProgress/>\n");
    }
    if (has_source) {
        if (src->format || disk->metadata_cache_max_size) {
            xmlutil_indent(out, indent + 2);
            g_string_append(out, "<driver");
            if (src->format) {
                g_string_append(out, " type='");
                xmlutil_escape(out, src->format);
                g_string_append_c(out, '\'');
            }
            if (disk->metadata_cache_max_size) {
                g_string_append(out, ">\n");
                xmlutil_indent(out, indent + 4);
                g_string_append(out, "<metadata_cache>\n");
                xmlutil_indent(out, indent + 6);
                g_string_append_printf(out, "<max_size unit='bytes'>%" G_GUINT64_FORMAT
                                       "</max_size>\n", disk->metadata_cache_max_size);
                xmlutil_indent(out, indent + 4);
                g_string_append(out, "</metadata_cache>\n");
                xmlutil_indent(out, indent + 2);
                g_string_append(out, "</driver>\n");
            } else {
                g_string_append(out, "/>\n");
            }
        }
        storage_source_format(out, src, indent + 2);
    }
    xmlutil_indent(out, indent);
    g_string_append(out, "</disk>\n");
}

/* Appends the kept <cookie> re-indented by @indent. */
static void
snapshot_format_cookie(GString *out, const char *cookie, int indent)
{
    g_auto(GStrv) lines = g_strsplit(cookie, "\n", -1);

    for (guint i = 0; lines[i]; i++) {
        if (!*lines[i])
            continue;
        xmlutil_indent(out, indent);
        g_string_append(out, lines[i]);
        g_string_append_c(out, '\n');
    }
}

char *
snapshot_format(const SnapshotDef *def, guint flags)
{
    GString *out = g_string_new("<domainsnapshot>\n");
    guint domflags = (flags & SNAPSHOT_FORMAT_SECURE) ? DOMAIN_FORMAT_SECURE : 0;

    if (def->name) {   /* virBufferEscapeString drops the line for NULL */
        g_string_append(out, "  <name>");
        xmlutil_escape(out, def->name);
        g_string_append(out, "</name>\n");
    }
    if (def->description) {
        g_string_append(out, "  <description>");
        xmlutil_escape(out, def->description);
        g_string_append(out, "</description>\n");
    }
    if (def->state)
        g_string_append_printf(out, "  <state>%s</state>\n", snapshot_state_to_string(def->state));
    if (def->parent) {
        g_string_append(out, "  <parent>\n    <name>");
        xmlutil_escape(out, def->parent);
        g_string_append(out, "</name>\n  </parent>\n");
    }
    /* libvirt omits a zero creationTime, but a redefine accepts <creationTime>0</creationTime>
     * and the reload of a metadata file requires the element: metadata files (INTERNAL)
     * always carry it, or the snapshot would vanish on the next load. */
    if (def->creation_time || (flags & SNAPSHOT_FORMAT_INTERNAL))
        g_string_append_printf(out, "  <creationTime>%" G_GINT64_FORMAT "</creationTime>\n",
                               def->creation_time);
    if (def->memory) {
        g_string_append_printf(out, "  <memory snapshot='%s'",
                               snapshot_location_to_string(def->memory));
        if (def->memory_file) {
            g_string_append(out, " file='");
            xmlutil_escape(out, def->memory_file);
            g_string_append_c(out, '\'');
        }
        g_string_append(out, "/>\n");
    }
    if (def->disks->len) {
        g_string_append(out, "  <disks>\n");
        for (guint i = 0; i < def->disks->len; i++)
            snapshot_format_disk(out, def->disks->pdata[i], 4);
        g_string_append(out, "  </disks>\n");
    }
    if (def->dom) {
        domain_format_buf(out, def->dom, domflags, 2, NULL);
    } else if (def->has_legacy_uuid) {
        char uuidstr[UTIL_UUID_STRLEN + 1];

        util_uuid_format(def->legacy_uuid, uuidstr);
        g_string_append_printf(out, "  <domain>\n    <uuid>%s</uuid>\n  </domain>\n", uuidstr);
    }
    if (def->inactive_dom)
        domain_format_buf(out, def->inactive_dom, domflags, 2, "inactiveDomain");
    if (def->cookie)
        snapshot_format_cookie(out, def->cookie, 2);
    if (flags & SNAPSHOT_FORMAT_INTERNAL)
        g_string_append_printf(out, "  <active>%d</active>\n", def->active > 0 ? 1 : 0);
    g_string_append(out, "</domainsnapshot>\n");
    return g_string_free(out, FALSE);
}
