/* chain.c: backing chains: the domain XML's <backingStore> first, then image headers, libvirt's probing rules. */
#include "chain.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "util.h"

static void
chain_layer_free(ChainLayer *layer)
{
    if (!layer)
        return;
    storage_source_free(layer->src);
    g_free(layer->label);
    qcow_info_free(layer->info);
    g_free(layer->error);
    g_free(layer);
}

void
chain_free(Chain *chain)
{
    if (!chain)
        return;
    if (chain->layers)
        g_ptr_array_unref(chain->layers);
    g_free(chain->error);
    g_free(chain);
}

/* A copy of @src alone, without its backing chain. */
static StorageSource *
chain_copy_one(const StorageSource *src)
{
    StorageSource *copy = storage_source_copy(src);

    storage_source_free(copy->backing);
    copy->backing = NULL;
    copy->backing_terminated = FALSE;
    return copy;
}

static NetHost *
chain_host_new(const char *name, guint port, const char *transport, const char *socket)
{
    NetHost *host = g_new0(NetHost, 1);

    host->name = g_strdup(name);
    host->port = port;
    host->transport = g_strdup(transport);
    host->socket = g_strdup(socket);
    return host;
}

static const char *const chain_protocols[] = {
    "nbd", "rbd", "sheepdog", "gluster", "iscsi", "http", "https", "ftp", "ftps",
    "tftp", "ssh", "vxhs", "nfs", NULL,
};

/* "proto[+transport]://[user@]host[:port]/name[?socket=...]" */
static gboolean
chain_parse_uri(const char *str, StorageSource *src, GError **error)
{
    g_autoptr(GUri) uri = NULL;
    g_autofree char *scheme = NULL;
    const char *transport = NULL;
    const char *path;
    char *plus;
    g_autofree char *socket = NULL;

    if (!(uri = g_uri_parse(str, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED, NULL))) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "invalid backing store URI '%s'", str);
        return FALSE;
    }
    scheme = g_strdup(g_uri_get_scheme(uri));
    if ((plus = strchr(scheme, '+'))) {
        *plus = '\0';
        transport = plus + 1;
    }
    if (!g_strv_contains(chain_protocols, scheme)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "invalid backing protocol '%s'", scheme);
        return FALSE;
    }
    src->type = STORAGE_TYPE_NETWORK;
    src->protocol = g_strdup(scheme);
    path = g_uri_get_path(uri);
    while (path && *path == '/')
        path++;
    src->name = path && *path ? g_uri_unescape_string(path, NULL) : NULL;
    if (g_uri_get_query(uri)) {
        g_auto(GStrv) params = g_strsplit(g_uri_get_query(uri), "&", -1);
        for (guint i = 0; params[i]; i++) {
            if (g_str_has_prefix(params[i], "socket="))
                socket = g_uri_unescape_string(params[i] + 7, NULL);
        }
    }
    if (g_strcmp0(transport, "unix") == 0) {
        g_ptr_array_add(src->hosts, chain_host_new(NULL, 0, "unix", socket));
    } else if (g_uri_get_host(uri) && *g_uri_get_host(uri)) {
        guint port = g_uri_get_port(uri) > 0 ? (guint)g_uri_get_port(uri) :
                     storage_source_default_port(scheme);
        g_ptr_array_add(src->hosts, chain_host_new(g_uri_get_host(uri), port,
                                                   transport, NULL));
    }
    return TRUE;
}

/* "nbd:host:port[:exportname=X]" or "nbd:unix:/sock[:exportname=X]" */
static gboolean
chain_parse_nbd(const char *str, StorageSource *src, GError **error)
{
    g_auto(GStrv) parts = g_strsplit(str + 4, ":", -1);
    guint n = g_strv_length(parts);
    guint i;

    src->type = STORAGE_TYPE_NETWORK;
    src->protocol = g_strdup("nbd");
    if (n >= 2 && g_str_equal(parts[0], "unix")) {
        g_ptr_array_add(src->hosts, chain_host_new(NULL, 0, "unix", parts[1]));
        i = 2;
    } else if (n >= 2) {
        guint64 port = 0;
        if (!g_ascii_string_to_unsigned(parts[1], 10, 1, 65535, &port, NULL)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "malformed nbd string '%s'", str);
            return FALSE;
        }
        g_ptr_array_add(src->hosts, chain_host_new(parts[0], port, NULL, NULL));
        i = 2;
    } else {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "malformed nbd string '%s'", str);
        return FALSE;
    }
    for (; i < n; i++) {
        if (g_str_has_prefix(parts[i], "exportname="))
            src->name = g_strdup(parts[i] + strlen("exportname="));
    }
    return TRUE;
}

