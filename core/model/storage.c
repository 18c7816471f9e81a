/* storage.c: libvirt's virStorageSource: enumerations, copies, the <source> parse
 * and format, and the one-line description of a source. */
#include "storage.h"

#include <string.h>

#include "error.h"
#include "xmlutil.h"

/* ------------------------------------------------------------------ */
/* Enumerations */

static const char *const storage_type_names[] = {
    [STORAGE_TYPE_NONE] = "none",
    [STORAGE_TYPE_FILE] = "file",
    [STORAGE_TYPE_BLOCK] = "block",
    [STORAGE_TYPE_DIR] = "dir",
    [STORAGE_TYPE_NETWORK] = "network",
    [STORAGE_TYPE_VOLUME] = "volume",
    [STORAGE_TYPE_NVME] = "nvme",
    [STORAGE_TYPE_VHOST_USER] = "vhostuser",
};

/* virStorageFileFormat in libvirt 9.0, without "none". */
static const char *const storage_formats[] = {
    "raw", "dir", "bochs", "cloop", "dmg", "iso", "vpc", "vdi", "fat", "vhd",
    "ploop", "cow", "qcow", "qcow2", "qed", "vmdk", NULL,
};

/* virStorageNetProtocol with virStorageSourceNetworkDefaultPort. */
static const struct {
    const char *name;
    guint port;
} storage_protocols[] = {
    { "nbd", 10809 }, { "rbd", 0 },      { "sheepdog", 7000 }, { "gluster", 24007 },
    { "iscsi", 3260 }, { "http", 80 },   { "https", 443 },     { "ftp", 21 },
    { "ftps", 990 },   { "tftp", 69 },   { "ssh", 22 },        { "vxhs", 9999 },
    { "nfs", 0 },
};

const char *
storage_type_to_string(StorageType type)
{
    if (type == STORAGE_TYPE_NONE || (guint)type >= G_N_ELEMENTS(storage_type_names))
        return "";
    return storage_type_names[type];
}

int
storage_type_from_string(const char *str)
{
    for (guint i = 0; str && i < G_N_ELEMENTS(storage_type_names); i++)
        if (strcmp(str, storage_type_names[i]) == 0)
            return (int)i;
    return -1;
}

gboolean
storage_format_is_known(const char *format)
{
    return format && g_strv_contains(storage_formats, format);
}

const char *
storage_source_path_attr(StorageType type)
{
    switch (type) {
    case STORAGE_TYPE_FILE:
        return "file";
    case STORAGE_TYPE_BLOCK:
        return "dev";
    case STORAGE_TYPE_DIR:
        return "dir";
    default:
        return NULL;
    }
}

gboolean
storage_source_is_empty(const StorageSource *src)
{
    if (!src || src->type == STORAGE_TYPE_NONE)
        return TRUE;
    if (storage_source_path_attr(src->type) && !src->path)
        return TRUE;
    return src->type == STORAGE_TYPE_NETWORK && !src->protocol;
}

gboolean
storage_protocol_is_known(const char *protocol)
{
    for (guint i = 0; protocol && i < G_N_ELEMENTS(storage_protocols); i++)
        if (strcmp(protocol, storage_protocols[i].name) == 0)
            return TRUE;
    return FALSE;
}

guint
storage_source_default_port(const char *protocol)
{
    for (guint i = 0; protocol && i < G_N_ELEMENTS(storage_protocols); i++)
        if (strcmp(protocol, storage_protocols[i].name) == 0)
            return storage_protocols[i].port;
    return 0;
}

/* ------------------------------------------------------------------ */
/* StorageSource */

void
storage_host_free(NetHost *h)
{
    if (!h)
        return;
    g_free(h->name);
    g_free(h->transport);
    g_free(h->socket);
    g_free(h);
}

static NetHost *
storage_host_copy(const NetHost *h)
{
    NetHost *c = g_new0(NetHost, 1);

    c->name = g_strdup(h->name);
    c->port = h->port;
    c->transport = g_strdup(h->transport);
    c->socket = g_strdup(h->socket);
    return c;
}

