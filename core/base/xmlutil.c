/* xmlutil.c: safe libxml2 parsing and the libvirt-style serialiser shared by the XML modules. */
#include "xmlutil.h"

#include <errno.h>
#include <libxml/parser.h>
#include <string.h>

#include "error.h"

/* Depth of @node's deepest descendant; stops counting past @limit. */
static guint
xmlutil_depth(xmlNode *node, guint limit)
{
    guint best = 0;

    if (limit == 0)
        return 1;
    for (xmlNode *c = node->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            guint d = xmlutil_depth(c, limit - 1);

            if (d > best)
                best = d;
            if (best >= limit)
                break;
        }
    }
    return best + 1;
}

xmlDoc *
xmlutil_read(const char *buf, gsize len, const char *root, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlParserCtxtPtr ctxt = NULL;
    xmlNode *top;

    if (len > XMLUTIL_MAX_DOC) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_TOO_BIG,
                    "XML document is larger than %d bytes", XMLUTIL_MAX_DOC);
        return NULL;
    }
    if (len == 0 || memchr(buf, '\0', len)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    len ? "XML document contains a NUL byte" : "empty XML document");
        return NULL;
    }
    if (!(ctxt = xmlNewParserCtxt())) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE, "out of memory");
        return NULL;
    }
    /* No XML_PARSE_NOENT (no entity substitution), no DTD loading, no network,
     * no huge-document relaxation: libxml2 keeps its depth and size limits. */
    doc = xmlCtxtReadMemory(ctxt, buf, (int)len, "domain.xml", NULL,
                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                            XML_PARSE_NOCDATA);
    if (!doc || !ctxt->wellFormed) {
        const xmlError *err = xmlCtxtGetLastError(ctxt);
        g_autofree char *msg = g_strdup(err && err->message ? err->message : "unknown error");

        g_strchomp(msg);
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE, "XML error at line %d: %s",
                    err ? err->line : 0, msg);
        xmlFreeParserCtxt(ctxt);
        return NULL;
    }
    xmlFreeParserCtxt(ctxt);
    if (doc->intSubset || doc->extSubset) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE,
                            "XML document must not have a DOCTYPE (no DTDs or entities)");
        return NULL;
    }
    top = xmlDocGetRootElement(doc);
    if (!top) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE, "missing root element");
        return NULL;
    }
    if (root && !xmlStrEqual(top->name, (const xmlChar *)root)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "unexpected root element <%s>, expecting <%s>", (const char *)top->name, root);
        return NULL;
    }
    if (xmlutil_depth(top, XMLUTIL_MAX_DEPTH) > XMLUTIL_MAX_DEPTH) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "XML document is nested deeper than %d levels", XMLUTIL_MAX_DEPTH);
        return NULL;
    }
    return g_steal_pointer(&doc);
}

char *
xmlutil_prop(xmlNode *node, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
    char *ret = NULL;

    if (v && *v)
        ret = g_strdup((const char *)v);
    xmlFree(v);
    return ret;
}

char *
xmlutil_prop_raw(xmlNode *node, const char *name)
{
    xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
    char *ret = v ? g_strdup((const char *)v) : NULL;

    xmlFree(v);
    return ret;
}

gboolean
xmlutil_parse_ullp(const char *str, guint64 *out)
{
    char *end = NULL;
    guint64 v;

    if (!str)
        return FALSE;
    errno = 0;
    v = g_ascii_strtoull(str, &end, 10);
    if (errno != 0 || end == str || *end != '\0' || memchr(str, '-', end - str))
        return FALSE;
    *out = v;
    return TRUE;
}

gboolean
xmlutil_parse_ll(const char *str, gint64 *out)
{
    char *end = NULL;
    gint64 v;

    if (!str)
        return FALSE;
    errno = 0;
    v = g_ascii_strtoll(str, &end, 10);
    if (errno != 0 || end == str || *end != '\0')
        return FALSE;
    *out = v;
    return TRUE;
}

gboolean
xmlutil_parse_uip(const char *str, guint *out)
{
    guint64 v;

    if (!xmlutil_parse_ullp(str, &v) || v > G_MAXUINT)
        return FALSE;
    *out = (guint)v;
    return TRUE;
}