/* The "json:{...}" pseudo-protocol: only the driver and the file name or
 * image are picked out (no JSON parser in core/); enough to list it. */
static gboolean
chain_parse_json(const char *str, StorageSource *src, GError **error)
{
    g_autoptr(GRegex) re = g_regex_new("\"(?:file\\.)?(driver|filename|path|image|name)\""
                                       "\\s*:\\s*\"([^\"]*)\"", 0, 0, NULL);
    g_autoptr(GMatchInfo) match = NULL;
    g_autofree char *driver = NULL;
    g_autofree char *filename = NULL;
    g_autofree char *name = NULL;

    g_regex_match(re, str, 0, &match);
    while (g_match_info_matches(match)) {
        g_autofree char *key = g_match_info_fetch(match, 1);
        g_autofree char *val = g_match_info_fetch(match, 2);

        if (g_str_equal(key, "driver")) {
            if (!driver || g_str_equal(driver, "raw") || g_str_equal(driver, "qcow2")) {
                g_free(driver);
                driver = g_steal_pointer(&val);
            }
        } else if (g_str_equal(key, "filename")) {
            g_free(filename);
            filename = g_steal_pointer(&val);
        } else if (!name) {
            name = g_steal_pointer(&val);
        }
        g_match_info_next(match, NULL);
    }
    if (filename && (!driver || g_str_equal(driver, "file"))) {
        if (strstr(filename, "://"))
            return chain_parse_uri(filename, src, error);
        src->type = STORAGE_TYPE_FILE;
        src->path = g_steal_pointer(&filename);
        return TRUE;
    }
    if (!driver || !g_strv_contains(chain_protocols, driver)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "cannot parse json backing store '%s'", str);
        return FALSE;
    }
    src->type = STORAGE_TYPE_NETWORK;
    src->protocol = g_steal_pointer(&driver);
    src->name = g_steal_pointer(&name);
    return TRUE;
}

/* A StorageSource for backing string @name written in the header of @parent. */
static StorageSource *
chain_source_from_backing(const char *name, const char *parent, GError **error)
{
    g_autoptr(StorageSource) src = storage_source_new();

    src->readonly = TRUE;
    src->detected = TRUE;
    if (g_str_has_prefix(name, "json:")) {
        if (!chain_parse_json(name + 5, src, error))
            return NULL;
    } else if (strstr(name, "://")) {
        if (!chain_parse_uri(name, src, error))
            return NULL;
    } else if (g_str_has_prefix(name, "nbd:")) {
        if (!chain_parse_nbd(name, src, error))
            return NULL;
    } else if (g_str_has_prefix(name, "rbd:")) {
        const char *colon = strchr(name + 4, ':');
        src->type = STORAGE_TYPE_NETWORK;
        src->protocol = g_strdup("rbd");
        src->name = colon ? g_strndup(name + 4, colon - (name + 4)) : g_strdup(name + 4);
    } else if (g_str_has_prefix(name, "fat:")) {
        src->type = STORAGE_TYPE_DIR;
        src->path = g_strdup(name + 4);
    } else {
        struct stat st;

        src->type = STORAGE_TYPE_FILE;
        if (g_path_is_absolute(name)) {
            src->path = g_strdup(name);
        } else {   /* relative to the directory of the image naming it */
            g_autofree char *dir = g_path_get_dirname(parent);
            src->path = g_build_filename(dir, name, NULL);
            src->rel_path = g_strdup(name);
        }
        if (util_path_stat(src->path, FALSE, &st, NULL) && S_ISBLK(st.st_mode))
            src->type = STORAGE_TYPE_BLOCK;
    }
    return g_steal_pointer(&src);
}

static char *
chain_label(const char *target, guint depth)
{
    return depth == 0 ? g_strdup(target) : g_strdup_printf("%s[%u]", target, depth);
}

/* A running domain's definition numbers its chain itself (<backingStore index='N'>, the
 * names libvirt's block jobs take): then the elements below the top are @target[N], as
 * virsh names them. Only when every one of them has its own number; else the depth. */
