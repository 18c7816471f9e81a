/* ctl.c: control files: a write applies its payload when the payload is complete. */
#include "ctl.h"

#include <string.h>

#include "error.h"
#include "guard.h"
#include "manage.h"
#include "xmlutil.h"

typedef enum {
    CTL_LINES,     /* bare values, one per line: revert, delete, genid, undefine */
    CTL_ONE_DOC,   /* one XML document (create also takes a bare name) */
    CTL_STREAM,    /* several documents, applied at close: import */
} CtlKind;

struct CtlWriter {
    char *dom;              /* NULL: the top ctl/ */
    char *op;
    CtlKind kind;
    GByteArray *buf;        /* what has not been applied yet */
    guint64 offset;         /* bytes received so far */
    gboolean applied_doc;   /* a single-document file took its document */
};

static CtlKind
ctl_kind_of(const char *op)
{
    if (strcmp(op, "import") == 0)
        return CTL_STREAM;
    if (strcmp(op, "create") == 0 || strcmp(op, "create-no-metadata") == 0 ||
        strcmp(op, "redefine") == 0 || strcmp(op, "redefine-current") == 0 ||
        strcmp(op, "define") == 0 || strcmp(op, "backup") == 0)
        return CTL_ONE_DOC;
    return CTL_LINES;
}

CtlWriter *
ctl_writer_new(const ViewNode *node)
{
    CtlWriter *w = g_new0(CtlWriter, 1);

    w->dom = g_strdup(node->dom);
    w->op = g_strdup(node->leaf);
    w->kind = ctl_kind_of(node->leaf);
    w->buf = g_byte_array_new();
    return w;
}

void
ctl_writer_free(CtlWriter *w)
{
    if (!w)
        return;
    g_free(w->dom);
    g_free(w->op);
    g_byte_array_unref(w->buf);
    g_free(w);
}

const char *
ctl_writer_domain(const CtlWriter *w)
{
    return w->dom;
}

static gboolean
ctl_is_cancel(const char *payload, gsize len)
{
    g_autofree char *text = g_strndup(payload, len);

    return strcmp(g_strstrip(text), "cancel") == 0;
}

/* The guard's name for control file @op. */
static GuardOp
ctl_guard_op(const char *dom, const char *op)
{
    static const struct {
        const char *name;
        GuardOp op;
    } ops[] = {
        { "create", GUARD_OP_CREATE },
        { "create-no-metadata", GUARD_OP_CREATE_NO_METADATA },
        { "redefine", GUARD_OP_REDEFINE },
        { "redefine-current", GUARD_OP_REDEFINE_CURRENT },
        { "import", GUARD_OP_IMPORT },
        { "current", GUARD_OP_CURRENT },
        { "revert", GUARD_OP_REVERT },
        { "delete", GUARD_OP_DELETE },
        { "genid", GUARD_OP_GENID },
        { "backup", GUARD_OP_BACKUP },
    };

    if (!dom)
        return strcmp(op, "define") == 0 ? GUARD_OP_DEFINE : GUARD_OP_UNDEFINE;
    for (guint i = 0; i < G_N_ELEMENTS(ops); i++)
        if (strcmp(op, ops[i].name) == 0)
            return ops[i].op;
    g_assert_not_reached();
}