char *
xmlutil_text(xmlNode *node)
{
    xmlChar *v = xmlNodeGetContent(node);
    char *ret = NULL;

    if (v && *v)
        ret = g_strdup((const char *)v);
    xmlFree(v);
    return ret;
}

xmlNode *
xmlutil_child(xmlNode *node, const char *name)
{
    for (xmlNode *c = node ? node->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, (const xmlChar *)name))
            return c;
    return NULL;
}

gboolean
xmlutil_is_element(xmlNode *node, const char *name)
{
    return node && node->type == XML_ELEMENT_NODE &&
           xmlStrEqual(node->name, (const xmlChar *)name);
}

void
xmlutil_reorder_attrs(xmlNode *node, const char *const *first)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(xmlFree);

    for (xmlAttr *a = node->properties; a; a = a->next) {
        if (a->ns)
            continue;
        g_ptr_array_add(names, g_strdup((const char *)a->name));
        g_ptr_array_add(values, xmlNodeListGetString(node->doc, a->children, 1));
    }
    for (guint i = 0; i < names->len; i++)
        xmlUnsetProp(node, (const xmlChar *)names->pdata[i]);
    for (guint f = 0; first[f]; f++)
        for (guint i = 0; i < names->len; i++)
            if (strcmp(names->pdata[i], first[f]) == 0)
                xmlSetProp(node, (const xmlChar *)names->pdata[i],
                           values->pdata[i] ? values->pdata[i] : (const xmlChar *)"");
    for (guint i = 0; i < names->len; i++)
        if (!g_strv_contains(first, names->pdata[i]))
            xmlSetProp(node, (const xmlChar *)names->pdata[i],
                       values->pdata[i] ? values->pdata[i] : (const xmlChar *)"");
}

gboolean
xmlutil_bad_attr(GError **error, int code, xmlNode *node, const char *attr, const char *value)
{
    g_set_error(error, CORE_ERROR, code, "Invalid value for attribute '%s' in element '%s': '%s'.",
                attr, (const char *)node->name, value);
    return FALSE;
}

guint
xmlutil_count_children(xmlNode *node, const char *name)
{
    guint n = 0;

    for (xmlNode *c = node ? node->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, (const xmlChar *)name))
            n++;
    return n;
}

char *
xmlutil_child_text(xmlNode *node, const char *name)
{
    xmlNode *c = xmlutil_child(node, name);

    return c ? xmlutil_text(c) : NULL;
}

void
xmlutil_escape(GString *out, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '<': g_string_append(out, "&lt;"); break;
        case '>': g_string_append(out, "&gt;"); break;
        case '&': g_string_append(out, "&amp;"); break;
        case '\'': g_string_append(out, "&apos;"); break;
        case '"': g_string_append(out, "&quot;"); break;
        default: g_string_append_c(out, *p); break;
        }
    }
}

void
xmlutil_indent(GString *out, int indent)
{
    for (int i = 0; i < indent; i++)
        g_string_append_c(out, ' ');
}

static gboolean
xmlutil_blank(const xmlChar *s)
{
    for (; s && *s; s++)
        if (!g_ascii_isspace(*s))
            return FALSE;
    return TRUE;
}

/* libxml2's xmlNodeDump escaping: attributes also escape '"' and white space. */
static void
xmlutil_dump_escape(GString *out, const char *text, gboolean attr)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '<': g_string_append(out, "&lt;"); break;
        case '>': g_string_append(out, "&gt;"); break;
        case '&': g_string_append(out, "&amp;"); break;
        case '\r': g_string_append(out, "&#13;"); break;
        case '"': g_string_append(out, attr ? "&quot;" : "\""); break;
        case '\n': g_string_append(out, attr ? "&#10;" : "\n"); break;
        case '\t': g_string_append(out, attr ? "&#9;" : "\t"); break;
        default: g_string_append_c(out, *p); break;
        }
    }
}

/* Text or an attribute value as @dump says: xmlNodeDump's escaping, else libvirt's. */
static void
xmlutil_put_text(GString *out, const char *text, gboolean attr, gboolean dump)
{
    if (dump)
        xmlutil_dump_escape(out, text, attr);
    else
        xmlutil_escape(out, text);
}