static void
chain_label_by_index(Chain *chain, const char *target)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);

    for (guint i = 1; i < chain->layers->len; i++) {
        const ChainLayer *layer = chain->layers->pdata[i];
        guint index = layer->src->index;

        if (!index || g_hash_table_contains(seen, GUINT_TO_POINTER(index)))
            return;
        g_hash_table_add(seen, GUINT_TO_POINTER(index));
    }
    for (guint i = 1; i < chain->layers->len; i++) {
        ChainLayer *layer = chain->layers->pdata[i];

        g_free(layer->label);
        layer->label = g_strdup_printf("%s[%u]", target, layer->src->index);
    }
}

static gboolean
chain_is_local(const StorageSource *src)
{
    return (src->type == STORAGE_TYPE_FILE || src->type == STORAGE_TYPE_BLOCK) && src->path;
}

/* The external data file of qcow2 layer @layer must be there to be read. */
static gboolean
chain_check_data_file(const ChainLayer *layer, GError **error)
{
    g_autofree char *path = qcow_data_file_path(layer->src->path, layer->info->data_file);
    struct stat st;

    if (!util_path_stat(path, FALSE, &st, error)) {
        g_prefix_error(error, "Cannot access data file '%s' of storage file '%s': ", path,
                       layer->src->path);
        return FALSE;
    }
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "data file '%s' of storage file '%s' is not a regular file or block device",
                    path, layer->src->path);
        return FALSE;
    }
    return TRUE;
}

static void
chain_fail(Chain *chain, ChainLayer *layer, char *msg)
{
    g_free(layer->error);
    layer->error = g_strdup(msg);
    g_free(chain->error);
    chain->error = msg;
}

