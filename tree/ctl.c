/* ctl.c: control files: a write applies its payload when the payload is complete. */
#include "ctl.h"

#include <string.h>

#include "error.h"
#include "util.h"
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

/* The control files' names, and the operation each one asks for. */
static const struct {
    const char *name;
    BackendOpKind op;
} ctl_ops[] = {
    { "create", BACKEND_OP_CREATE },
    { "create-no-metadata", BACKEND_OP_CREATE_NO_METADATA },
    { "redefine", BACKEND_OP_REDEFINE },
    { "redefine-current", BACKEND_OP_REDEFINE_CURRENT },
    { "import", BACKEND_OP_IMPORT },
    { "current", BACKEND_OP_CURRENT },
    { "revert", BACKEND_OP_REVERT },
    { "delete", BACKEND_OP_DELETE },
    { "genid", BACKEND_OP_GENID },
    { "backup", BACKEND_OP_BACKUP },
    { "define", BACKEND_OP_DEFINE },
    { "undefine", BACKEND_OP_UNDEFINE },
};

static BackendOpKind
ctl_op_of(const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(ctl_ops); i++)
        if (strcmp(name, ctl_ops[i].name) == 0)
            return ctl_ops[i].op;
    g_assert_not_reached();
}

static const char *
ctl_op_name(BackendOpKind op)
{
    for (guint i = 0; i < G_N_ELEMENTS(ctl_ops); i++)
        if (ctl_ops[i].op == op)
            return ctl_ops[i].name;
    g_assert_not_reached();
}

/* A bare name of ctl/create may end with virsh snapshot-create-as's " --quiesce" and
 * " --memory", in any order: taken off @name into @flags. */
static void
ctl_create_options(char *name, guint *flags)
{
    static const struct {
        const char *word;
        guint flag;
    } options[] = {
        { " --quiesce", BACKEND_CREATE_QUIESCE },
        { " --memory", BACKEND_CREATE_MEMORY },
    };
    gboolean found = TRUE;

    while (found) {
        found = FALSE;
        for (guint i = 0; i < G_N_ELEMENTS(options); i++) {
            gsize n = strlen(name), w = strlen(options[i].word);

            if (n > w && strcmp(name + n - w, options[i].word) == 0) {
                name[n - w] = '\0';
                *flags |= options[i].flag;
                found = TRUE;
            }
        }
    }
}

/* One option word of ctl/delete into @flags; "--" alone adds none. */
static gboolean
ctl_delete_option(const char *w, guint *flags, GError **error)
{
    if (strcmp(w, "--children") == 0)
        *flags |= BACKEND_DELETE_CHILDREN;
    else if (strcmp(w, "--children-only") == 0)
        *flags |= BACKEND_DELETE_CHILDREN_ONLY;
    else if (strcmp(w, "--metadata") == 0)
        *flags |= BACKEND_DELETE_METADATA_ONLY;
    else if (strcmp(w, "--") != 0) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID, "unknown option '%s'", w);
        return FALSE;
    }
    return TRUE;
}

/* A ctl/delete request: "NAME [OPTIONS]" on one line, words split at blanks; or the
 * options alone on a first line ("--" for none) and the name alone on the second, as
 * snapshots.tsv shows it (\\, \t, \n, \r escaped): any name, blanks or a leading "--"
 * included. The name is owned. */
static gboolean
ctl_parse_delete(const char *args, char **name, guint *flags, GError **error)
{
    const char *nl = strchr(args, '\n');
    g_auto(GStrv) words = NULL;

    *flags = 0;
    *name = NULL;
    if (nl) {
        g_autofree char *opts = g_strndup(args, nl - args);
        g_autofree char *line = g_strdup(nl + 1);
        gsize n = strlen(line);

        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[--n] = '\0';
        words = g_strsplit_set(opts, " \t\r", -1);
        for (guint i = 0; words[i]; i++)
            if (*words[i] && !ctl_delete_option(words[i], flags, error))
                return FALSE;
        if (!*line || strchr(line, '\n')) {
            g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                                "expected the snapshot name alone on the line after the "
                                "options");
            return FALSE;
        }
        return (*name = util_tsv_unescape(line, error)) != NULL;
    }
    words = g_strsplit_set(args, " \t", -1);
    for (guint i = 0; words[i]; i++) {
        const char *w = words[i];

        if (!*w)
            continue;
        if (g_str_has_prefix(w, "--")) {
            if (!ctl_delete_option(w, flags, error)) {
                g_clear_pointer(name, g_free);
                return FALSE;
            }
        } else if (*name) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                        "expected one snapshot name, got '%s' and '%s' (a name with blanks "
                        "goes alone on a line after a line of options, \"--\" for none)",
                        *name, w);
            g_clear_pointer(name, g_free);
            return FALSE;
        } else {
            *name = g_strdup(w);
        }
    }
    if (!*name) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID, "missing snapshot name");
        return FALSE;
    }
    return TRUE;
}