StorageSource *
storage_source_new(void)
{
    StorageSource *src = g_new0(StorageSource, 1);

    src->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)storage_host_free);
    return src;
}

void
storage_source_free(StorageSource *src)
{
    /* Iterative: probed chains may be long. */
    while (src) {
        StorageSource *next = src->backing;

        g_free(src->format);
        g_free(src->path);
        g_free(src->protocol);
        g_free(src->name);
        if (src->hosts)
            g_ptr_array_unref(src->hosts);
        g_free(src->rel_path);
        g_free(src->pool);
        g_free(src);
        src = next;
    }
}

static StorageSource *
storage_source_copy_one(const StorageSource *src)
{
    StorageSource *c = storage_source_new();

    c->type = src->type;
    c->format = g_strdup(src->format);
    c->path = g_strdup(src->path);
    c->protocol = g_strdup(src->protocol);
    c->name = g_strdup(src->name);
    for (guint i = 0; src->hosts && i < src->hosts->len; i++)
        g_ptr_array_add(c->hosts, storage_host_copy(src->hosts->pdata[i]));
    c->rel_path = g_strdup(src->rel_path);
    c->index = src->index;
    c->readonly = src->readonly;
    c->backing_terminated = src->backing_terminated;
    c->detected = src->detected;
    c->pool = g_strdup(src->pool);
    return c;
}

StorageSource *
storage_source_copy(const StorageSource *src)
{
    StorageSource *head = NULL;
    StorageSource **tail = &head;

    for (; src; src = src->backing) {
        *tail = storage_source_copy_one(src);
        tail = &(*tail)->backing;
    }
    return head;
}

static void
storage_describe_host(GString *s, const NetHost *h)
{
    if (!h->name)
        return;
    if (strchr(h->name, ':'))
        g_string_append_printf(s, "[%s]", h->name);
    else
        g_string_append(s, h->name);
    if (h->port)
        g_string_append_printf(s, ":%u", h->port);
}

static char *
storage_source_describe_network(const StorageSource *src)
{
    const NetHost *host = src->hosts->len ? src->hosts->pdata[0] : NULL;
    const char *name = src->name ? src->name : "";
    GString *s = g_string_new(NULL);

    if (g_strcmp0(src->protocol, "rbd") == 0) {
        /* qemu's legacy rbd:pool/image[:mon_host=h1\:port\;h2] spelling */
        g_string_append_printf(s, "rbd:%s", name);
        for (guint i = 0; i < src->hosts->len; i++) {
            const NetHost *h = src->hosts->pdata[i];

            g_string_append(s, i ? "\\;" : ":mon_host=");
            g_string_append(s, h->name ? h->name : "");
            if (h->port)
                g_string_append_printf(s, "\\:%u", h->port);
        }
        return g_string_free(s, FALSE);
    }
    g_string_append(s, src->protocol ? src->protocol : "");
    if (host && host->transport)
        g_string_append_printf(s, "+%s", host->transport);
    g_string_append(s, "://");
    if (host && g_strcmp0(host->transport, "unix") != 0)
        storage_describe_host(s, host);
    while (*name == '/')
        name++;
    if (*name)
        g_string_append_printf(s, "/%s", name);
    if (host && host->socket)
        g_string_append_printf(s, "?socket=%s", host->socket);
    return g_string_free(s, FALSE);
}

char *
storage_source_describe(const StorageSource *src)
{
    switch (src->type) {
    case STORAGE_TYPE_NETWORK:
        return storage_source_describe_network(src);
    case STORAGE_TYPE_VOLUME:
        return g_strdup_printf("%s/%s", src->pool ? src->pool : "", src->name ? src->name : "");
    case STORAGE_TYPE_NVME:
        return g_strdup_printf("nvme:namespace=%s", src->name ? src->name : "");
    case STORAGE_TYPE_VHOST_USER: {
        const NetHost *h = src->hosts->len ? src->hosts->pdata[0] : NULL;

        return g_strdup_printf("vhost-user:%s", h && h->socket ? h->socket : "");
    }
    case STORAGE_TYPE_NONE:
    case STORAGE_TYPE_FILE:
    case STORAGE_TYPE_BLOCK:
    case STORAGE_TYPE_DIR:
    default:
        return g_strdup(src->path ? src->path : "");
    }
}