/* One attribute or namespace declaration: name='value' (libvirt), name="value" (@dump). */
static void
xmlutil_put_attr(GString *out, const char *prefix, const char *name, const char *value,
                 gboolean dump)
{
    char q = dump ? '"' : '\'';

    g_string_append_c(out, ' ');
    if (prefix)
        g_string_append_printf(out, "%s:", prefix);
    g_string_append_printf(out, "%s=%c", name, q);
    xmlutil_put_text(out, value ? value : "", TRUE, dump);
    g_string_append_c(out, q);
}

static void
xmlutil_put_ns(GString *out, xmlNode *node, gboolean dump)
{
    for (xmlNs *ns = node->nsDef; ns; ns = ns->next)
        xmlutil_put_attr(out, ns->prefix ? "xmlns" : NULL,
                         ns->prefix ? (const char *)ns->prefix : "xmlns",
                         (const char *)ns->href, dump);
}

/* Attributes, then namespace declarations (libvirt's writer); xmlNodeDump (@dump)
 * puts the declarations first. */
static void
xmlutil_format_attrs(GString *out, xmlNode *node, gboolean dump)
{
    if (dump)
        xmlutil_put_ns(out, node, dump);
    for (xmlAttr *a = node->properties; a; a = a->next) {
        xmlChar *v = xmlNodeListGetString(node->doc, a->children, 1);

        xmlutil_put_attr(out, a->ns && a->ns->prefix ? (const char *)a->ns->prefix : NULL,
                         (const char *)a->name, (const char *)v, dump);
        xmlFree(v);
    }
    if (!dump)
        xmlutil_put_ns(out, node, dump);
}

/* The serialiser of xmlutil_format_node() and, with @dump, of
 * xmlutil_format_node_dump(). */
static void
xmlutil_format_node_as(GString *out, xmlNode *node, int indent, gboolean dump)
{
    gboolean has_elements = FALSE;
    gboolean has_text = FALSE;
    const char *prefix = node->ns && node->ns->prefix ? (const char *)node->ns->prefix : NULL;

    if (node->type == XML_COMMENT_NODE) {
        xmlutil_indent(out, indent);
        g_string_append_printf(out, "<!--%s-->\n", (const char *)node->content);
        return;
    }
    if (node->type != XML_ELEMENT_NODE)
        return;
    for (xmlNode *c = node->children; c; c = c->next) {
        if (c->type == XML_ELEMENT_NODE || c->type == XML_COMMENT_NODE)
            has_elements = TRUE;
        else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
                 !xmlutil_blank(c->content))
            has_text = TRUE;
    }
    xmlutil_indent(out, indent);
    g_string_append_c(out, '<');
    if (prefix)
        g_string_append_printf(out, "%s:", prefix);
    g_string_append(out, (const char *)node->name);
    xmlutil_format_attrs(out, node, dump);
    if (!has_elements && !has_text) {
        g_string_append(out, "/>\n");
        return;
    }
    g_string_append_c(out, '>');
    if (has_text && !has_elements) {
        /* Text-only element: content kept verbatim (whitespace included). */
        for (xmlNode *c = node->children; c; c = c->next)
            if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
                xmlutil_put_text(out, (const char *)c->content, FALSE, dump);
    } else if (has_text && !dump) {
        /* Mixed content such as <vcpu><!--x-->2</vcpu> stays verbatim, serialised by
         * libxml2 without formatting: re-indented ("\n    2\n  ") the parser would
         * refuse it, and a defined domain would vanish on the next load. */
        xmlBuffer *buf = xmlBufferCreate();

        for (xmlNode *c = node->children; c; c = c->next)
            xmlNodeDump(buf, node->doc, c, 0, 0);
        g_string_append_len(out, (const char *)xmlBufferContent(buf), xmlBufferLength(buf));
        xmlBufferFree(buf);
    } else {
        g_string_append_c(out, '\n');
        for (xmlNode *c = node->children; c; c = c->next) {
            if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
                if (!xmlutil_blank(c->content)) {
                    g_autofree char *t = g_strstrip(g_strdup((const char *)c->content));

                    xmlutil_indent(out, indent + 2);
                    xmlutil_put_text(out, t, FALSE, dump);
                    g_string_append_c(out, '\n');
                }
                continue;
            }
            xmlutil_format_node_as(out, c, indent + 2, dump);
        }
        xmlutil_indent(out, indent);
    }
    g_string_append(out, "</");
    if (prefix)
        g_string_append_printf(out, "%s:", prefix);
    g_string_append_printf(out, "%s>\n", (const char *)node->name);
}