/* A ctl/undefine request: "NAME [--snapshots-metadata]". *@name (owned) is the first word
 * that is not an option even when the request is refused: the guard names that domain. */
static gboolean
ctl_parse_undefine(const char *args, char **name, guint *flags, GError **error)
{
    g_auto(GStrv) words = g_strsplit_set(args, " \t\n", -1);
    g_autoptr(GError) bad = NULL;

    *flags = 0;
    *name = NULL;
    for (guint i = 0; words[i]; i++) {
        if (!*words[i])
            continue;
        if (strcmp(words[i], "--snapshots-metadata") == 0) {
            *flags |= BACKEND_UNDEFINE_SNAPSHOTS_METADATA;
        } else if (g_str_has_prefix(words[i], "--") || *name) {
            if (!bad)
                g_set_error(&bad, CORE_ERROR, CORE_ERROR_INVALID, "unexpected argument '%s'",
                            words[i]);
        } else {
            *name = g_strdup(words[i]);
        }
    }
    if (!bad && !*name)
        g_set_error_literal(&bad, CORE_ERROR, CORE_ERROR_INVALID, "missing domain name");
    if (bad) {
        g_propagate_error(error, g_steal_pointer(&bad));
        return FALSE;
    }
    return TRUE;
}

/* Runs @req; @invalid: why the request as written cannot run (reported after the
 * backend's check, which refuses first what it refuses). */
static gboolean
ctl_execute(View *view, const BackendOp *req, const GError *invalid, GError **error)
{
    Backend *backend = view_backend(view);
    const char *dom = req->dom;
    const char *op = ctl_op_name(req->op);
    g_autofree char *result = NULL;
    gboolean ok;

    if (backend->read_only) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ROFS, "read-only mount");
        ok = FALSE;
    } else if (invalid) {
        /* A backup cancel changes nothing: nothing to refuse. */
        ok = (req->op == BACKEND_OP_BACKUP && req->cancel) || backend_check(backend, req, error);
        if (ok) {
            g_propagate_error(error, g_error_copy(invalid));
            ok = FALSE;
        }
    } else if (req->op == BACKEND_OP_BACKUP) {
        ok = req->cancel ? view_backup_cancel(view, dom, &result, error)
                         : view_backup_start(view, dom, req->xml, req->len, &result, error);
    } else {
        ok = backend_apply(backend, req, &result, error);
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

gboolean
ctl_run(View *view, const BackendOp *req, GError **error)
{
    return ctl_execute(view, req, NULL, error);
}

/* A payload written to ctl/@op of @dom (NULL: the top ctl/): parsed once into a request,
 * then run. */
static gboolean
ctl_apply(View *view, const char *dom, const char *op, const char *payload, gsize len,
          GError **error)
{
    BackendOp req = { .op = ctl_op_of(op), .dom = dom };
    g_autofree char *text = NULL;
    g_autofree char *name = NULL;
    g_autoptr(GError) invalid = NULL;

    switch (req.op) {
    case BACKEND_OP_DEFINE:
    case BACKEND_OP_REDEFINE:
    case BACKEND_OP_REDEFINE_CURRENT:
    case BACKEND_OP_IMPORT:
        req.xml = payload;
        req.len = len;
        break;
    case BACKEND_OP_BACKUP:
        text = g_strstrip(g_strndup(payload, len));
        req.cancel = strcmp(text, "cancel") == 0;
        req.xml = payload;
        req.len = len;
        break;
    case BACKEND_OP_CREATE:
    case BACKEND_OP_CREATE_NO_METADATA:
        /* a bare name: an external disk-only snapshot with defaults */
        if (xmlutil_is_document(payload, len)) {
            req.xml = payload;
            req.len = len;
        } else {
            req.name = text = g_strndup(payload, len);
            ctl_create_options(text, &req.flags);
        }
        break;
    case BACKEND_OP_UNDEFINE:
        text = g_strndup(payload, len);
        ctl_parse_undefine(text, &name, &req.flags, &invalid);
        req.name = name;
        break;
    case BACKEND_OP_DELETE:
        /* a two-line delete ends with its name, trailing blanks included */
        text = g_strndup(payload, len);
        ctl_parse_delete(text, &name, &req.flags, &invalid);
        req.name = name;
        break;
    case BACKEND_OP_CURRENT:
    case BACKEND_OP_REVERT:
    case BACKEND_OP_GENID:
        text = g_strchomp(g_strndup(payload, len));
        req.name = req.op == BACKEND_OP_CURRENT && !*text ? NULL : text;
        break;
    }
    return ctl_execute(view, &req, invalid, error);
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
        xml = xmlutil_is_document(data, len);
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
    xml = xmlutil_is_document(data, len);
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