gboolean
ctl_apply(View *view, const char *dom, const char *op, const char *payload, gsize len,
          GError **error)
{
    Store *store = view_store(view);
    g_autofree char *result = NULL;
    g_autofree char *text = NULL;
    gboolean ok;

    if (view_read_only(view)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ROFS, "read-only mount");
        view_set_result(view, dom, FALSE, (*error)->message);
        return FALSE;
    }
    /* A running domain or a libvirt daemon owns what this would change: refused before
     * anything is touched (a backup cancel changes nothing and is let through). */
    if (!(strcmp(op, "backup") == 0 && ctl_is_cancel(payload, len)) &&
        !guard_check(store, store->live, ctl_guard_op(dom, op), dom, payload, len, error)) {
        view_set_result(view, dom, FALSE, (*error)->message);
        g_message("%s%s%s refused: %s", dom ? dom : "", dom ? "/" : "", op, (*error)->message);
        return FALSE;
    }
    if (!dom) {
        if (strcmp(op, "define") == 0) {
            ok = manage_define(store, payload, len, &result, error);
        } else {
            text = g_strndup(payload, len);
            ok = manage_undefine(store, text, &result, error);
        }
    } else if (strcmp(op, "backup") == 0) {
        text = g_strndup(payload, len);
        g_strstrip(text);
        if (strcmp(text, "cancel") == 0)
            ok = view_backup_cancel(view, dom, &result, error);
        else
            ok = view_backup_start(view, dom, payload, len, &result, error);
    } else if ((strcmp(op, "create") == 0 || strcmp(op, "create-no-metadata") == 0 ||
                strcmp(op, "revert") == 0 || strcmp(op, "delete") == 0) &&
               !view_backup_check_idle(view, dom, error)) {
        /* The images a running backup reads must not change under it. */
        g_prefix_error(error, "domain '%s' is busy: ", dom);
        ok = FALSE;
    } else if (strcmp(op, "create") == 0) {
        ok = manage_create(store, dom, payload, len, 0, &result, error);
    } else if (strcmp(op, "create-no-metadata") == 0) {
        ok = manage_create(store, dom, payload, len, MANAGE_CREATE_NO_METADATA, &result, error);
    } else if (strcmp(op, "redefine") == 0) {
        ok = manage_create(store, dom, payload, len, MANAGE_CREATE_REDEFINE, &result, error);
    } else if (strcmp(op, "redefine-current") == 0) {
        ok = manage_create(store, dom, payload, len,
                           MANAGE_CREATE_REDEFINE | MANAGE_CREATE_CURRENT, &result, error);
    } else if (strcmp(op, "import") == 0) {
        ok = manage_import(store, dom, payload, len, &result, error);
    } else {
        text = g_strndup(payload, len);
        /* A two-line delete ends with its name, trailing blanks included. */
        if (strcmp(op, "delete") != 0)
            g_strchomp(text);
        if (strcmp(op, "revert") == 0)
            ok = manage_revert(store, dom, text, &result, error);
        else if (strcmp(op, "delete") == 0)
            ok = manage_delete(store, dom, text, &result, error);
        else if (strcmp(op, "genid") == 0)
            ok = manage_genid(store, dom, text, &result, error);
        else if (strcmp(op, "current") == 0)
            ok = manage_set_current(store, dom, *text ? text : NULL, &result, error);
        else
            g_assert_not_reached();
    }
    view_set_result(view, dom, ok, ok ? result : (*error)->message);
    if (ok)
        g_message("%s%s%s: %s", dom ? dom : "", dom ? "/" : "", op, result);
    else
        g_message("%s%s%s failed: %s", dom ? dom : "", dom ? "/" : "", op, (*error)->message);
    if (ok)
        view_invalidate(view, dom);
    return ok;
}

static void
ctl_consume(CtlWriter *w, gsize n)
{
    g_byte_array_remove_range(w->buf, 0, n);
}

static gboolean
ctl_blank(const guint8 *p, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isspace(p[i]))
            return FALSE;
    return TRUE;
}

static gboolean
ctl_fail(CtlWriter *w, View *view, GError **error, int code, const char *msg)
{
    g_set_error_literal(error, CORE_ERROR, code, msg);
    view_set_result(view, w->dom, FALSE, msg);
    g_byte_array_set_size(w->buf, 0);
    return FALSE;
}

/* A line of ctl/delete that holds only options ("--children", "--"): the first
 * line of the two-line form. */
static gboolean
ctl_options_line(const char *line, gsize n)
{
    g_autofree char *s = g_strndup(line, n);
    g_auto(GStrv) words = g_strsplit_set(s, " \t\r", -1);
    guint count = 0;

    for (guint i = 0; words[i]; i++) {
        if (!*words[i])
            continue;
        if (!g_str_has_prefix(words[i], "--"))
            return FALSE;
        count++;
    }
    return count > 0;
}

/* The next request of ctl/delete in @data: "NAME [OPTIONS]" on one line, or a
 * line of options alone (a one-line request always has a name) followed by the
 * name alone on the next line, taken as it is: blanks and a leading "--"
 * included. Returns the bytes it takes (0: wait for more) and sets *@payload
 * (NULL: only blank lines). With @final (a close), the end of @data ends the
 * last line; an options line still waits for its name unless @last (the last
 * close: nothing more can come). */
