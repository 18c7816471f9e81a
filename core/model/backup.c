/* backup.c: <domainbackup> parse, alignment against a domain and format, as libvirt 9.0. */
#include "backup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "xmlutil.h"

BackupDiskDef *
backup_disk_def_new(void)
{
    BackupDiskDef *disk = g_new0(BackupDiskDef, 1);

    disk->backup = TRUE;
    return disk;
}

void
backup_disk_def_free(BackupDiskDef *disk)
{
    if (!disk)
        return;
    g_free(disk->name);
    g_free(disk->incremental);
    g_free(disk->exportname);
    g_free(disk->exportbitmap);
    g_free(disk->state);
    storage_source_free(disk->store);
    g_free(disk->store_extra);
    g_free(disk);
}

BackupDef *
backup_def_new(void)
{
    BackupDef *def = g_new0(BackupDef, 1);

    def->mode = BACKUP_MODE_PUSH;
    def->disks = g_ptr_array_new_with_free_func((GDestroyNotify)backup_disk_def_free);
    return def;
}

void
backup_def_free(BackupDef *def)
{
    if (!def)
        return;
    g_free(def->incremental);
    g_free(def->server_transport);
    g_free(def->server_name);
    g_free(def->server_port);
    g_free(def->server_socket);
    g_free(def->server_tls);
    if (def->disks)
        g_ptr_array_unref(def->disks);
    g_free(def->tls_alias);
    g_free(def->tls_secret_alias);
    g_free(def);
}

/* ---- parse ---- */

/* yes/no attribute: -1 absent, 0 no, 1 yes; FALSE on a bad value. */
static gboolean
backup_prop_yesno(xmlNode *node, const char *attr, int *out, GError **error)
{
    g_autofree char *v = xmlutil_prop_raw(node, attr);

    *out = -1;
    if (!v)
        return TRUE;
    if (g_str_equal(v, "yes")) {
        *out = 1;
    } else if (g_str_equal(v, "no")) {
        *out = 0;
    } else {
        xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, attr, v);
        return FALSE;
    }
    return TRUE;
}

/* virStorageFileFormat names ("none" is refused like an unknown one): a backup
 * target also takes luks. */
static gboolean
backup_format_known(const char *fmt)
{
    return storage_format_is_known(fmt) || g_str_equal(fmt, "luks");
}

/* virDomainStorageNetworkParseHost plus the <server> checks of
 * virDomainBackupDefParse. */
static gboolean
backup_parse_server(BackupDef *def, xmlNode *node, GError **error)
{
    g_autoptr(NetHost) h = storage_host_parse(node, error);
    int tls;

    if (!h)
        return FALSE;
    def->has_server = TRUE;
    def->server_transport = g_strdup(h->transport ? h->transport : "tcp");
    def->server_socket = g_steal_pointer(&h->socket);
    def->server_name = g_steal_pointer(&h->name);
    if (h->port)
        def->server_port = g_strdup_printf("%u", h->port);
    if (g_str_equal(def->server_transport, "rdma")) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "transport rdma is not supported for <server>");
        return FALSE;
    }
    if (def->server_socket && !g_path_is_absolute(def->server_socket)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "backup socket path '%s' must be absolute", def->server_socket);
        return FALSE;
    }
    if (!backup_prop_yesno(node, "tls", &tls, error))
        return FALSE;
    if (tls >= 0)
        def->server_tls = g_strdup(tls ? "yes" : "no");
    return TRUE;
}

/* virDomainStorageSourceParse for <target>/<scratch>: the path, then the
 * <seclabel>s and the first <encryption>, which are kept as XML. */
static void
backup_parse_store(BackupDiskDef *disk, xmlNode *node)
{
    g_autoptr(GString) extra = g_string_new(NULL);
    xmlNode *enc = NULL;

    if (disk->store->type == STORAGE_TYPE_FILE)
        disk->store->path = xmlutil_prop(node, "file");   /* '' counts as absent */
    else
        disk->store->path = xmlutil_prop(node, "dev");
    for (xmlNode *c = node->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrEqual(c->name, (const xmlChar *)"seclabel"))
            xmlutil_format_node(extra, c, 8);
        else if (!enc && xmlStrEqual(c->name, (const xmlChar *)"encryption"))
            enc = c;
    }
    if (enc)
        xmlutil_format_node(extra, enc, 8);
    if (extra->len)
        disk->store_extra = g_string_free(g_steal_pointer(&extra), FALSE);
}

