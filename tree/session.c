/* session.c: what the tree keeps between requests but no backend has: ctl/result,
 * links made by `ln -sfn` before their rename, and each domain's backup job. */
#include "cache.h"

#include "error.h"

void
view_set_result(View *view, const char *dom, gboolean ok, const char *text)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);

    g_hash_table_insert(view->results, g_strdup(dom ? dom : ""),
                        g_strdup_printf("%s%s\n", ok ? "" : "error: ", text));
}

gboolean
view_templink_add(View *view, const char *dom, const char *name, const char *target,
                  GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    g_autofree char *key = g_strdup_printf("%s/%s", dom, name);

    if (g_hash_table_size(view->templinks) >= 1024) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "too many temporary links");
        return FALSE;
    }
    if (g_hash_table_contains(view->templinks, key)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST, "'%s' exists", name);
        return FALSE;
    }
    g_hash_table_insert(view->templinks, g_steal_pointer(&key), g_strdup(target));
    return TRUE;
}

char *
view_templink_take(View *view, const char *dom, const char *name)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    g_autofree char *key = g_strdup_printf("%s/%s", dom, name);
    g_autofree char *stolen_key = NULL;
    char *target = NULL;

    if (!g_hash_table_steal_extended(view->templinks, key, (gpointer *)&stolen_key,
                                     (gpointer *)&target))
        return NULL;
    return target;
}

Backend *
view_backend(View *view)
{
    return view->backend;
}

/* A start of a backup of the same domain is under way: as if it ran (libvirt's text). */
static gboolean
view_backup_busy(GError **error)
{
    g_set_error_literal(error, CORE_ERROR, CORE_ERROR_BUSY,
                        "another backup job is already running");
    return FALSE;
}

gboolean
view_backup_start(View *view, const char *dom, const char *xml, gsize len, char **result,
                  GError **error)
{
    BackendJob *job;
    BackendJob *previous;

    /* Starting checks the chains and opens the images, which can wait on the
     * outside: the domain is marked as starting under the lock and the job started
     * without it, so two writers still cannot both start one. */
    g_mutex_lock(&view->lock);
    if (g_hash_table_contains(view->starting, dom)) {
        g_mutex_unlock(&view->lock);
        return view_backup_busy(error);
    }
    g_hash_table_add(view->starting, g_strdup(dom));
    /* Only a start replaces a domain's job, and this one is the only start of @dom. */
    previous = g_hash_table_lookup(view->jobs, dom);
    g_mutex_unlock(&view->lock);
    job = backend_job_start(view->backend, dom, xml, len, previous, error);
    g_mutex_lock(&view->lock);
    g_hash_table_remove(view->starting, dom);
    if (job)
        g_hash_table_insert(view->jobs, g_strdup(dom), job);   /* frees the finished one */
    g_mutex_unlock(&view->lock);
    if (!job)
        return FALSE;
    *result = g_strdup_printf("Backup started; progress in %s/job", dom);
    return TRUE;
}

gboolean
view_backup_cancel(View *view, const char *dom, char **result, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&view->lock);
    BackendJob *job = g_hash_table_lookup(view->jobs, dom);

    if (!job || !backend_job_running(view->backend, job)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "no backup job is running for domain '%s'", dom);
        return FALSE;
    }
    backend_job_cancel(view->backend, job);
    *result = g_strdup_printf("Backup of domain '%s' cancelled", dom);
    return TRUE;
}