/* ------------------------------------------------------------------ */
/* Parsing */

static void
storage_set_prop(xmlNode *node, const char *name, const char *value)
{
    xmlSetProp(node, (const xmlChar *)name, (const xmlChar *)value);
}

NetHost *
storage_host_parse(xmlNode *node, GError **error)
{
    static const char *const transports[] = { "tcp", "unix", "rdma", NULL };
    g_autoptr(NetHost) h = g_new0(NetHost, 1);
    g_autofree char *transport = xmlutil_prop_raw(node, "transport");
    g_autofree char *port = NULL;
    gboolean is_unix = g_strcmp0(transport, "unix") == 0;

    if (transport && !g_strv_contains(transports, transport)) {
        core_error_invalid(error, "unknown protocol transport type '%s'", transport);
        return NULL;
    }
    h->socket = xmlutil_prop_raw(node, "socket");
    if (is_unix && !h->socket) {
        core_error_invalid(error, "missing socket for unix transport");
        return NULL;
    }
    if (!is_unix && h->socket) {
        /* libvirt formats the attribute as given: "(null)" when it was absent */
        core_error_invalid(error, "transport '%s' does not support socket attribute",
                           transport ? transport : "(null)");
        return NULL;
    }
    if (!is_unix) {
        if (!(h->name = xmlutil_prop_raw(node, "name"))) {
            core_error_invalid(error, "missing name for host");
            return NULL;
        }
        if ((port = xmlutil_prop_raw(node, "port"))) {
            if (!xmlutil_parse_uip(port, &h->port)) {
                core_error_invalid(error, "failed to parse port number '%s'", port);
                return NULL;
            }
            if (h->port > G_MAXUINT16) {
                core_error_invalid(error, "port '%s' out of range", port);
                return NULL;
            }
        }
    }
    if (g_strcmp0(transport, "tcp") != 0)
        h->transport = g_steal_pointer(&transport);
    return g_steal_pointer(&h);
}

/* A network source's <host>: parsed, added to @src, and the element rewritten
 * canonically (libvirt prints name, port, transport unless tcp, socket; unix hosts
 * lose name and port). */
static gboolean
storage_host_add(xmlNode *node, const char *protocol, StorageSource *src, guint flags,
                 GError **error)
{
    NetHost *h = storage_host_parse(node, error);
    char portbuf[16];

    if (!h)
        return FALSE;
    g_ptr_array_add(src->hosts, h);
    /* virStorageSourceNetworkAssignDefaultPorts: tcp only */
    if ((flags & STORAGE_PARSE_DEFAULT_PORTS) && !h->transport && h->port == 0)
        h->port = storage_source_default_port(protocol);
    while (node->properties)
        xmlRemoveProp(node->properties);
    if (h->name)
        storage_set_prop(node, "name", h->name);
    if (h->port) {
        g_snprintf(portbuf, sizeof(portbuf), "%u", h->port);
        storage_set_prop(node, "port", portbuf);
    }
    if (h->transport)
        storage_set_prop(node, "transport", h->transport);
    if (h->socket)
        storage_set_prop(node, "socket", h->socket);
    return TRUE;
}

/* TRUE when @s holds a control character or one of @bad. */
static gboolean
storage_has_chars(const char *s, const char *bad)
{
    for (; *s; s++)
        if ((guchar)*s < 0x20 || strchr(bad, *s))
            return TRUE;
    return FALSE;
}

/* virDomainStorageNetCookiesParse and virStorageSourceNetCookiesValidate: every
 * <cookie> needs a name and a value (first pass), then each in turn must use
 * only the characters RFC 6265 allows and must not repeat a later name. A value
 * may be in double quotes. */