/* virDomainBackupDiskDefParseXML. */
static BackupDiskDef *
backup_parse_disk(xmlNode *node, gboolean push, guint flags, GError **error)
{
    g_autoptr(BackupDiskDef) disk = backup_disk_def_new();
    g_autofree char *mode = NULL;
    g_autofree char *type = NULL;
    g_autofree char *format = NULL;
    g_autofree char *idx = NULL;
    gboolean internal = flags & BACKUP_PARSE_INTERNAL;
    xmlNode *driver;
    xmlNode *src;
    int backup;

    if (!(disk->name = xmlutil_prop_raw(node, "name"))) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                            "missing name from disk backup element");
        return NULL;
    }
    if (!backup_prop_yesno(node, "backup", &backup, error))
        return NULL;
    disk->backup_set = backup >= 0;
    disk->backup = backup != 0;
    /* nothing else is parsed when the disk is not backed up */
    if (!disk->backup)
        return g_steal_pointer(&disk);

    if (!push) {
        disk->exportname = xmlutil_prop_raw(node, "exportname");
        disk->exportbitmap = xmlutil_prop_raw(node, "exportbitmap");
    }
    if ((mode = xmlutil_prop_raw(node, "backupmode"))) {
        if (g_str_equal(mode, "full")) {
            disk->backupmode = BACKUP_DISK_MODE_FULL;
        } else if (g_str_equal(mode, "incremental")) {
            disk->backupmode = BACKUP_DISK_MODE_INCREMENTAL;
        } else if (*mode) {
            xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, "backupmode", mode);
            return NULL;
        }
    }
    disk->incremental = xmlutil_prop_raw(node, "incremental");
    if (internal) {
        static const char *const states[] = {
            "", "running", "complete", "failed", "cancelling", "cancelled",
        };
        g_autofree char *state = xmlutil_prop_raw(node, "state");
        gboolean ok = FALSE;

        if (!state) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                        "Missing required attribute '%s' in element '%s'",
                        "state", (const char *)node->name);
            return NULL;
        }
        for (guint i = 0; i < G_N_ELEMENTS(states); i++)
            ok |= g_str_equal(states[i], state);
        if (!ok) {
            xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, "state", state);
            return NULL;
        }
        if (*state)
            disk->state = g_steal_pointer(&state);
    }

    /* virDomainStorageSourceParseBase */
    type = xmlutil_prop_raw(node, "type");
    if ((driver = xmlutil_child(node, "driver")))
        format = xmlutil_prop(driver, "type");   /* string(./driver/@type): '' is none */
    if (internal)
        idx = xmlutil_prop_raw(node, "index");
    disk->store = storage_source_new();
    disk->store->type = STORAGE_TYPE_FILE;
    if (type) {
        int t = storage_type_from_string(type);   /* "none" counts as unknown */

        if (t <= 0) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "unknown storage source type '%s'", type);
            return NULL;
        }
        disk->store->type = t;
    }
    if (format) {
        if (!backup_format_known(format)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "unknown storage source format '%s'", format);
            return NULL;
        }
        disk->store->format = g_steal_pointer(&format);
    }
    if (idx && !xmlutil_parse_uip(idx, &disk->store->index)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "invalid storage source index '%s'", idx);
        return NULL;
    }
    if (disk->store->type != STORAGE_TYPE_FILE && disk->store->type != STORAGE_TYPE_BLOCK) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "unsupported disk backup type '%s'", type);
        return NULL;
    }
    if ((src = xmlutil_child(node, push ? "target" : "scratch")))
        backup_parse_store(disk, src);
    return g_steal_pointer(&disk);
}

/* virDomainBackupDefParse on a validated (or unvalidated) document. */
static BackupDef *
backup_parse_root(xmlNode *root, guint flags, GError **error)
{
    g_autoptr(BackupDef) def = backup_def_new();
    g_autofree char *mode = xmlutil_prop_raw(root, "mode");
    xmlNode *server;
    gboolean push;

    if (mode) {
        if (g_str_equal(mode, "pull")) {
            def->mode = BACKUP_MODE_PULL;
        } else if (!g_str_equal(mode, "push")) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "unknown backup mode '%s'", mode);
            return NULL;
        }
    }
    push = def->mode == BACKUP_MODE_PUSH;
    def->incremental = xmlutil_child_text(root, "incremental");
    if ((server = xmlutil_child(root, "server"))) {
        if (push) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                                "use of <server> requires pull mode backup");
            return NULL;
        }
        if (!backup_parse_server(def, server, error))
            return NULL;
    }
    /* XPath "./disks/(any)": every element child of every <disks>, whatever its name */
    for (xmlNode *d = root->children; d; d = d->next) {
        if (d->type != XML_ELEMENT_NODE || !xmlStrEqual(d->name, (const xmlChar *)"disks"))
            continue;
        for (xmlNode *c = d->children; c; c = c->next) {
            BackupDiskDef *disk;

            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (!(disk = backup_parse_disk(c, push, flags, error)))
                return NULL;
            g_ptr_array_add(def->disks, disk);
        }
    }
    if (flags & BACKUP_PARSE_INTERNAL) {
        xmlNode *objects = xmlutil_child(xmlutil_child(root, "privateData"), "objects");

        for (xmlNode *c = objects ? objects->children : NULL; c; c = c->next) {
            g_autofree char *t = NULL;

            if (c->type != XML_ELEMENT_NODE)
                continue;
            if (!def->tls_alias && xmlStrEqual(c->name, (const xmlChar *)"TLSx509")) {
                def->tls_alias = xmlutil_prop(c, "alias");
            } else if (!def->tls_secret_alias &&
                       xmlStrEqual(c->name, (const xmlChar *)"secret") &&
                       (t = xmlutil_prop(c, "type")) && g_str_equal(t, "tlskey")) {
                def->tls_secret_alias = xmlutil_prop(c, "alias");
            }
        }
    }
    return g_steal_pointer(&def);
}