static gsize
ctl_delete_next(const char *data, gsize len, gboolean final, gboolean last, char **payload)
{
    gsize p = 0;
    const char *nl;
    gsize end;

    *payload = NULL;
    for (;;) {   /* blank lines */
        nl = memchr(data + p, '\n', len - p);
        end = nl ? (gsize)(nl - data) : len;
        if (!ctl_blank((const guint8 *)data + p, end - p))
            break;
        if (!nl)
            return final ? len : p;
        p = end + 1;
    }
    if (!nl && !final)
        return p;   /* consume the blank lines; the line is incomplete */
    if (nl && ctl_options_line(data + p, end - p)) {
        /* The name line follows, whatever it holds. */
        const char *nl2 = memchr(nl + 1, '\n', len - (end + 1));

        if (!nl2 && (!final || (end + 1 == len && !last)))
            return p;
        end = nl2 ? (gsize)(nl2 - data) : len;
        *payload = g_strndup(data + p, end - p);
        return nl2 ? end + 1 : len;
    }
    *payload = g_strstrip(g_strndup(data + p, end - p));
    return nl ? end + 1 : len;
}

/* Applies the complete requests of ctl/delete in the buffer (@final, @last: as
 * ctl_delete_next() takes them); stops at the first failure, dropping what
 * follows. */
static gboolean
ctl_delete_process(CtlWriter *w, View *view, gboolean final, gboolean last, gboolean *changed,
                   GError **error)
{
    while (w->buf->len) {
        g_autofree char *payload = NULL;
        gsize used = ctl_delete_next((const char *)w->buf->data, w->buf->len, final, last,
                                     &payload);

        if (used == 0)
            return TRUE;
        ctl_consume(w, used);
        if (!payload)
            continue;
        if (!ctl_apply(view, w->dom, w->op, payload, strlen(payload), error)) {
            g_byte_array_set_size(w->buf, 0);
            return FALSE;
        }
        *changed = TRUE;
    }
    return TRUE;
}

/* Applies every complete payload in the buffer. */
static gboolean
ctl_process(CtlWriter *w, View *view, gboolean *changed, GError **error)
{
    for (;;) {
        const char *data = (const char *)w->buf->data;
        gsize len = w->buf->len;
        gsize start = 0;
        gboolean xml;

        while (start < len && g_ascii_isspace(data[start]))
            start++;
        if (start == len) {
            /* Only blank lines so far. */
            return TRUE;
        }
        xml = data[start] == '<';
        if (w->kind == CTL_STREAM)
            return TRUE;   /* applied at close */
        if (w->kind == CTL_LINES && !xml && strcmp(w->op, "delete") == 0)
            return ctl_delete_process(w, view, FALSE, FALSE, changed, error);
        if (w->kind == CTL_ONE_DOC && xml) {
            gssize end;

            if (w->applied_doc)
                return ctl_fail(w, view, error, CORE_ERROR_PARSE,
                                "only one XML document per write to this control file "
                                "(use ctl/import for several)");
            end = xmlutil_document_end(data + start, len - start);
            if (end == XMLUTIL_INCOMPLETE)
                return TRUE;
            if (end == XMLUTIL_MALFORMED)
                return ctl_fail(w, view, error, CORE_ERROR_PARSE, "not an XML document");
            end += start;
            /* Trailing garbage in the same buffer: nothing applied. */
            {
                const char *rest = data + end;
                gsize rest_len = len - end;

                if (!ctl_blank((const guint8 *)rest, rest_len))
                    return ctl_fail(w, view, error, CORE_ERROR_PARSE,
                                    rest_len && rest[0] != '<' && memchr(rest, '<', rest_len) == NULL
                                        ? "trailing data after the XML document"
                                        : "only one XML document per write to this control file "
                                          "(use ctl/import for several)");
            }
            w->applied_doc = TRUE;
            {
                g_autofree char *payload = g_strndup(data + start, end - start);
                gsize plen = end - start;

                ctl_consume(w, len);
                if (!ctl_apply(view, w->dom, w->op, payload, plen, error))
                    return FALSE;
                *changed = TRUE;
            }
            continue;
        }
        if (xml)
            return ctl_fail(w, view, error, CORE_ERROR_PARSE,
                            "this control file takes a value, not XML");
        {
            const char *nl = memchr(data + start, '\n', len - start);
            g_autofree char *line = NULL;

            if (!nl)
                return TRUE;   /* at its newline or at close */
            line = g_strndup(data + start, nl - (data + start));
            ctl_consume(w, nl - data + 1);
            g_strstrip(line);
            if (!*line)
                continue;
            if (!ctl_apply(view, w->dom, w->op, line, strlen(line), error)) {
                g_byte_array_set_size(w->buf, 0);
                return FALSE;
            }
            *changed = TRUE;
        }
    }
}

