/* ctl.h: the control-file protocol: buffered writes, payload completion, one typed backend operation per request. */
#pragma once

#include <glib.h>

#include "backend.h"
#include "view.h"

G_BEGIN_DECLS

#define CTL_MAX_PAYLOAD (1024 * 1024)   /* EFBIG beyond (import: 64 MiB) */

typedef struct CtlWriter CtlWriter;

/* One per open control file. @node: a VIEW_CTL_FILE other than result. */
CtlWriter *ctl_writer_new(const ViewNode *node);
void ctl_writer_free(CtlWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CtlWriter, ctl_writer_free)

/* Appends @len bytes written at @offset and applies every payload they complete
 * (a bare value at its newline, an XML document when its root closes). Returns
 * FALSE with the error of the failing payload; what failed is dropped. @changed
 * is set when the store changed (the caller invalidates the kernel's caches). */
gboolean ctl_writer_write(CtlWriter *w, View *view, const char *buf, gsize len, guint64 offset,
                          gboolean *changed, GError **error);

/* At close: applies what is pending (a bare value without newline, an import
 * stream). An incomplete XML document is kept for later writes unless @final
 * (the last close: release), where it is refused. */
gboolean ctl_writer_flush(CtlWriter *w, View *view, gboolean final, gboolean *changed,
                          GError **error);

/* The domain the writer's control file belongs to (NULL: the top ctl/). */
const char *ctl_writer_domain(const CtlWriter *w);

/* Runs @req as a write to its control file would (the read-only mount, the guard, the
 * operation); sets ctl/result and logs what was done or why not. */
gboolean ctl_run(View *view, const BackendOp *req, GError **error);

G_END_DECLS