BackupDef *
backup_parse_flags(const char *buf, gsize len, const char *rng_dir, guint flags,
                   GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;

    if (!(doc = xmlutil_read(buf, len, "domainbackup", error)))
        return NULL;
    if (rng_dir && !(flags & BACKUP_PARSE_INTERNAL)) {
        g_autofree char *rng = g_build_filename(rng_dir, "domainbackup.rng", NULL);

        if (!xmlutil_validate_rng(doc, rng, error))
            return NULL;
    }
    return backup_parse_root(xmlDocGetRootElement(doc), flags, error);
}

BackupDef *
backup_parse(const char *buf, gsize len, const char *rng_dir, GError **error)
{
    return backup_parse_flags(buf, len, rng_dir, 0, error);
}

/* ---- alignment ---- */

/* virDomainBackupDefAssignStore */
static gboolean
backup_assign_store(BackupDiskDef *disk, const StorageSource *src, const char *suffix,
                    GError **error)
{
    if (storage_source_is_empty(src) && disk->store) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "disk '%s' has no media", disk->name);
        return FALSE;
    }
    if (!disk->store || storage_source_is_empty(disk->store)) {
        /* a volume's actual type is unknown for an inactive domain: refused too */
        if (!src || src->type != STORAGE_TYPE_FILE) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "refusing to generate file name for disk '%s'", disk->name);
            return FALSE;
        }
        if (!disk->store)
            disk->store = storage_source_new();
        disk->store->type = STORAGE_TYPE_FILE;
        g_free(disk->store->path);
        disk->store->path = g_strdup_printf("%s.%s", src->path, suffix);
    }
    return TRUE;
}

/* virDomainDiskByTarget: the target dev only, never a path. */
static DiskDef *
backup_domain_disk(const DomainDef *dom, const char *dst)
{
    for (guint i = 0; i < dom->disks->len; i++) {
        DiskDef *d = dom->disks->pdata[i];

        if (g_strcmp0(d->dst, dst) == 0)
            return d;
    }
    return NULL;
}

gboolean
backup_align_disks(BackupDef *def, const DomainDef *dom, const char *suffix, GError **error)
{
    g_autoptr(GHashTable) listed = g_hash_table_new(g_str_hash, g_str_equal);
    gboolean backup_all = def->disks->len == 0;

    if (!dom->disks || dom->disks->len == 0) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "domain must have at least one disk to perform backup");
        return FALSE;
    }
    for (guint i = 0; i < def->disks->len; i++) {
        BackupDiskDef *disk = def->disks->pdata[i];
        DiskDef *dd = backup_domain_disk(dom, disk->name);

        if (!dd) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                        "no disk named '%s'", disk->name);
            return FALSE;
        }
        if (!g_hash_table_add(listed, disk->name)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "disk '%s' specified twice", disk->name);
            return FALSE;
        }
        if (disk->backupmode == BACKUP_DISK_MODE_INCREMENTAL && !disk->incremental &&
            !def->incremental) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "'incremental' backup mode of disk '%s' requires setting "
                        "'incremental' field for disk or backup", disk->name);
            return FALSE;
        }
        if (disk->backup && !backup_assign_store(disk, dd->src, suffix, error))
            return FALSE;
    }
    /* the domain's other disks follow in domain order */
    for (guint i = 0; i < dom->disks->len; i++) {
        DiskDef *dd = dom->disks->pdata[i];
        g_autoptr(BackupDiskDef) disk = NULL;

        if (g_hash_table_contains(listed, dd->dst ? dd->dst : ""))
            continue;
        disk = backup_disk_def_new();
        disk->name = g_strdup(dd->dst);
        disk->backup = backup_all && !storage_source_is_empty(dd->src) && !dd->readonly &&
                       !(dd->src && dd->src->readonly);
        if (disk->backup && !backup_assign_store(disk, dd->src, suffix, error))
            return FALSE;
        g_ptr_array_add(def->disks, g_steal_pointer(&disk));
    }
    for (guint i = 0; i < def->disks->len; i++) {
        BackupDiskDef *disk = def->disks->pdata[i];

        if (disk->backupmode == BACKUP_DISK_MODE_DEFAULT)
            disk->backupmode = def->incremental || disk->incremental ?
                               BACKUP_DISK_MODE_INCREMENTAL : BACKUP_DISK_MODE_FULL;
        if (!disk->incremental && disk->backupmode == BACKUP_DISK_MODE_INCREMENTAL)
            disk->incremental = g_strdup(def->incremental);
    }
    return TRUE;
}