void
xmlutil_format_node(GString *out, xmlNode *node, int indent)
{
    xmlutil_format_node_as(out, node, indent, FALSE);
}

void
xmlutil_format_node_dump(GString *out, xmlNode *node, int indent)
{
    xmlutil_format_node_as(out, node, indent, TRUE);
}

/* ---- Relax NG validation (libvirt's virXMLValidateAgainstSchema) ---- */

#include <libxml/relaxng.h>
#include <unistd.h>

#include "config.h"

/* Parsed schemas by path, parsed once: xmlRelaxNGParse of domain.rng takes tens of
 * milliseconds. Validation holds the lock too, since libxml2 does not promise that
 * one xmlRelaxNG may be used by two validation contexts at once. */
static GMutex xmlutil_rng_lock;
static GHashTable *xmlutil_rng_cache;   /* char *path -> xmlRelaxNG *; guarded by xmlutil_rng_lock */

/* Structured error handler: appends libxml2's message, as libvirt's catchRNGError. */
static void
xmlutil_rng_catch(void *data, const xmlError *err)
{
    GString *buf = data;

    if (err && err->message)
        g_string_append(buf, err->message);
}

/* Returns the cached schema for @path, parsing it on first use. Lock held. */
static xmlRelaxNGPtr
xmlutil_rng_get(const char *path, GError **error)
{
    xmlRelaxNGParserCtxtPtr pctxt = NULL;
    xmlRelaxNGPtr rng = NULL;
    g_autoptr(GString) msg = g_string_new(NULL);

    if (!xmlutil_rng_cache)
        xmlutil_rng_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if ((rng = g_hash_table_lookup(xmlutil_rng_cache, path)))
        return rng;
    /* libxml2 would print its I/O warning on stderr: check first */
    if (access(path, R_OK) < 0) {
        int errsv = errno;

        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED, "Unable to parse RNG %s: %s",
                    path, g_strerror(errsv));
        return NULL;
    }
    if (!(pctxt = xmlRelaxNGNewParserCtxt(path))) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "Unable to create RNG parser for %s", path);
        return NULL;
    }
    xmlRelaxNGSetParserStructuredErrors(pctxt, (xmlStructuredErrorFunc)xmlutil_rng_catch, msg);
    rng = xmlRelaxNGParse(pctxt);
    xmlRelaxNGFreeParserCtxt(pctxt);
    if (!rng) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED, "Unable to parse RNG %s: %s",
                    path, msg->len ? g_strchomp(msg->str) : "unknown error");
        return NULL;
    }
    g_hash_table_insert(xmlutil_rng_cache, g_strdup(path), rng);
    return rng;
}

/* xmlutil_validate_rng() with xmlutil_rng_lock held. */
static gboolean
xmlutil_validate_rng_locked(xmlDoc *doc, const char *rng_path, GError **error)
{
    g_autoptr(GString) msg = g_string_new(NULL);
    xmlRelaxNGValidCtxtPtr vctxt = NULL;
    xmlRelaxNGPtr rng;
    int rc;

    if (!(rng = xmlutil_rng_get(rng_path, error)))
        return FALSE;
    if (!(vctxt = xmlRelaxNGNewValidCtxt(rng))) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "Unable to create RNG validation context %s", rng_path);
        return FALSE;
    }
    xmlRelaxNGSetValidStructuredErrors(vctxt, (xmlStructuredErrorFunc)xmlutil_rng_catch, msg);
    rc = xmlRelaxNGValidateDoc(vctxt, doc);
    xmlRelaxNGFreeValidCtxt(vctxt);
    if (rc != 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_PARSE,
                    "XML document failed to validate against schema: "
                    "Unable to validate doc against %s\n%s", rng_path, msg->str);
        return FALSE;
    }
    return TRUE;
}

