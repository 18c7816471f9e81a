/* xmlutil.h: safe libxml2 reading and libvirt-style XML writing shared by the xml_* parsers. */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

#define XMLUTIL_MAX_DOC (10 * 1024 * 1024)  /* as virsh's VSH_MAX_XML_FILE */
#define XMLUTIL_MAX_DEPTH 256               /* libxml2's own default nesting limit */

/* Parses @buf safely: no network, no DTD loading, no entity substitution (a DOCTYPE
 * or entity declaration is refused), no output on stderr, size and depth limits.
 * Requires the root element to be @root (when non-NULL): otherwise CORE_ERROR_PARSE
 * "unexpected root element <%s>, expecting <%s>" like libvirt's virXMLParse.
 * Returns an owned document or NULL with CORE_ERROR_PARSE naming the line. */
xmlDoc *xmlutil_read(const char *buf, gsize len, const char *root, GError **error);

/* Attribute / element text helpers, libvirt-flavoured: an empty string counts as
 * missing (returns NULL). Owned results. */
char *xmlutil_prop(xmlNode *node, const char *name);
char *xmlutil_text(xmlNode *node);                  /* content of @node, NULL when empty */
xmlNode *xmlutil_child(xmlNode *node, const char *name);    /* first element child named @name */
guint xmlutil_count_children(xmlNode *node, const char *name);
char *xmlutil_child_text(xmlNode *node, const char *name);  /* text of first child @name */

/* Appends @text escaped as libvirt's virBufferEscapeString does (&lt; &gt; &amp;
 * &apos; &quot;). */
void xmlutil_escape(GString *out, const char *text);

/* Appends @indent spaces. */
void xmlutil_indent(GString *out, int indent);

/* Serialises @node (an element) and its subtree the way libvirt formats XML:
 * two-space indent starting at @indent, attributes in document order with single
 * quotes, empty elements as <x/>, text-only elements on one line, whitespace-only
 * text between elements dropped, comments kept. Trailing newline. */
void xmlutil_format_node(GString *out, xmlNode *node, int indent);

G_END_DECLS