static gboolean
storage_cookies_check(xmlNode *cookies, GError **error)
{
    static const char name_bad[] = "()<>@,;:\\\"/[]?={} \t";
    static const char value_bad[] = " ,;\\\"";
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);

    for (xmlNode *c = cookies->children; c; c = c->next) {
        g_autofree char *name = NULL;
        xmlChar *content;

        if (!xmlutil_is_element(c, "cookie"))
            continue;
        if (!(name = xmlutil_prop(c, "name")))
            return core_error_invalid(error, "missing cookie name");
        content = xmlNodeGetContent(c);
        if (!content || !*content) {
            xmlFree(content);
            return core_error_invalid(error, "missing value for cookie '%s'", name);
        }
        g_ptr_array_add(values, g_strdup((const char *)content));
        g_ptr_array_add(names, g_steal_pointer(&name));
        xmlFree(content);
    }
    for (guint i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        g_autofree char *value = g_strdup(values->pdata[i]);
        const char *check = value;
        gsize len = strlen(value);

        if (storage_has_chars(name, name_bad))
            return core_error_invalid(error, "cookie name '%s' contains invalid characters", name);
        /* as libvirt: a lone '"' counts as a quoted empty value */
        if (value[0] == '"' && value[len - 1] == '"') {
            value[len - 1] = '\0';
            check = len > 1 ? value + 1 : "";
        }
        if (storage_has_chars(check, value_bad))
            return core_error_invalid(error, "value of cookie '%s' contains invalid characters",
                                      name);
        for (guint j = i + 1; j < names->len; j++)
            if (strcmp(name, names->pdata[j]) == 0)
                return core_error_invalid(error, "duplicate cookie '%s'", name);
    }
    return TRUE;
}

/* The protocol= of a network <source>: required, and one of libvirt's. */
static gboolean
storage_protocol_parse(xmlNode *node, StorageSource *src, guint flags, GError **error)
{
    const char *elem = (const char *)node->name;

    src->protocol = xmlutil_prop(node, "protocol");
    if (flags & STORAGE_PARSE_SNAPSHOT) {
        if (!src->protocol)
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                                "missing network source protocol type");
        else if (!storage_protocol_is_known(src->protocol))
            g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE, "unknown protocol type '%s'",
                        src->protocol);
        return src->protocol && storage_protocol_is_known(src->protocol);
    }
    /* virXMLPropEnum(VIR_XML_PROP_REQUIRED) in 9.0 */
    if (!src->protocol)
        return core_error_invalid(error, "Missing required attribute '%s' in element '%s'",
                                  "protocol", elem);
    if (strcmp(src->protocol, "none") == 0)
        return core_error_invalid(error,
                                  "Invalid value for attribute '%s' in element '%s': "
                                  "Zero is not permitted", "protocol", elem);
    if (!storage_protocol_is_known(src->protocol))
        return xmlutil_bad_attr(error, CORE_ERROR_INVALID, node, "protocol", src->protocol);
    return TRUE;
}

/* virDomainDiskSourceNetworkParse */
static gboolean
storage_network_parse(xmlNode *node, StorageSource *src, guint flags, GError **error)
{
    xmlNode *cookies;

    if (!storage_protocol_parse(node, src, flags, error))
        return FALSE;
    src->name = xmlutil_prop(node, "name");
    if (!src->name && strcmp(src->protocol, "nbd") != 0)
        return core_error_invalid(error, "missing name for disk source");
    if (src->name && (strcmp(src->protocol, "gluster") == 0 || strcmp(src->protocol, "rbd") == 0)) {
        const char *slash = strchr(src->name, '/');

        if (!slash || slash == src->name)
            return core_error_invalid(error,
                                      "can't split path '%s' into pool name and image name",
                                      src->name);
    }
    for (xmlNode *c = node->children; c; c = c->next)
        if (xmlutil_is_element(c, "host") && !storage_host_add(c, src->protocol, src, flags, error))
            return FALSE;
    if ((strcmp(src->protocol, "http") == 0 || strcmp(src->protocol, "https") == 0) &&
        (cookies = xmlutil_child(node, "cookies")) && !storage_cookies_check(cookies, error))
        return FALSE;
    xmlutil_reorder_attrs(node, (const char *const[]){ "protocol", "name", NULL });
    return TRUE;
}