/* ---- format ---- */

static void
backup_attr(GString *out, const char *name, const char *value)
{
    if (!value)
        return;
    g_string_append_printf(out, " %s='", name);
    xmlutil_escape(out, value);
    g_string_append_c(out, '\'');
}

static void
backup_format_disk(GString *out, const BackupDiskDef *disk, gboolean push, gboolean internal)
{
    g_autoptr(GString) child = g_string_new(NULL);
    const StorageSource *st = disk->store;

    g_string_append(out, "    <disk");
    backup_attr(out, "name", disk->name);
    backup_attr(out, "backup", disk->backup ? "yes" : "no");
    if (internal)
        backup_attr(out, "state", disk->state);
    if (disk->backup) {
        backup_attr(out, "type", st && st->type == STORAGE_TYPE_BLOCK ? "block" : "file");
        if (disk->backupmode == BACKUP_DISK_MODE_FULL)
            backup_attr(out, "backupmode", "full");
        else if (disk->backupmode == BACKUP_DISK_MODE_INCREMENTAL)
            backup_attr(out, "backupmode", "incremental");
        backup_attr(out, "incremental", disk->incremental);
        backup_attr(out, "exportname", disk->exportname);
        backup_attr(out, "exportbitmap", disk->exportbitmap);
        if (internal && st && st->index)
            g_string_append_printf(out, " index='%u'", st->index);
        if (st && st->format) {
            g_string_append(child, "      <driver");
            backup_attr(child, "type", st->format);
            g_string_append(child, "/>\n");
        }
        if (st && (st->path || disk->store_extra)) {
            const char *elem = push ? "target" : "scratch";

            g_string_append_printf(child, "      <%s", elem);
            backup_attr(child, st->type == STORAGE_TYPE_BLOCK ? "dev" : "file", st->path);
            if (disk->store_extra)
                g_string_append_printf(child, ">\n%s      </%s>\n", disk->store_extra, elem);
            else
                g_string_append(child, "/>\n");
        }
    }
    if (child->len)
        g_string_append_printf(out, ">\n%s    </disk>\n", child->str);
    else
        g_string_append(out, "/>\n");
}

char *
backup_format(const BackupDef *def, gboolean internal)
{
    GString *out = g_string_new("<domainbackup");
    g_autoptr(GString) child = g_string_new(NULL);
    gboolean push = def->mode == BACKUP_MODE_PUSH;

    backup_attr(out, "mode", push ? "push" : "pull");
    if (def->incremental) {
        g_string_append(child, "  <incremental>");
        xmlutil_escape(child, def->incremental);
        g_string_append(child, "</incremental>\n");
    }
    if (def->has_server) {
        g_string_append(child, "  <server");
        backup_attr(child, "transport", def->server_transport ? def->server_transport : "tcp");
        backup_attr(child, "tls", def->server_tls);
        backup_attr(child, "name", def->server_name);
        backup_attr(child, "port", def->server_port);
        backup_attr(child, "socket", def->server_socket);
        g_string_append(child, "/>\n");
    }
    if (def->disks->len) {
        g_string_append(child, "  <disks>\n");
        for (guint i = 0; i < def->disks->len; i++)
            backup_format_disk(child, def->disks->pdata[i], push, internal);
        g_string_append(child, "  </disks>\n");
    }
    if (internal && (def->tls_alias || def->tls_secret_alias)) {
        g_string_append(child, "  <privateData>\n    <objects>\n");
        if (def->tls_secret_alias) {
            g_string_append(child, "      <secret type='tlskey'");
            backup_attr(child, "alias", def->tls_secret_alias);
            g_string_append(child, "/>\n");
        }
        if (def->tls_alias) {
            g_string_append(child, "      <TLSx509");
            backup_attr(child, "alias", def->tls_alias);
            g_string_append(child, "/>\n");
        }
        g_string_append(child, "    </objects>\n  </privateData>\n");
    }
    if (child->len)
        g_string_append_printf(out, ">\n%s</domainbackup>\n", child->str);
    else
        g_string_append(out, "/>\n");
    return g_string_free(out, FALSE);
}
