/* tsan.c: ThreadSanitizer builds only: tells TSan when glib's locks and reference
 * counts order two threads. glib's GMutex and GCond are futexes, and its atomic
 * reference counts atomics, inside an uninstrumented library, so TSan sees no order
 * between critical sections, nor between the last use of an object in one thread and
 * its free after the last unref in another, and would report every such access.
 * These definitions preempt glib's (the executable's symbols come first, for glib's
 * own calls through its PLT too), call glib's, and add the acquire/release
 * annotations; nothing else changes. */
#include <dlfcn.h>
#include <glib.h>
#include <sanitizer/tsan_interface.h>

void g_mutex_lock(GMutex *mutex);
gboolean g_mutex_trylock(GMutex *mutex);
void g_mutex_unlock(GMutex *mutex);
void g_cond_wait(GCond *cond, GMutex *mutex);
gboolean g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time);
gboolean g_atomic_ref_count_dec(gatomicrefcount *arc);

static void (*tsan_real_lock)(GMutex *);
static gboolean (*tsan_real_trylock)(GMutex *);
static void (*tsan_real_unlock)(GMutex *);
static void (*tsan_real_wait)(GCond *, GMutex *);
static gboolean (*tsan_real_wait_until)(GCond *, GMutex *, gint64);
static gboolean (*tsan_real_ref_dec)(gatomicrefcount *);

/* Before main() and before any thread: the pointers are written once, by this
 * constructor or, when a library's own constructor locks first (libgobject's, loaded with
 * libvirt), by that first call. */
__attribute__((constructor)) static void
tsan_resolve(void)
{
    if (tsan_real_lock)
        return;
    tsan_real_lock = (void (*)(GMutex *))dlsym(RTLD_NEXT, "g_mutex_lock");
    tsan_real_trylock = (gboolean (*)(GMutex *))dlsym(RTLD_NEXT, "g_mutex_trylock");
    tsan_real_unlock = (void (*)(GMutex *))dlsym(RTLD_NEXT, "g_mutex_unlock");
    tsan_real_wait = (void (*)(GCond *, GMutex *))dlsym(RTLD_NEXT, "g_cond_wait");
    tsan_real_wait_until = (gboolean (*)(GCond *, GMutex *, gint64))dlsym(RTLD_NEXT,
                                                                        "g_cond_wait_until");
    tsan_real_ref_dec = (gboolean (*)(gatomicrefcount *))dlsym(RTLD_NEXT,
                                                               "g_atomic_ref_count_dec");
}

void
g_mutex_lock(GMutex *mutex)
{
    if (G_UNLIKELY(!tsan_real_lock))
        tsan_resolve();
    tsan_real_lock(mutex);
    __tsan_acquire(mutex);
}

gboolean
g_mutex_trylock(GMutex *mutex)
{
    if (G_UNLIKELY(!tsan_real_lock))
        tsan_resolve();
    if (!tsan_real_trylock(mutex))
        return FALSE;
    __tsan_acquire(mutex);
    return TRUE;
}

void
g_mutex_unlock(GMutex *mutex)
{
    if (G_UNLIKELY(!tsan_real_lock))
        tsan_resolve();
    __tsan_release(mutex);
    tsan_real_unlock(mutex);
}

void
g_cond_wait(GCond *cond, GMutex *mutex)
{
    if (G_UNLIKELY(!tsan_real_lock))
        tsan_resolve();
    __tsan_release(mutex);
    tsan_real_wait(cond, mutex);
    __tsan_acquire(mutex);
}

gboolean
g_cond_wait_until(GCond *cond, GMutex *mutex, gint64 end_time)
{
    gboolean ok;

    if (G_UNLIKELY(!tsan_real_lock))
        tsan_resolve();
    __tsan_release(mutex);
    ok = tsan_real_wait_until(cond, mutex, end_time);
    __tsan_acquire(mutex);
    return ok;
}

/* Each unref releases what its thread did; the last one acquires all of it. */
gboolean
g_atomic_ref_count_dec(gatomicrefcount *arc)
{
    gboolean last;

    if (G_UNLIKELY(!tsan_real_lock))
        tsan_resolve();
    __tsan_release(arc);
    last = tsan_real_ref_dec(arc);
    if (last)
        __tsan_acquire(arc);
    return last;
}