/* virDomainStorageSourceParse: the <source> element for @src->type. */
gboolean
storage_source_parse(xmlNode *node, StorageSource *src, guint flags, GError **error)
{
    switch (src->type) {
    case STORAGE_TYPE_FILE:
    case STORAGE_TYPE_BLOCK:
    case STORAGE_TYPE_DIR:
        src->path = xmlutil_prop(node, storage_source_path_attr(src->type));
        break;
    case STORAGE_TYPE_NETWORK:
        return storage_network_parse(node, src, flags, error);
    case STORAGE_TYPE_VOLUME:
        src->pool = xmlutil_prop(node, "pool");
        src->name = xmlutil_prop(node, "volume");
        if (!src->pool != !src->name)
            return core_error_invalid(error, "'pool' and 'volume' must be specified together "
                                      "for 'pool' type source");
        break;
    case STORAGE_TYPE_NVME: {
        g_autofree char *type = xmlutil_prop(node, "type");

        if (!type)
            return core_error_invalid(error, "missing 'type' attribute to disk source");
        if (!(src->name = xmlutil_prop(node, "namespace")))
            return core_error_invalid(error, "missing 'namespace' attribute to disk source");
        if (!xmlutil_child(node, "address"))
            return core_error_invalid(error, "NVMe disk source is missing address");
        break;
    }
    case STORAGE_TYPE_VHOST_USER: {
        g_autofree char *type = xmlutil_prop(node, "type");
        NetHost *h;

        if (!type)
            return core_error_invalid(error, "missing 'type' attribute for vhostuser disk source");
        if (strcmp(type, "unix") != 0)
            return core_error_invalid(error, "invalid 'type' attribute for vhostuser disk source");
        h = g_new0(NetHost, 1);
        h->transport = g_strdup("unix");
        h->socket = xmlutil_prop(node, "path");
        g_ptr_array_add(src->hosts, h);
        if (!h->socket)
            return core_error_invalid(error, "missing 'path' attribute for vhostuser disk source");
        break;
    }
    case STORAGE_TYPE_NONE:
    default:
        break;
    }
    return TRUE;
}

/* ------------------------------------------------------------------ */
/* Formatting */

void
storage_source_format(GString *out, const StorageSource *src, int indent)
{
    if (src->type != STORAGE_TYPE_NETWORK && !src->path)
        return;
    xmlutil_indent(out, indent);
    g_string_append(out, "<source");
    if (src->type == STORAGE_TYPE_NETWORK) {
        gboolean children = src->hosts && src->hosts->len > 0;

        if (src->protocol) {
            g_string_append(out, " protocol='");
            xmlutil_escape(out, src->protocol);
            g_string_append_c(out, '\'');
        }
        if (src->name) {
            g_string_append(out, " name='");
            xmlutil_escape(out, src->name);
            g_string_append_c(out, '\'');
        }
        if (!children) {
            g_string_append(out, "/>\n");
            return;
        }
        g_string_append(out, ">\n");
        for (guint i = 0; i < src->hosts->len; i++) {
            const NetHost *h = src->hosts->pdata[i];

            xmlutil_indent(out, indent + 2);
            g_string_append(out, "<host");
            if (h->name) {
                g_string_append(out, " name='");
                xmlutil_escape(out, h->name);
                g_string_append_c(out, '\'');
            }
            if (h->port)
                g_string_append_printf(out, " port='%u'", h->port);
            /* tcp is the zero value: not printed */
            if (h->transport && !g_str_equal(h->transport, "tcp")) {
                g_string_append(out, " transport='");
                xmlutil_escape(out, h->transport);
                g_string_append_c(out, '\'');
            }
            if (h->socket) {
                g_string_append(out, " socket='");
                xmlutil_escape(out, h->socket);
                g_string_append_c(out, '\'');
            }
            g_string_append(out, "/>\n");
        }
        xmlutil_indent(out, indent);
        g_string_append(out, "</source>\n");
        return;
    }
    if (src->path) {
        const char *attr = storage_source_path_attr(src->type);

        if (!attr)   /* any other type that has a path prints it as file= */
            attr = "file";

        g_string_append_printf(out, " %s='", attr);
        xmlutil_escape(out, src->path);
        g_string_append_c(out, '\'');
    }
    g_string_append(out, "/>\n");
}