gboolean
ctl_writer_write(CtlWriter *w, View *view, const char *buf, gsize len, guint64 offset,
                 gboolean *changed, GError **error)
{
    gsize limit = w->kind == CTL_STREAM ? 64 * CTL_MAX_PAYLOAD : CTL_MAX_PAYLOAD;

    *changed = FALSE;
    if (offset != w->offset && offset != 0) {
        g_autofree char *msg = g_strdup_printf("control files take sequential writes "
                                               "(offset %" G_GUINT64_FORMAT ", expected %"
                                               G_GUINT64_FORMAT ")", offset, w->offset);
        return ctl_fail(w, view, error, CORE_ERROR_INVALID, msg);
    }
    if (w->buf->len + len > limit) {
        g_autofree char *msg = g_strdup_printf("payload is larger than %" G_GSIZE_FORMAT
                                               " bytes", limit);
        return ctl_fail(w, view, error, CORE_ERROR_TOO_BIG, msg);
    }
    w->offset = offset + len;
    g_byte_array_append(w->buf, (const guint8 *)buf, len);
    return ctl_process(w, view, changed, error);
}

/* TRUE when @buf holds only complete XML documents (and whitespace). */
static gboolean
ctl_documents_complete(const char *buf, gsize len)
{
    gsize off = 0;

    for (;;) {
        gssize end;

        while (off < len && g_ascii_isspace(buf[off]))
            off++;
        if (off == len)
            return TRUE;
        if ((end = xmlutil_document_end(buf + off, len - off)) < 0)
            return FALSE;
        off += end;
    }
}

gboolean
ctl_writer_flush(CtlWriter *w, View *view, gboolean final, gboolean *changed, GError **error)
{
    const char *data = (const char *)w->buf->data;
    gsize len = w->buf->len;
    gboolean xml;
    gboolean ok;

    *changed = FALSE;
    if (ctl_blank(w->buf->data, len))
        return TRUE;
    {
        gsize i = 0;

        while (i < len && g_ascii_isspace(data[i]))
            i++;
        xml = i < len && data[i] == '<';
    }
    /* FLUSH comes at every close() of any copy of the descriptor: `cat bad.xml >
     * ctl/create` must fail at its close, but `exec 3>ctl/create; printf ... >&3`
     * closes a copy after every printf. So an incomplete document fails this
     * close() yet stays buffered: a later write may still complete and apply it;
     * only the last close (release) drops it. */
    if (!final && xml && !ctl_documents_complete(data, len)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_PARSE, "incomplete XML document");
        view_set_result(view, w->dom, FALSE, (*error)->message);
        return FALSE;
    }
    if (w->kind == CTL_STREAM) {
        ok = ctl_apply(view, w->dom, w->op, data, len, error);
    } else if (w->kind == CTL_ONE_DOC && !w->applied_doc && !xml) {
        /* A bare name without newline (printf NAME > ctl/create). */
        g_autofree char *line = g_strndup(data, len);

        g_strstrip(line);
        ok = ctl_apply(view, w->dom, w->op, line, strlen(line), error);
    } else if (w->kind == CTL_LINES && strcmp(w->op, "delete") == 0) {
        /* An options line waiting for its name stays buffered for a later write. */
        return ctl_delete_process(w, view, TRUE, final, changed, error);
    } else if (w->kind == CTL_LINES) {
        g_autofree char *line = g_strndup(data, len);

        g_strstrip(line);
        ok = ctl_apply(view, w->dom, w->op, line, strlen(line), error);
    } else {
        ok = ctl_fail(w, view, error, CORE_ERROR_PARSE, "incomplete XML document");
    }
    g_byte_array_set_size(w->buf, 0);
    *changed = ok;
    return ok;
}
