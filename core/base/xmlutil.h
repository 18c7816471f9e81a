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
/* As libvirt's virXMLPropString(): "" when present and empty, NULL only when
 * absent. Owned. */
char *xmlutil_prop_raw(xmlNode *node, const char *name);
/* libvirt's virStrToLong_ullp: base 10, the whole string (leading white space
 * and a '+' allowed), no minus sign, no overflow. FALSE leaves @out as it was. */
gboolean xmlutil_parse_ullp(const char *str, guint64 *out);

/* libvirt's virStrToLong_uip: as xmlutil_parse_ullp(), at most G_MAXUINT. */
gboolean xmlutil_parse_uip(const char *str, guint *out);

/* libvirt's virStrToLong_ll: base 10, the whole string, leading white space and
 * a sign allowed. FALSE leaves @out as it was. */
gboolean xmlutil_parse_ll(const char *str, gint64 *out);

char *xmlutil_text(xmlNode *node);                  /* content of @node, NULL when empty */
xmlNode *xmlutil_child(xmlNode *node, const char *name);    /* first element child named @name */
guint xmlutil_count_children(xmlNode *node, const char *name);
gboolean xmlutil_is_element(xmlNode *node, const char *name); /* an element named @name */
/* Moves the attributes named in @first (NULL-terminated) to the front, in that
 * order, keeping the others after them in document order (libvirt prints its own
 * attributes first). */
void xmlutil_reorder_attrs(xmlNode *node, const char *const *first);
/* Sets @code (a CoreError) with virXMLPropEnum's text for a value of @attr in @node
 * that it does not accept ("Invalid value for attribute ... : '%s'."); returns FALSE. */
gboolean xmlutil_bad_attr(GError **error, int code, xmlNode *node, const char *attr,
                          const char *value);
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

/* The same layout as libxml2's xmlNodeDump(format=1) prints it, which is how libvirt
 * prints <metadata>: double quotes, namespace declarations first, xmlNodeDump's
 * escaping, and mixed content re-indented like elements. */
void xmlutil_format_node_dump(GString *out, xmlNode *node, int indent);

/* Validates @doc against the Relax NG schema at @rng_path (parsed once and cached,
 * thread-safe). libxml2's messages are captured, never printed. On failure sets
 * CORE_ERROR_PARSE with libvirt's text "XML document failed to validate against
 * schema: Unable to validate doc against RNG_PATH\nREASONS" (REASONS: libxml2's
 * messages, each ending in a newline); a schema that cannot be loaded gives
 * CORE_ERROR_UNSUPPORTED "Unable to parse RNG %s: %s". */
gboolean xmlutil_validate_rng(xmlDoc *doc, const char *rng_path, GError **error);

/* The directory of libvirt's RNG schemas: $SNAPFS_SCHEMA_DIR when set and non-empty,
 * else the build's SNAPFS_SCHEMA_DIR. Not owned. */
const char *xmlutil_schema_dir(void);

/* Where the first XML document in @buf ends (just after its root element's close
 * tag), skipping a leading XML declaration, comments, processing instructions and
 * whitespace. Returns the offset, XMLUTIL_INCOMPLETE when more bytes are needed,
 * or XMLUTIL_MALFORMED when @buf cannot start a document. A lexical scan only: the
 * document still has to be parsed. */
#define XMLUTIL_INCOMPLETE (-1)
#define XMLUTIL_MALFORMED (-2)
gssize xmlutil_document_end(const char *buf, gsize len);

/* TRUE when @buf is meant as XML: its first byte that is not blank is '<' (a control file
 * takes a document or a bare value, and a value never starts with '<'). */
gboolean xmlutil_is_document(const char *buf, gsize len);

G_END_DECLS
