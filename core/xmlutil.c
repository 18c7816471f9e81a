/* xmlutil.c: safe libxml2 parsing and the libvirt-style serialiser shared by the XML modules. */
#include "xmlutil.h"

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

static void
xmlutil_format_attrs(GString *out, xmlNode *node)
{
    for (xmlAttr *a = node->properties; a; a = a->next) {
        xmlChar *v = xmlNodeListGetString(node->doc, a->children, 1);

        g_string_append_c(out, ' ');
        if (a->ns && a->ns->prefix)
            g_string_append_printf(out, "%s:", (const char *)a->ns->prefix);
        g_string_append_printf(out, "%s='", (const char *)a->name);
        xmlutil_escape(out, v ? (const char *)v : "");
        g_string_append_c(out, '\'');
        xmlFree(v);
    }
    for (xmlNs *ns = node->nsDef; ns; ns = ns->next) {
        g_string_append_printf(out, ns->prefix ? " xmlns:%s='" : " xmlns%s='",
                               ns->prefix ? (const char *)ns->prefix : "");
        xmlutil_escape(out, (const char *)ns->href);
        g_string_append_c(out, '\'');
    }
}

void
xmlutil_format_node(GString *out, xmlNode *node, int indent)
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
    xmlutil_format_attrs(out, node);
    if (!has_elements && !has_text) {
        g_string_append(out, "/>\n");
        return;
    }
    g_string_append_c(out, '>');
    if (has_text && !has_elements) {
        /* Text-only element: content kept verbatim (whitespace included). */
        for (xmlNode *c = node->children; c; c = c->next)
            if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE)
                xmlutil_escape(out, (const char *)c->content);
    } else {
        /* Mixed content is rare in libvirt XML: text is trimmed onto its own line. */
        g_string_append_c(out, '\n');
        for (xmlNode *c = node->children; c; c = c->next) {
            if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
                if (!xmlutil_blank(c->content)) {
                    g_autofree char *t = g_strstrip(g_strdup((const char *)c->content));

                    xmlutil_indent(out, indent + 2);
                    xmlutil_escape(out, t);
                    g_string_append_c(out, '\n');
                }
                continue;
            }
            xmlutil_format_node(out, c, indent + 2);
        }
        xmlutil_indent(out, indent);
    }
    g_string_append(out, "</");
    if (prefix)
        g_string_append_printf(out, "%s:", prefix);
    g_string_append_printf(out, "%s>\n", (const char *)node->name);
}