Chain *
chain_resolve(const StorageSource *top, const char *target)
{
    g_autoptr(Chain) chain = g_new0(Chain, 1);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    const StorageSource *xml = top;        /* the current element when it comes from the XML */
    g_autoptr(StorageSource) next = NULL;  /* the current element when it comes from a header */
    const char *parent_backing = NULL;     /* how the parent's header named the current one */
    g_autofree char *parent_path = NULL;
    const char *top_path = top->path;

    chain->layers = g_ptr_array_new_with_free_func((GDestroyNotify)chain_layer_free);
    for (guint depth = 0; ; depth++) {
        ChainLayer *layer;
        const StorageSource *cur = xml ? xml : next;
        gboolean probe = !xml && !next->format;
        g_autoptr(GError) err = NULL;
        g_autofree char *key = NULL;
        g_autofree char *probed = NULL;
        struct stat st;

        if (depth >= CHAIN_MAX_DEPTH) {
            ChainLayer *last = g_ptr_array_index(chain->layers, chain->layers->len - 1);
            chain_fail(chain, last, g_strdup_printf("backing chains more than %u layers deep "
                                                    "are not supported for disk '%s'",
                                                    CHAIN_MAX_DEPTH, target));
            break;
        }
        layer = g_new0(ChainLayer, 1);
        layer->src = xml ? chain_copy_one(xml) : g_steal_pointer(&next);
        layer->label = chain_label(target, depth);
        g_ptr_array_add(chain->layers, layer);
        cur = layer->src;
        if (!chain_is_local(cur)) {
            if (xml && xml->backing) {
                xml = xml->backing;
                continue;
            }
            chain->terminated = xml && xml->backing_terminated;
            break;    /* network sources are listed, never opened */
        }

        /* Only regular files and block devices are images: a FIFO would block its reader,
         * a directory or device has no image in it. */
        if (util_path_stat(cur->path, FALSE, &st, &err) &&
            !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
            g_set_error_literal(&err, CORE_ERROR, CORE_ERROR_INVALID,
                                "not a regular file or block device");
        if (err) {
            if (depth == 0)
                chain_fail(chain, layer, g_strdup_printf("Cannot access storage file '%s': %s",
                                                         cur->path, err->message));
            else
                chain_fail(chain, layer,
                           g_strdup_printf("Cannot access backing file '%s' of storage "
                                           "file '%s': %s", cur->path, top_path,
                                           err->message));
            break;
        }
        key = g_strdup_printf("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
                              (guint64)st.st_dev, (guint64)st.st_ino);
        if (g_hash_table_contains(seen, key)) {
            /* the element closing the loop is not listed again: the error goes
             * on the image whose backing file it is */
            g_autofree char *msg = g_strdup_printf("backing store for %s is self-referential "
                                                   "or too deeply nested", cur->path);
            g_ptr_array_remove_index(chain->layers, chain->layers->len - 1);
            layer = g_ptr_array_index(chain->layers, chain->layers->len - 1);
            chain_fail(chain, layer, g_steal_pointer(&msg));
            break;
        }
        g_hash_table_add(seen, g_steal_pointer(&key));

        if (probe) {
            /* libvirt's rule: a probed format is used only if the image has no
             * backing file of its own; otherwise it is raw and the chain fails */
            g_autofree char *own_backing = NULL;

            if (!(probed = qcow_probe_format(cur->path, &err))) {
                chain_fail(chain, layer, g_strdup(err->message));
                break;
            }
            if (g_str_equal(probed, "qcow2")) {
                g_autoptr(QcowInfo) pinfo = qcow_info_read(cur->path, "qcow2", &err);
                if (!pinfo) {
                    layer->src->format = g_strdup("qcow2");
                    chain_fail(chain, layer, g_strdup(err->message));
                    break;
                }
                own_backing = g_strdup(pinfo->backing_name);
            } else if (g_str_equal(probed, "qcow") || g_str_equal(probed, "qed")) {
                if (!qcow_other_backing_name(cur->path, probed, &own_backing, &err)) {
                    layer->src->format = g_strdup(probed);
                    chain_fail(chain, layer, g_strdup(err->message));
                    break;
                }
            }
            if (own_backing) {
                layer->src->format = g_strdup("raw");
                layer->info = qcow_info_read(cur->path, "raw", NULL);
                chain_fail(chain, layer,
                           g_strdup_printf("format of backing image '%s' of image '%s' was "
                                           "not specified in the image metadata (See "
                                           "https://libvirt.org/kbase/backing_chains.html "
                                           "for troubleshooting)",
                                           parent_backing, parent_path));
                break;
            }
            layer->src->format = g_strdup(probed);
        }

        if (!(layer->info = qcow_info_read(cur->path, cur->format ? cur->format : "raw", &err))) {
            layer->error = g_strdup(err->message);
            break;
        }
        if (layer->info->data_file && !chain_check_data_file(layer, &err)) {
            layer->error = g_strdup(err->message);
            break;
        }

        /* where next: the XML first, then the header */
        if (xml && xml->backing) {
            xml = xml->backing;
            g_free(parent_path);
            parent_path = g_strdup(cur->path);
            continue;
        }
        if (xml && xml->backing_terminated) {
            chain->terminated = TRUE;
            break;
        }
        if (!layer->info->backing_name) {
            chain->terminated = TRUE;
            break;
        }
        xml = NULL;
        g_free(parent_path);
        parent_path = g_strdup(cur->path);
        parent_backing = layer->info->backing_name;
        if (!(next = chain_source_from_backing(parent_backing, cur->path, &err))) {
            layer->error = g_strdup(err->message);
            break;
        }
        if (layer->info->backing_format)
            next->format = g_strdup(layer->info->backing_format);
    }
    chain_label_by_index(chain, target);
    return g_steal_pointer(&chain);
}

gboolean
chain_check_outside(const char *path, GError **error)
{
    g_autofree char *cur = g_strdup(path);

    for (guint depth = 0; cur && depth < CHAIN_MAX_DEPTH; depth++) {
        g_autoptr(QcowInfo) info = NULL;
        g_autoptr(StorageSource) next = NULL;
        g_autofree char *format = NULL;
        struct stat st;

        if (!util_path_outside(cur, error)) {
            g_prefix_error(error, "cannot use image '%s': ", cur);
            return FALSE;
        }
        if (!util_path_stat(cur, FALSE, &st, NULL))
            return TRUE;
        if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "cannot use image '%s': not a regular file or block device", cur);
            return FALSE;
        }
        if (!(format = qcow_probe_format(cur, NULL)) || !g_str_equal(format, "qcow2") ||
            !(info = qcow_info_read(cur, "qcow2", NULL)) || !info->backing_name ||
            !(next = chain_source_from_backing(info->backing_name, cur, NULL)) ||
            !chain_is_local(next))
            return TRUE;
        g_free(cur);
        cur = g_steal_pointer(&next->path);
    }
    return TRUE;
}

StorageSource *
chain_to_source(const Chain *chain)
{
    StorageSource *top = NULL;
    StorageSource *prev = NULL;
    guint i;

    for (i = 0; i < chain->layers->len; i++) {
        const ChainLayer *layer = g_ptr_array_index(chain->layers, i);
        StorageSource *copy = chain_copy_one(layer->src);

        if (prev)
            prev->backing = copy;
        else
            top = copy;
        prev = copy;
    }
    if (prev)
        prev->backing_terminated = chain->terminated;
    return top;
}