gboolean
xmlutil_validate_rng(xmlDoc *doc, const char *rng_path, GError **error)
{
    gboolean ok;

    g_mutex_lock(&xmlutil_rng_lock);
    ok = xmlutil_validate_rng_locked(doc, rng_path, error);
    g_mutex_unlock(&xmlutil_rng_lock);
    return ok;
}

const char *
xmlutil_schema_dir(void)
{
    const char *env = g_getenv("SNAPFS_SCHEMA_DIR");

    return env && *env ? env : SNAPFS_SCHEMA_DIR;
}

/* Lexical scan for xmlutil_document_end(): @p at '<'. Returns the offset after the
 * construct, XMLUTIL_INCOMPLETE or XMLUTIL_MALFORMED; @depth_delta is +1 for a
 * start tag, -1 for an end tag, 0 otherwise. */
static gssize
xmlutil_scan_markup(const char *buf, gsize len, gsize p, int *depth_delta)
{
    const char *end;

    *depth_delta = 0;
    if (p + 1 >= len)
        return XMLUTIL_INCOMPLETE;
    if (buf[p + 1] == '!') {
        if (len - p >= 4 && memcmp(buf + p, "<!--", 4) == 0) {
            end = g_strstr_len(buf + p + 4, len - p - 4, "-->");
            return end ? (gssize)(end - buf) + 3 : XMLUTIL_INCOMPLETE;
        }
        if (len - p >= 9 && memcmp(buf + p, "<![CDATA[", 9) == 0) {
            end = g_strstr_len(buf + p + 9, len - p - 9, "]]>");
            return end ? (gssize)(end - buf) + 3 : XMLUTIL_INCOMPLETE;
        }
        if (len - p < 9)
            return XMLUTIL_INCOMPLETE;
        /* <!DOCTYPE ...>: refused later by xmlutil_read; here just skip it. */
        end = memchr(buf + p, '>', len - p);
        return end ? (gssize)(end - buf) + 1 : XMLUTIL_INCOMPLETE;
    }
    if (buf[p + 1] == '?') {
        end = g_strstr_len(buf + p + 2, len - p - 2, "?>");
        return end ? (gssize)(end - buf) + 2 : XMLUTIL_INCOMPLETE;
    }
    /* A tag: find its '>' outside quoted attribute values. */
    {
        char quote = 0;
        gsize q;

        for (q = p + 1; q < len; q++) {
            char c = buf[q];

            if (quote) {
                if (c == quote)
                    quote = 0;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else if (c == '>') {
                if (buf[p + 1] == '/')
                    *depth_delta = -1;
                else if (buf[q - 1] != '/')
                    *depth_delta = 1;
                return q + 1;
            }
        }
        return XMLUTIL_INCOMPLETE;
    }
}

gboolean
xmlutil_is_document(const char *buf, gsize len)
{
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isspace(buf[i]))
            return buf[i] == '<';
    return FALSE;
}

gssize
xmlutil_document_end(const char *buf, gsize len)
{
    gsize p = 0;
    int depth = 0;
    gboolean in_root = FALSE;

    while (p < len) {
        int delta;
        gssize next;

        if (!in_root) {
            if (g_ascii_isspace(buf[p])) {
                p++;
                continue;
            }
            if (buf[p] != '<')
                return XMLUTIL_MALFORMED;
        } else if (buf[p] != '<') {
            const char *lt = memchr(buf + p, '<', len - p);

            if (!lt)
                return XMLUTIL_INCOMPLETE;
            p = lt - buf;
        }
        next = xmlutil_scan_markup(buf, len, p, &delta);
        if (next < 0)
            return next;
        if (!in_root && delta == -1)
            return XMLUTIL_MALFORMED;
        if (!in_root && buf[p + 1] != '!' && buf[p + 1] != '?') {
            in_root = TRUE;
            if (delta == 0)   /* <root/> */
                return next;
        }
        depth += delta;
        if (in_root && depth == 0)
            return next;
        if (depth > XMLUTIL_MAX_DEPTH * 64)
            return XMLUTIL_MALFORMED;
        p = next;
    }
    return XMLUTIL_INCOMPLETE;
}
