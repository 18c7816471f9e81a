/* backend.c: what every backend shares: the loaded domain's lifetime, the read-only rule. */
#include "backend.h"

#include "error.h"

void
backend_domain_free(BackendDomain *bd)
{
    if (!bd)
        return;
    domain_free(bd->def);
    domain_free(bd->live);
    snaptree_free(bd->snaps);
    if (bd->warnings)
        g_ptr_array_unref(bd->warnings);
    if (bd->pending)
        g_hash_table_unref(bd->pending);
    g_free(bd);
}

gboolean
backend_apply(Backend *b, const BackendOp *op, char **result, GError **error)
{
    if (b->read_only) {
        g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_ROFS, "read-only mount");
        return FALSE;
    }
    return b->klass->check(b, op, error) && b->klass->apply(b, op, result, error);
}

void
backend_free(Backend *b)
{
    if (b)
        b->klass->free(b);
}
