/* ops.c: FUSE low-level callbacks; each sends exactly one reply. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "ctl.h"
#include "guest.h"
#include "fserror.h"
#include "manage.h"

/* Largest request the kernel may send: big reads are what makes cp fast. */
#define FS_MAX_IO (1024 * 1024)
#define FS_MAX_READERS 4      /* image readers per open data file */
#define FS_PUSHERS 2          /* pusher threads per data file read in order */
#define FS_PUSH_CHUNK (1024 * 1024)          /* what a pusher reads at a time */
#define FS_PUSH_AHEAD (32 * FS_PUSH_CHUNK)   /* kept stored ahead of an in-order reader */
#define FS_PUSH_AFTER 3                      /* READs in order before pushing starts */
#define FS_PUSH_WAKE (4 * FS_PUSH_CHUNK)     /* idle pushers wait for this much to do */
#define FS_PUSH_NICE 10                      /* pushers' niceness above the daemon's... */
#define FS_PUSH_URGENT (8 * FS_PUSH_CHUNK)   /* ...while ahead of the reader by this */
/* Bytes of generated text the open files of one user other than the daemon's may
 * hold (each text counted once, however many files share it): opening the same
 * file again costs nothing, but an old version pinned by each open after each
 * change, or every big file of a big store, cannot take the daemon's memory. */
#define FS_TEXT_MAX_OTHER ((gsize)64 * 1024 * 1024)
/* Bytes of texts no open file holds any more, kept for the next open of the same
 * version: a warm `cat` then makes nothing again. Charged to the daemon. */
#define FS_TEXT_RECENT_MAX ((gsize)32 * 1024 * 1024)

/* A generated text shared by the open files that read it: one copy per inode and
 * version, freed with the last of those files. */
typedef struct {
    char *key;            /* "INO:VERSION" */
    guint64 version;
    GBytes *bytes;
    guint users;          /* open files holding it; FsState.texts_lock */
    uid_t uid;            /* charged to: the user whose open made it */
    GList recent;         /* in FsState.recent while no open file holds it */
} FsText;

/* An open file. The kernel may send RELEASE while a READ of the same handle is
 * still being served (a reader killed mid-read), so handles are ids looked up
 * under FsState.files_lock and every op holds a reference while it works. */
typedef struct {
    gatomicrefcount ref;
    GMutex lock;          /* guards spare, nreaders, ctl and the push state */
    GCond cond;           /* a reader was returned */
    GCond push_cond;      /* the push window moved on, or stop */
    GPtrArray *spare;     /* data files: idle image readers (none is thread-safe, so
                             the kernel's parallel readahead requests each borrow one,
                             up to FS_MAX_READERS) */
    guint nreaders;       /* readers in existence: spare + lent out */
    gboolean open_failed; /* another reader could not be opened: wait for one */
    guint64 size;         /* data files: the virtual size */
    ViewNode *node;       /* what to open another reader of */
    FsState *fs;
    FsText *text;         /* generated files: fixed at open for a consistent read */
    ViewGuestFile *guest; /* a file inside files/ */
    gboolean cached;      /* a page-cache reader of its text inode (inode_text_access) */
    CtlWriter *ctl;       /* control files open for writing */
    /* Data read in order is pushed ahead into the kernel's page cache (fs_push_main). */
    fuse_ino_t ino;
    gboolean push_ok;     /* opened for the page cache, not O_DIRECT */
    guint64 seq_end;      /* end of the furthest READ of the current in-order run */
    guint seq_reads;      /* READs in that run */
    guint64 push_next;    /* the pushers store [push_next, push_until) */
    guint64 push_until;
    guint pushing;        /* pushers running (each holds a reference) */
    gboolean push_stop;
    gboolean sparse;      /* the reader asked for SEEK_DATA/SEEK_HOLE: it skips holes */
} FsFile;

typedef struct {
    GMutex lock;
    ViewNode *node;
    GPtrArray *ents;      /* ViewDirent *; NULL until the first readdir */
} FsDir;

static FsState *
fs_state(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* Charges text @t to user @uid when no user other than the daemon's holds it yet: a
 * text is counted once, against the first such user that holds it. FALSE with
 * G_FILE_ERROR_NOMEM when that takes @uid over FS_TEXT_MAX_OTHER. texts_lock held. */
static gboolean
fs_text_charge(FsState *fs, FsText *t, uid_t uid, GError **error)
{
    gsize size = g_bytes_get_size(t->bytes);
    gsize held;

    if (uid == fs->owner || t->uid != fs->owner)
        return TRUE;
    held = GPOINTER_TO_SIZE(g_hash_table_lookup(fs->text_bytes, GUINT_TO_POINTER(uid)));
    if (size > FS_TEXT_MAX_OTHER - MIN(held, FS_TEXT_MAX_OTHER)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM,
                    "files open by user %u already hold %" G_GSIZE_FORMAT " bytes of "
                    "generated text (at most %" G_GSIZE_FORMAT ")", (unsigned)uid, held,
                    FS_TEXT_MAX_OTHER);
        return FALSE;
    }
    g_hash_table_insert(fs->text_bytes, GUINT_TO_POINTER(uid), GSIZE_TO_POINTER(held + size));
    t->uid = uid;
    return TRUE;
}

/* The shared text of key @key with one more user, or NULL (@error set when the user
 * may not hold it). texts_lock held. */
static FsText *
fs_text_take(FsState *fs, const char *key, uid_t uid, gboolean *found, GError **error)
{
    FsText *t = g_hash_table_lookup(fs->texts, key);

    *found = t != NULL;
    if (!t || !fs_text_charge(fs, t, uid, error))
        return NULL;
    if (!t->users++) {
        g_queue_unlink(&fs->recent, &t->recent);
        fs->recent_bytes -= g_bytes_get_size(t->bytes);
    }
    return t;
}

static void
fs_text_free(FsText *t)
{
    g_bytes_unref(t->bytes);
    g_free(t->key);
    g_free(t);
}

/* The text of generated file @node (inode @ino) for an open by user @uid: the one
 * open files share for @version when there is one, else @made (taken; made for
 * @version) or the text made now. Each acquire is matched by fs_text_release().
 * G_FILE_ERROR_NOMEM when the text would take user @uid (not the daemon's) over
 * FS_TEXT_MAX_OTHER. */
static FsText *
fs_text_acquire(FsState *fs, fuse_ino_t ino, const ViewNode *node, guint64 version,
                GBytes *made, uid_t uid, GError **error)
{
    g_autoptr(GBytes) content = made;
    g_autofree char *key = g_strdup_printf("%lu:%" G_GUINT64_FORMAT, (unsigned long)ino,
                                           version);
    gboolean found;
    FsText *t;

    g_mutex_lock(&fs->texts_lock);
    t = fs_text_take(fs, key, uid, &found, error);
    g_mutex_unlock(&fs->texts_lock);
    if (found)
        return t;
    if (!content) {
        /* Made without texts_lock: making it takes the view's lock. */
        if (!(content = view_read_content(fs->view, node, &version, error)))
            return NULL;
        g_free(key);
        key = g_strdup_printf("%lu:%" G_GUINT64_FORMAT, (unsigned long)ino, version);
    }
    g_mutex_lock(&fs->texts_lock);
    if (!(t = fs_text_take(fs, key, uid, &found, error)) && !found) {
        t = g_new0(FsText, 1);
        t->key = g_steal_pointer(&key);
        t->version = version;
        t->bytes = g_steal_pointer(&content);
        t->uid = fs->owner;
        if (fs_text_charge(fs, t, uid, error)) {
            t->users = 1;
            g_hash_table_insert(fs->texts, t->key, t);
        } else {
            g_bytes_unref(t->bytes);
            g_free(t->key);
            g_clear_pointer(&t, g_free);
        }
    }
    g_mutex_unlock(&fs->texts_lock);
    return t;
}

/* The text open files share for inode @ino and @version, with one more user, or
 * NULL when none has it (or, with @error, when user @uid may not hold it). */
static FsText *
fs_text_find(FsState *fs, fuse_ino_t ino, guint64 version, uid_t uid, GError **error)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&fs->texts_lock);
    g_autofree char *key = g_strdup_printf("%lu:%" G_GUINT64_FORMAT, (unsigned long)ino,
                                           version);
    gboolean found;

    return fs_text_take(fs, key, uid, &found, error);
}

/* Drops an open file's hold of @t (NULL is fine); the last keeps it among the
 * recent texts, which drop the oldest beyond FS_TEXT_RECENT_MAX. */
static void
fs_text_release(FsState *fs, FsText *t)
{
    g_autoptr(GPtrArray) dropped = g_ptr_array_new_with_free_func((GDestroyNotify)fs_text_free);

    if (!t)
        return;
    g_mutex_lock(&fs->texts_lock);
    if (--t->users) {
        g_mutex_unlock(&fs->texts_lock);
        return;
    }
    if (t->uid != fs->owner) {
        gsize held = GPOINTER_TO_SIZE(g_hash_table_lookup(fs->text_bytes,
                                                          GUINT_TO_POINTER(t->uid)));

        held -= MIN(held, g_bytes_get_size(t->bytes));
        if (held)
            g_hash_table_insert(fs->text_bytes, GUINT_TO_POINTER(t->uid), GSIZE_TO_POINTER(held));
        else
            g_hash_table_remove(fs->text_bytes, GUINT_TO_POINTER(t->uid));
        t->uid = fs->owner;
    }
    t->recent.data = t;
    g_queue_push_tail_link(&fs->recent, &t->recent);
    fs->recent_bytes += g_bytes_get_size(t->bytes);
    while (fs->recent_bytes > FS_TEXT_RECENT_MAX) {
        FsText *old = g_queue_pop_head_link(&fs->recent)->data;

        fs->recent_bytes -= g_bytes_get_size(old->bytes);
        g_hash_table_remove(fs->texts, old->key);
        g_ptr_array_add(dropped, old);
    }
    g_mutex_unlock(&fs->texts_lock);
}

void
fs_texts_clear(FsState *fs)
{
    GList *l;

    while ((l = g_queue_pop_head_link(&fs->recent))) {
        FsText *t = l->data;

        g_hash_table_remove(fs->texts, t->key);
        fs_text_free(t);
    }
    fs->recent_bytes = 0;
}

static void
fs_file_free(FsFile *f)
{
    if (!f || !g_atomic_ref_count_dec(&f->ref))
        return;
    if (f->spare)
        g_ptr_array_unref(f->spare);
    view_node_free(f->node);
    ctl_writer_free(f->ctl);
    fs_text_release(f->fs, f->text);
    view_guest_close(f->guest);
    if (f->cached)
        inode_text_close(f->fs->inodes, f->ino);
    g_cond_clear(&f->cond);
    g_cond_clear(&f->push_cond);
    g_mutex_clear(&f->lock);
    g_free(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsFile, fs_file_free)

/* Registers @f (taking its reference) and returns its handle. */
static uint64_t
fs_file_register(FsState *fs, FsFile *f)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&fs->files_lock);
    guint64 fh = ++fs->next_fh;

    g_hash_table_insert(fs->files, GSIZE_TO_POINTER(fh), f);
    return fh;
}

/* A new reference to the file of handle @fh, or NULL when released. */
static FsFile *
fs_file_get(FsState *fs, uint64_t fh)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&fs->files_lock);
    FsFile *f = g_hash_table_lookup(fs->files, GSIZE_TO_POINTER(fh));

    if (f)
        g_atomic_ref_count_inc(&f->ref);
    return f;
}

/* Drops the table's reference of handle @fh. */
static void
fs_file_unregister(FsState *fs, uint64_t fh)
{
    FsFile *f = NULL;

    g_mutex_lock(&fs->files_lock);
    if (g_hash_table_steal_extended(fs->files, GSIZE_TO_POINTER(fh), NULL, (gpointer *)&f)) {
        g_mutex_unlock(&fs->files_lock);
        fs_file_free(f);
        return;
    }
    g_mutex_unlock(&fs->files_lock);
}

static ViewNode *
fs_node(FsState *fs, fuse_ino_t ino, GError **error)
{
    ViewNode *node = inode_get(fs->inodes, ino);

    if (!node)
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "stale inode %lu",
                    (unsigned long)ino);
    return node;
}

/* Lends one of data file @f's image readers: an idle one, a new one while under
 * FS_MAX_READERS, else the next one given back. Never NULL once @f has one. */
static Image *
fs_reader_take(FsState *fs, FsFile *f)
{
    Image *img = NULL;

    g_mutex_lock(&f->lock);
    for (;;) {
        if (f->spare->len) {
            img = g_ptr_array_steal_index_fast(f->spare, f->spare->len - 1);
            break;
        }
        if (f->nreaders < FS_MAX_READERS && !f->open_failed) {
            guint64 version;

            f->nreaders++;
            g_mutex_unlock(&f->lock);
            if ((img = view_open_data(fs->view, f->node, &version, NULL)))
                return img;
            g_mutex_lock(&f->lock);
            f->nreaders--;
            f->open_failed = TRUE;   /* out of descriptors, or gone: share the others */
            continue;
        }
        g_cond_wait(&f->cond, &f->lock);
    }
    g_mutex_unlock(&f->lock);
    return img;
}

static void
fs_reader_give(FsFile *f, Image *img)
{
    g_mutex_lock(&f->lock);
    g_ptr_array_add(f->spare, img);
    g_cond_broadcast(&f->cond);
    g_mutex_unlock(&f->lock);
}

typedef struct {
    FsState *fs;
    FsFile *f;   /* a reference */
} FsPush;

/* Reads the chunk [@off, @off+@len) of data file @f into the same place of @buf
 * (which starts at @off) with reader @img: all of it, or for a reader that skips
 * holes (@sparse) only its data. Appends the runs read, (offset, length) pairs, to
 * @runs; *@next is where the data after the chunk starts (sparse) or its end.
 * FALSE when reading failed. */
static gboolean
fs_push_read(FsFile *f, Image *img, char *buf, guint64 off, gsize len, gboolean sparse,
             GArray *runs, guint64 *next)
{
    guint64 end = MIN(off + len, f->size);
    guint64 p = off;

    *next = end;
    while (p < end) {
        guint64 run[2] = { p, end };
        gssize n;

        if (sparse) {
            if (!image_seek(img, p, TRUE, &run[0], NULL))
                return FALSE;
            if (run[0] >= end) {
                *next = run[0];
                break;
            }
            if (!image_seek(img, run[0], FALSE, &run[1], NULL))
                return FALSE;
            run[1] = MIN(run[1], end);
        }
        if ((n = image_pread(img, buf + (run[0] - off), run[1] - run[0], run[0], NULL)) <= 0)
            return FALSE;
        run[1] = n;
        g_array_append_vals(runs, run, 1);
        p = run[0] + n;
    }
    return TRUE;
}

/* A pusher of a data file read in order: stores the bytes just ahead of the
 * reader in the kernel's page cache (NOTIFY_STORE), on the other core, so the
 * reader's next read()s find them there instead of each waiting for a READ round
 * trip. FS_PUSHERS of them take FS_PUSH_CHUNK after FS_PUSH_CHUNK in turn: one
 * alone, inflating and copying, is slower than the reader copying from the page
 * cache. Well ahead of the reader (FS_PUSH_URGENT), they run FS_PUSH_NICE nicer
 * than the request handlers: on two cores, a reader that waits for the answer to
 * each lseek() (cp asks at every extent) or for a READ must not wait for a
 * pusher to give up its core when what it pushes is needed only later. A pusher
 * never holds a reader or f->lock while the kernel takes page locks (a READ in
 * flight may hold one and need a reader to finish). READs still serve anything
 * not pushed, so a failed push costs only speed. */
static gpointer
fs_push_main(gpointer data)
{
    g_autofree FsPush *p = data;
    FsFile *f = p->f;
    g_autofree char *buf = g_malloc(FS_PUSH_CHUNK);
    g_autoptr(GArray) runs = g_array_new(FALSE, FALSE, 2 * sizeof(guint64));
    pid_t tid = gettid();
    struct rlimit rl;
    gboolean renice;
    int nice;
    int now;

    /* Niceness is lowered again only by root or within RLIMIT_NICE: else, and if
     * it is unknown, the pusher keeps the daemon's. */
    errno = 0;
    nice = now = getpriority(PRIO_PROCESS, tid);
    renice = errno == 0 && (geteuid() == 0 || (getrlimit(RLIMIT_NICE, &rl) == 0 &&
                                               rl.rlim_cur >= (rlim_t)(20 - nice)));
    g_mutex_lock(&f->lock);
    while (!f->push_stop && f->push_ok) {
        guint64 off = f->push_next;
        guint64 next;
        gboolean sparse = f->sparse;
        int want = off < f->seq_end + FS_PUSH_URGENT ? nice : MIN(nice + FS_PUSH_NICE, 19);
        gboolean ok;
        gsize len;
        Image *img;
        int rc = 0;

        if (renice && want != now) {
            if (setpriority(PRIO_PROCESS, tid, want) == 0)
                now = want;
            else
                renice = FALSE;   /* refused after all: stays as it is */
        }

        /* whole chunks, but for the last: lseek()s move the window on by less */
        if (off >= f->push_until ||
            (f->push_until - off < FS_PUSH_CHUNK && f->push_until < f->size)) {
            g_cond_wait(&f->push_cond, &f->lock);
            continue;
        }
        len = MIN(FS_PUSH_CHUNK, f->push_until - off);
        f->push_next = off + len;
        g_mutex_unlock(&f->lock);
        img = fs_reader_take(p->fs, f);
        g_array_set_size(runs, 0);
        ok = fs_push_read(f, img, buf, off, len, sparse, runs, &next);
        fs_reader_give(f, img);
        for (guint i = 0; ok && rc == 0 && i < runs->len; i++) {
            const guint64 *run = &g_array_index(runs, guint64, 2 * i);
            struct fuse_bufvec bv = FUSE_BUFVEC_INIT(run[1]);

            bv.buf[0].mem = buf + (run[0] - off);
            rc = fuse_lowlevel_notify_store(p->fs->se, f->ino, run[0], &bv, 0);
        }
        g_mutex_lock(&f->lock);
        if (next > f->push_next)   /* a hole: over it at once */
            f->push_next = MIN(next, f->push_until);
        if (!ok || rc != 0) {
            g_debug("push of %" G_GSIZE_FORMAT " bytes at %" G_GUINT64_FORMAT " stopped: %s",
                    len, off, !ok ? "read failed" : g_strerror(-rc));
            f->push_ok = FALSE;
        }
    }
    f->pushing--;
    g_mutex_unlock(&f->lock);
    fs_file_free(f);
    g_mutex_lock(&p->fs->push_lock);
    p->fs->pushers--;
    g_cond_broadcast(&p->fs->push_cond);
    g_mutex_unlock(&p->fs->push_lock);
    return NULL;
}

/* Where the reader of data file @f is: a READ of [@off, @off+@len), or (@read
 * FALSE) an lseek() from @off that found the next data @len bytes further. After
 * FS_PUSH_AFTER READs in order, the pushers keep the next FS_PUSH_AHEAD bytes
 * stored. The kernel's readahead sends READs in parallel, so "in order" allows
 * them to arrive a little out of order; random 4 KiB reads fall within 32 KiB of
 * each other too rarely to count. A reader that finds the pushed bytes in the page
 * cache sends no READ until it reaches their end: in order reaches up to what was
 * pushed. Such a reader's lseek()s (cp asks for SEEK_DATA and SEEK_HOLE at each
 * extent) tell where it is, and move the window on before it gets there. */
static void
fs_push_note(FsState *fs, FsFile *f, guint64 off, guint64 len, gboolean read)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&f->lock);
    /* Up to 8 requests of this size may be in flight: they arrive in any order. */
    guint64 slack = read ? MIN(8 * len, 8 * FS_MAX_IO) : 8 * FS_MAX_IO;

    if (!read)
        f->sparse = TRUE;   /* from now on the pushers skip holes */
    if (!f->push_ok)
        return;
    if (off <= MAX(f->seq_end, f->push_next) + slack && off + len + slack >= f->seq_end) {
        f->seq_reads += read;
        f->seq_end = MAX(f->seq_end, off + len);
    } else if (read) {
        /* The reader jumped: the chunks in hand are finished, and pushing starts
         * again where it reads now (if it reads on in order). */
        f->seq_reads = 1;
        f->seq_end = off + len;
        f->push_next = f->push_until = f->seq_end;
    } else {
        return;                         /* lseek()s elsewhere say nothing of reading */
    }
    if (f->seq_reads < FS_PUSH_AFTER)
        return;
    f->push_next = MAX(f->push_next, f->seq_end);   /* READs served those */
    f->push_until = MIN(f->size, f->seq_end + FS_PUSH_AHEAD);
    /* Idle pushers are woken for a few chunks at a time, not at every lseek(). */
    if (f->push_until >= f->push_next + FS_PUSH_WAKE ||
        (f->push_until == f->size && f->push_next < f->size))
        g_cond_broadcast(&f->push_cond);
    while (f->pushing < FS_PUSHERS) {
        FsPush *p = g_new0(FsPush, 1);
        GThread *thread = NULL;

        p->fs = fs;
        p->f = f;
        g_atomic_ref_count_inc(&f->ref);
        g_mutex_lock(&fs->push_lock);
        if (fs->push && (thread = g_thread_try_new("snapfs-push", fs_push_main, p, NULL))) {
            fs->pushers++;
            f->pushing++;
            g_thread_unref(thread);   /* nobody joins: fs_push_stop_all counts them out */
        } else {
            if (!f->pushing)
                f->push_ok = FALSE;   /* stopping, or out of threads: READs serve it all */
            g_atomic_ref_count_dec(&f->ref);   /* not the last: the caller holds one */
            g_free(p);
        }
        g_mutex_unlock(&fs->push_lock);
        if (!thread)
            break;
    }
}

/* Asks @f's pushers, if any, to stop after the chunks in hand. No waiting: a
 * request handler must never wait for a pusher, which may itself wait for a READ
 * that needs a handler. */
static void
fs_push_stop(FsFile *f)
{
    g_mutex_lock(&f->lock);
    f->push_stop = TRUE;
    g_cond_broadcast(&f->push_cond);
    g_mutex_unlock(&f->lock);
}

void
fs_push_stop_all(FsState *fs)
{
    GHashTableIter it;
    gpointer value;

    g_mutex_lock(&fs->push_lock);
    fs->push = FALSE;
    g_mutex_unlock(&fs->push_lock);
    g_mutex_lock(&fs->files_lock);
    g_hash_table_iter_init(&it, fs->files);
    while (g_hash_table_iter_next(&it, NULL, &value))
        fs_push_stop(value);
    g_mutex_unlock(&fs->files_lock);
    g_mutex_lock(&fs->push_lock);
    while (fs->pushers)
        g_cond_wait(&fs->push_cond, &fs->push_lock);
    g_mutex_unlock(&fs->push_lock);
}

void
fs_files_close(FsState *fs)
{
    GHashTableIter it;
    gpointer value;

    fs_push_stop_all(fs);
    g_mutex_lock(&fs->files_lock);
    g_hash_table_iter_init(&it, fs->files);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        g_hash_table_iter_steal(&it);
        fs_file_free(value);
    }
    g_mutex_unlock(&fs->files_lock);
}

static void
fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    FsState *fs = userdata;

    conn->max_write = FS_MAX_IO;
    /* The kernel lowers the mount's readahead (set in sysfs by main) to this. */
    conn->max_readahead = MAX(FS_MAX_IO, fs->readahead_kb * 1024);
    /* No splicing: every reply and store is from memory, which libfuse would copy
     * into a pipe first, a copy more than writev() (it does for stores when it may
     * make its pipe big enough: with CAP_SYS_RESOURCE). */
    conn->want &= ~FUSE_CAP_SPLICE_WRITE;
    /* Directory and attribute caching are bounded by the 1 s timeouts. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
    /* Symlink targets stay in the kernel until the link's inode is invalidated
     * (every change does that): `ls -lR` sends no READLINK per link. */
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    /* Directories need no handle: the kernel then opens them without asking,
     * caching their listings (FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR) until the
     * inode is invalidated: a warm `find` sends nothing per directory. */
    fs->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
}

/* How long the kernel may keep the entry of @node, a text of @version (0: not one) or
 * not. A text's entry is invalidated when its domain changes, for the next lookup to
 * find the new version's inode, but a change made through the mount by a request of
 * the domain's directory (ln -sfn, rm current) cannot invalidate the entries in that
 * directory before it is answered: the domain's own texts are looked up every time. */
static double
fs_entry_timeout(FsState *fs, const ViewNode *node, guint64 version)
{
    return version && node->kind == VIEW_DOM_FILE ? 0 : fs->timeout;
}

/* Replies an entry for @name under @parent (inode @pino), or an error. */
static void
fs_reply_entry_of(fuse_req_t req, FsState *fs, fuse_ino_t pino, const ViewNode *parent,
                  const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    struct fuse_entry_param e = { 0 };
    guint64 version = 0;

    if (!(node = view_lookup(fs->view, parent, name, &error)) ||
        !view_stat_version(fs->view, node, &e.attr, &version, &error)) {
        fs_reply_error(req, error);
        return;
    }
    e.ino = inode_ref_entry(fs->inodes, node, version, e.attr.st_size, pino, name);
    e.attr.st_ino = e.ino;
    e.attr_timeout = fs->timeout;
    e.entry_timeout = fs_entry_timeout(fs, node, version);
    inode_note_size(fs->inodes, e.ino, e.attr.st_size);
    fuse_reply_entry(req, &e);
}

/* Replies the entry of the `current` link just made to point to @snap. Another
 * writer may have moved current on already (or be between its two writes): the
 * link was made all the same, so its entry is the link as made. */
static void
fs_reply_current_made(fuse_req_t req, FsState *fs, const ViewNode *dom, const char *snap)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = g_new0(ViewNode, 1);
    struct fuse_entry_param e = { 0 };

    node->kind = VIEW_DOM_CURRENT;
    node->dom = g_strdup(dom->dom);
    if (!view_stat(fs->view, node, &e.attr, NULL)) {
        if (!view_stat(fs->view, dom, &e.attr, &error)) {
            fs_reply_error(req, error);
            return;
        }
        e.attr.st_mode = S_IFLNK | 0777;
        e.attr.st_nlink = 1;
        e.attr.st_size = (off_t)(strlen("snapshots/") + strlen(snap));
    }
    e.ino = inode_ref(fs->inodes, node);
    e.attr.st_ino = e.ino;
    e.attr_timeout = fs->timeout;
    e.entry_timeout = fs->timeout;
    fuse_reply_entry(req, &e);
}

/* Replies the attributes of @node (inode @ino), or an error. The inode of one version
 * of a text has that version's size while it is current or page-cache readers read it. */
static void
fs_reply_attr_of(fuse_req_t req, FsState *fs, fuse_ino_t ino, const ViewNode *node)
{
    g_autoptr(GError) error = NULL;
    struct stat st;
    guint64 version = 0, size, own;

    if (!view_stat_version(fs->view, node, &st, &version, &error)) {
        fs_reply_error(req, error);
        return;
    }
    if (version) {
        InodeText how = inode_text_access(fs->inodes, ino, version, FALSE, &size, &own);

        if (how == INODE_TEXT_SAME || how == INODE_TEXT_HELD) {
            st.st_size = (off_t)size;
            st.st_blocks = (blkcnt_t)((size + 511) / 512);
        }
    }
    st.st_ino = ino;
    inode_note_size(fs->inodes, ino, st.st_size);
    fuse_reply_attr(req, &st, fs->timeout);
}

/* Replies: entry, or error. */
static void
fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;

    if (!(pnode = fs_node(fs, parent, &error))) {
        fs_reply_error(req, error);
        return;
    }
    fs_reply_entry_of(req, fs, parent, pnode, name);
}

/* Replies: none. */
static void
fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    inode_forget(fs_state(req)->inodes, ino, nlookup);
    fuse_reply_none(req);
}

/* Replies: none. */
static void
fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        inode_forget(fs_state(req)->inodes, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

/* Replies: attr, or error. */
static void
fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;

    if (!(node = fs_node(fs, ino, &error))) {
        fs_reply_error(req, error);
        return;
    }
    fs_reply_attr_of(req, fs, ino, node);
}

/* Replies: readlink, or error. */
static void
fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    g_autofree char *target = NULL;

    if (!(node = fs_node(fs, ino, &error)) ||
        !(target = view_readlink(fs->view, node, &error))) {
        fs_reply_error(req, error);
        return;
    }
    fuse_reply_readlink(req, target);
}

static void
fs_dir_free(FsDir *d)
{
    if (!d)
        return;
    g_clear_pointer(&d->ents, g_ptr_array_unref);
    view_node_free(d->node);
    g_mutex_clear(&d->lock);
    g_free(d);
}

/* The entries of directory @ino for a readdir at @off (a new reference), listed at
 * the first readdir and then fixed, so that a listing in several readdir calls is
 * consistent: kept in @d, or without a handle (no-opendir mode) in fs->listings
 * between calls (fs_dir_keep). NULL with @error when it cannot be listed. */
static GPtrArray *
fs_dir_entries(FsState *fs, fuse_ino_t ino, FsDir *d, off_t off, GError **error)
{
    g_autoptr(ViewNode) node = NULL;
    guint64 key = ino;

    if (d) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&d->lock);

        if (!d->ents)
            d->ents = view_readdir(fs->view, d->node, error);
        return d->ents ? g_ptr_array_ref(d->ents) : NULL;
    }
    if (off > 0) {
        g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&fs->files_lock);
        GPtrArray *ents = g_hash_table_lookup(fs->listings, &key);

        if (ents)
            return g_ptr_array_ref(ents);
    }
    if (!(node = fs_node(fs, ino, error)))
        return NULL;
    return view_readdir(fs->view, node, error);
}

/* After a readdir without a handle: keeps @ents for the next call, or forgets
 * them when the reply held the last entry (@done). */
static void
fs_dir_keep(FsState *fs, fuse_ino_t ino, FsDir *d, GPtrArray *ents, gboolean done)
{
    g_autoptr(GMutexLocker) locker = NULL;
    guint64 key = ino;

    if (d)
        return;
    locker = g_mutex_locker_new(&fs->files_lock);
    if (done)
        g_hash_table_remove(fs->listings, &key);
    else
        g_hash_table_replace(fs->listings, g_memdup2(&key, sizeof(key)), g_ptr_array_ref(ents));
}

/* Replies: open, or error. The listing waits for the first readdir: with the
 * kernel's cached listing there is none, and `ls -lR` opens every directory. */
static void
fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    FsDir *d;

    if (fs->no_opendir) {
        fuse_reply_err(req, ENOSYS);   /* the kernel opens directories itself from now on */
        return;
    }
    if (!(node = fs_node(fs, ino, &error)) || !view_is_dir(fs->view, node, &error)) {
        fs_reply_error(req, error);
        return;
    }
    d = g_new0(FsDir, 1);
    g_mutex_init(&d->lock);
    d->node = g_steal_pointer(&node);
    fi->fh = (uint64_t)(uintptr_t)d;
    /* The kernel may keep listings: every change (ours at once, others' through
     * the poller) invalidates the directory's inode, which drops them. */
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0)
        fs_dir_free(d);
}

/* The attributes of entry @name of @pnode for readdirplus, with a lookup reference taken
 * (e->ino); FALSE when it is gone since the listing. */
static gboolean
fs_dirent_attr(FsState *fs, fuse_ino_t pino, const ViewNode *pnode, const char *name,
               struct fuse_entry_param *e)
{
    g_autoptr(ViewNode) node = view_lookup(fs->view, pnode, name, NULL);
    guint64 version = 0;

    if (!node || !view_stat_version(fs->view, node, &e->attr, &version, NULL))
        return FALSE;
    e->ino = inode_ref_entry(fs->inodes, node, version, e->attr.st_size, pino, name);
    e->attr.st_ino = e->ino;
    e->attr_timeout = fs->timeout;
    e->entry_timeout = fs_entry_timeout(fs, node, version);
    inode_note_size(fs->inodes, e->ino, e->attr.st_size);
    return TRUE;
}

/* Replies: buf, or error. Offsets: 0 = ".", 1 = "..", 2 + i = entry i. With @plus
 * (readdirplus) each entry comes with its attributes and a lookup reference, so `ls -l`
 * needs no LOOKUP per entry. */
static void
fs_readdir_reply(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi, gboolean plus)
{
    FsState *fs = fs_state(req);
    FsDir *d = (FsDir *)(uintptr_t)fi->fh;
    g_autoptr(GError) error = NULL;
    g_autofree char *buf = NULL;
    g_autoptr(GPtrArray) ents = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    gboolean done = TRUE;
    size_t used = 0;

    if (!(ents = fs_dir_entries(fs, ino, d, off, &error)) ||
        (plus && !(pnode = d ? view_node_copy(d->node) : fs_node(fs, ino, &error)))) {
        fs_reply_error(req, error);
        return;
    }
    buf = g_malloc(size);
    for (off_t i = off; i < (off_t)ents->len + 2; i++) {
        struct fuse_entry_param e = { 0 };
        const char *name;
        size_t need;

        if (i < 2) {
            /* readdirplus: nodeid 0, the kernel takes no reference and no attributes */
            name = i == 0 ? "." : "..";
            e.attr.st_mode = S_IFDIR;
            e.attr.st_ino = plus ? FUSE_ROOT_ID : FUSE_ROOT_ID + 1 + i;
        } else {
            ViewDirent *ent = ents->pdata[i - 2];

            name = ent->name;
            if (!plus || !fs_dirent_attr(fs, ino, pnode, name, &e)) {
                /* The type alone (readdir, or gone since the listing). glibc skips
                 * entries with d_ino 0; the real number comes with lookup. */
                memset(&e, 0, sizeof(e));
                e.attr.st_mode = ent->type;
                e.attr.st_ino = FUSE_ROOT_ID + 1 + i;
            }
        }
        need = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1)
                    : fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
        if (need > size - used) {
            if (e.ino)
                inode_forget(fs->inodes, e.ino, 1);   /* not sent: no reference */
            done = FALSE;
            break;
        }
        used += need;
    }
    fs_dir_keep(fs, ino, d, ents, done);
    fuse_reply_buf(req, buf, used);
}

static void
fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
              struct fuse_file_info *fi)
{
    fs_readdir_reply(req, ino, size, off, fi, FALSE);
}

static void
fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
    fs_readdir_reply(req, ino, size, off, fi, TRUE);
}

/* Replies: err 0. */
static void
fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_dir_free((FsDir *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

/* Opens generated file @node (inode @ino) into @f, fixing its text for a consistent
 * read. FALSE when it replied an error. */
static gboolean
fs_open_text(fuse_req_t req, FsState *fs, fuse_ino_t ino, const ViewNode *node, FsFile *f,
             struct fuse_file_info *fi)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) made = NULL;
    uid_t uid = fuse_req_ctx(req)->uid;
    guint64 version, len, size = 0, own = 0;
    InodeText how;

    if (!view_content_version(fs->view, node, &version, &len, &made, &error)) {
        fs_reply_error(req, error);
        return FALSE;
    }
    f->node = view_node_copy(node);
    f->ino = ino;
    /* An inode of one version of the text keeps its pages: its bytes and size are that
     * version's for good, and a change gives the text a new inode. */
    how = inode_text_access(fs->inodes, ino, version, TRUE, &size, &own);
    f->cached = how == INODE_TEXT_SAME || how == INODE_TEXT_HELD;
    if (how == INODE_TEXT_HELD)
        f->text = fs_text_find(fs, ino, own, uid, &error);
    if (!f->text && !error)
        f->text = fs_text_acquire(fs, ino, node, version, g_steal_pointer(&made), uid, &error);
    if (!f->text) {
        fs_reply_error(req, error);
        return FALSE;
    }
    if (f->cached && f->text->version != own) {
        /* A later load made the text: not this inode's bytes. Read directly, and the
         * inode, older now, is retired unless page-cache readers read it. */
        inode_text_close(fs->inodes, ino);
        f->cached = FALSE;
        inode_text_access(fs->inodes, ino, f->text->version, FALSE, &size, &own);
    }
    if (f->cached) {
        fi->keep_cache = 1;
        return TRUE;
    }
    /* Any other text is read with direct I/O from the text fixed at open: the kernel's
     * page cache and size are one per inode, and a reader whose pages or size came
     * from another version of the text would read it cut or padded. */
    fi->direct_io = 1;
    /* Changed before the poller said so: the kernel's size is stale now, not in up to
     * a poll interval (attributes only: no page lock is taken). */
    if (!inode_size_reported(fs->inodes, ino, g_bytes_get_size(f->text->bytes)))
        fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
    return TRUE;
}

/* Replies: open, or error (EACCES for writes: every file here is read-only). */
static void
fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;
    g_autoptr(FsFile) f = g_new0(FsFile, 1);

    g_atomic_ref_count_init(&f->ref);
    g_mutex_init(&f->lock);
    g_cond_init(&f->cond);
    g_cond_init(&f->push_cond);
    f->fs = fs;
    if (!(node = fs_node(fs, ino, &error))) {
        fs_reply_error(req, error);
        return;
    }
    if (node->kind == VIEW_CTL_FILE && !view_ctl_is_result(node)) {
        if ((fi->flags & O_ACCMODE) != O_WRONLY) {
            fuse_reply_err(req, EACCES);   /* write-only: the outcome is in ctl/result */
            return;
        }
        if (fs->backend->read_only) {
            fuse_reply_err(req, EROFS);
            return;
        }
        f->ctl = ctl_writer_new(node);
        fi->direct_io = 1;          /* every write reaches us, in order, with its errno */
        fi->nonseekable = 0;
        fi->fh = fs_file_register(fs, g_steal_pointer(&f));
        if (fuse_reply_open(req, fi) != 0)
            fs_file_unregister(fs, fi->fh);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, fs->backend->read_only || view_node_is_guest(node) ? EROFS : EACCES);
        return;
    }
    if (node->kind == VIEW_GUEST_ENTRY) {
        /* The guest's bytes at one version of its disk: the page cache may keep them
         * while the kernel keeps the inode (a changed image is another file). */
        if (!(f->guest = view_guest_open(fs->view, node, &error))) {
            fs_reply_error(req, error);
            return;
        }
        f->size = view_guest_size(f->guest);
        f->node = view_node_copy(node);
        f->ino = ino;
    } else if (node->kind == VIEW_DISK_FILE && strcmp(node->leaf, "data") == 0) {
        guint64 version = 0;
        Image *img;

        if (!(img = view_open_data(fs->view, node, &version, &error))) {
            /* EBUSY alone does not say which image or what holds it. */
            if (fs_errno_from_error(error) == EBUSY)
                g_message("%s/disks/%s/data: %s", node->dom, node->disk, error->message);
            fs_reply_error(req, error);
            return;
        }
        f->size = image_size(img);
        f->spare = g_ptr_array_new_with_free_func((GDestroyNotify)image_close);
        g_ptr_array_add(f->spare, img);
        f->nreaders = 1;
        f->node = view_node_copy(node);
        f->ino = ino;
        f->push_ok = !(fi->flags & O_DIRECT) && fs->push;
        /* Unchanged layers: the kernel may keep what it cached last time. */
        fi->keep_cache = inode_data_version_same(fs->inodes, ino, version);
    } else if (!fs_open_text(req, fs, ino, node, f, fi)) {
        return;
    }
    fi->noflush = 1;   /* read-only: nothing to say at close */
    fi->fh = fs_file_register(fs, g_steal_pointer(&f));
    if (fuse_reply_open(req, fi) != 0)
        fs_file_unregister(fs, fi->fh);
}

/* Each thread's buffer for READs of data files, freed when the thread ends: a
 * buffer of FS_MAX_IO per READ would be mmap()ed, faulted in page by page and
 * unmapped again every time (main.c keeps glibc's mmap threshold at 128 KiB). */
static GPrivate fs_read_buf_key = G_PRIVATE_INIT(g_free);

static char *
fs_read_buf(void)
{
    char *buf = g_private_get(&fs_read_buf_key);

    if (!buf) {
        buf = g_malloc(FS_MAX_IO);
        g_private_set(&fs_read_buf_key, buf);
    }
    return buf;
}

/* Replies: buf, or error. */
static void
fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    g_autoptr(FsFile) f = fs_file_get(fs_state(req), fi->fh);
    g_autoptr(GError) error = NULL;

    if (!f) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (f->guest) {
        g_autofree char *own = size > FS_MAX_IO ? g_malloc(size) : NULL;
        char *buf = own ? own : fs_read_buf();
        gssize n = view_guest_pread(f->guest, buf, size, off, &error);

        if (n < 0)
            fs_reply_error(req, error);
        else
            fuse_reply_buf(req, buf, n);
        return;
    }
    if (!f->spare) {
        gsize len = 0;
        const char *data = g_bytes_get_data(f->text->bytes, &len);   /* fixed at open */

        if ((guint64)off >= len)
            fuse_reply_buf(req, NULL, 0);
        else
            fuse_reply_buf(req, data + off, MIN(size, len - off));
        return;
    }
    {
        g_autofree char *own = size > FS_MAX_IO ? g_malloc(size) : NULL;
        char *buf = own ? own : fs_read_buf();
        Image *img;
        gssize n;

        fs_push_note(fs_state(req), f, off, size, TRUE);
        img = fs_reader_take(fs_state(req), f);
        n = image_pread(img, buf, size, off, &error);
        fs_reader_give(f, img);
        if (n < 0) {
            fs_reply_error(req, error);
            return;
        }
        fuse_reply_buf(req, buf, n);
    }
}

/* Drops what the kernel caches of domain @dom (NULL: everything) after a change:
 * made through the mount by a request of directory @locked (0: none), else seen by the
 * poller. Control files are skipped: the request in progress holds the one being
 * written. A text inode stands for one version, so it keeps its pages; the kernel's
 * entry of it goes instead, and the next lookup finds the inode of the version now.
 * Not the entries in @locked: the kernel holds its lock until the request's reply. */
static void
fs_invalidate(FsState *fs, const char *dom, fuse_ino_t locked)
{
    g_autoptr(GArray) inos = inode_list_domain(fs->inodes, dom);
    g_autoptr(GPtrArray) entries = inode_list_texts(fs->inodes, dom);

    for (guint i = 0; i < inos->len; i++)
        fuse_lowlevel_notify_inval_inode(fs->se, g_array_index(inos, guint64, i), 0, 0);
    for (guint i = 0; i < entries->len; i++) {
        InodeEntry *e = entries->pdata[i];

        if (e->parent != locked)
            fuse_lowlevel_notify_inval_entry(fs->se, e->parent, e->name, strlen(e->name));
    }
}

#define FS_POLL_INTERVAL_US (250 * G_TIME_SPAN_MILLISECOND)

static gpointer
fs_poller_main(gpointer data)
{
    FsState *fs = data;

    while (!g_atomic_int_get(&fs->stop_poller)) {
        g_autoptr(GPtrArray) changed = view_poll(fs->view);

        for (guint i = 0; i < changed->len; i++) {
            const char *dom = changed->pdata[i];

            if (*dom) {
                fs_invalidate(fs, dom, 0);
            } else {
                /* The domain list changed: a domain that went away may never have
                 * been loaded here, yet the kernel may know it (readdirplus). */
                fs_invalidate(fs, NULL, 0);
            }
        }
        g_usleep(FS_POLL_INTERVAL_US);
    }
    return NULL;
}

void
fs_poller_start(FsState *fs)
{
    g_atomic_int_set(&fs->stop_poller, 0);
    fs->poller = g_thread_new("snapfs-poller", fs_poller_main, fs);
}

void
fs_poller_stop(FsState *fs)
{
    if (!fs->poller)
        return;
    g_atomic_int_set(&fs->stop_poller, 1);
    g_thread_join(g_steal_pointer(&fs->poller));
}

/* Replies: write, or error (the errno of a payload this write completed). */
static void
fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
            struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(FsFile) f = fs_file_get(fs, fi->fh);
    g_autoptr(GError) error = NULL;
    gboolean changed = FALSE;
    gboolean ok;

    if (!f || !f->ctl) {
        fuse_reply_err(req, EBADF);
        return;
    }
    g_mutex_lock(&f->lock);
    ok = ctl_writer_write(f->ctl, fs->view, buf, size, off, &changed, &error);
    g_mutex_unlock(&f->lock);
    if (changed)
        fs_invalidate(fs, ctl_writer_domain(f->ctl), 0);
    if (!ok) {
        fs_reply_error(req, error);
        return;
    }
    fuse_reply_write(req, size);
}

/* Replies: err (0, or the errno of the payload applied at close). */
static void
fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(FsFile) f = fs_file_get(fs, fi->fh);
    g_autoptr(GError) error = NULL;
    gboolean changed = FALSE;
    gboolean ok = TRUE;

    if (f && f->ctl) {
        g_mutex_lock(&f->lock);
        ok = ctl_writer_flush(f->ctl, fs->view, FALSE, &changed, &error);
        g_mutex_unlock(&f->lock);
        if (changed)
            fs_invalidate(fs, ctl_writer_domain(f->ctl), 0);
    }
    if (!ok) {
        fs_reply_error(req, error);
        return;
    }
    fuse_reply_err(req, 0);
}

/* Whether inode @ino stands for files/ or anything inside: read-only, whatever the mount. */
static gboolean
fs_guest_ino(FsState *fs, fuse_ino_t ino)
{
    g_autoptr(ViewNode) node = fs_node(fs, ino, NULL);

    return node && view_node_is_guest(node);
}

/* Replies: err. Nothing is made by mknod, link or create: EROFS inside files/, EPERM
 * elsewhere (EROFS on a read-only mount). */
static void
fs_reply_no_new(fuse_req_t req, fuse_ino_t parent)
{
    FsState *fs = fs_state(req);

    fuse_reply_err(req, fs->backend->read_only || fs_guest_ino(fs, parent) ? EROFS : EPERM);
}

static void
fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fs_reply_no_new(req, parent);
}

static void
fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fs_reply_no_new(req, newparent);
}

static void
fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
             struct fuse_file_info *fi)
{
    fs_reply_no_new(req, parent);
}

/* The extended attributes of @ino (the guest's inside files/, none elsewhere), or
 * an errno. */
static int
fs_xattrs(FsState *fs, fuse_ino_t ino, GPtrArray **out)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;

    if (!(node = fs_node(fs, ino, &error)) || !(*out = view_xattrs(fs->view, node, &error)))
        return fs_errno_from_error(error);
    return 0;
}

/* Replies: xattr (size), buf, or error (ENODATA, ERANGE). */
static void
fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    g_autoptr(GPtrArray) xattrs = NULL;
    int err = fs_xattrs(fs_state(req), ino, &xattrs);

    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    for (guint i = 0; i < xattrs->len; i++) {
        GuestXattr *x = xattrs->pdata[i];
        gsize len = 0;
        const void *value = g_bytes_get_data(x->value, &len);

        if (strcmp(x->name, name) != 0)
            continue;
        if (size == 0)
            fuse_reply_xattr(req, len);
        else if (size < len)
            fuse_reply_err(req, ERANGE);
        else
            fuse_reply_buf(req, value, len);
        return;
    }
    fuse_reply_err(req, ENODATA);
}

/* Replies: xattr (size), buf, or error (ERANGE). */
static void
fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    g_autoptr(GPtrArray) xattrs = NULL;
    g_autoptr(GString) names = g_string_new(NULL);
    int err = fs_xattrs(fs_state(req), ino, &xattrs);

    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    for (guint i = 0; i < xattrs->len; i++)
        g_string_append_len(names, ((GuestXattr *)xattrs->pdata[i])->name,
                            strlen(((GuestXattr *)xattrs->pdata[i])->name) + 1);
    if (size == 0)
        fuse_reply_xattr(req, names->len);
    else if (size < names->len)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, names->str, names->len);
}

/* Replies: err (EROFS inside files/, ENOTSUP elsewhere: never ENOSYS, which the
 * kernel would remember for every file). */
static void
fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
               size_t size, int flags)
{
    FsState *fs = fs_state(req);

    fuse_reply_err(req, fs->backend->read_only || fs_guest_ino(fs, ino) ? EROFS : ENOTSUP);
}

static void
fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    FsState *fs = fs_state(req);

    fuse_reply_err(req, fs->backend->read_only || fs_guest_ino(fs, ino) ? EROFS : ENOTSUP);
}

/* Replies: attr, or error. Only truncation of a control file to 0 (shell `>`). */
static void
fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
              struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) node = NULL;

    if (!(node = fs_node(fs, ino, &error))) {
        fs_reply_error(req, error);
        return;
    }
    if (fs->backend->read_only || view_node_is_guest(node)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (node->kind != VIEW_CTL_FILE || view_ctl_is_result(node) ||
        (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                    FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) ||
        ((to_set & FUSE_SET_ATTR_SIZE) && attr->st_size != 0)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    fs_reply_attr_of(req, fs, ino, node);
}


/* The parent of a directory operation, checked: it exists, the mount is
 * writable, and it is a directory of @kind. Returns 0 or the errno to reply. */
static int
fs_dirop_parent(FsState *fs, fuse_ino_t parent, ViewKind kind, ViewNode **pnode,
                GError **error)
{
    if (!(*pnode = fs_node(fs, parent, error)))
        return fs_errno_from_error(*error);
    if (fs->backend->read_only || view_node_is_guest(*pnode))
        return EROFS;
    if ((*pnode)->kind != kind)
        return EPERM;
    return 0;
}

/* Replies: entry, or error. mkdir NAME/snapshots/S = a bare name to ctl/create. */
static void
fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    int err;

    if ((err = fs_dirop_parent(fs, parent, VIEW_SNAPS, &pnode, &error))) {
        fuse_reply_err(req, err);
        return;
    }
    if (!ctl_run(fs->view, &(BackendOp){ .op = BACKEND_OP_CREATE, .dom = pnode->dom, .name = name },
                 &error)) {
        fs_reply_error(req, error);
        return;
    }
    fs_invalidate(fs, pnode->dom, parent);
    fs_reply_entry_of(req, fs, parent, pnode, name);
}

/* Replies: err. rmdir NAME/snapshots/S = delete S --metadata. */
static void
fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    g_autoptr(ViewNode) victim = g_new0(ViewNode, 1);
    int err;

    if ((err = fs_dirop_parent(fs, parent, VIEW_SNAPS, &pnode, &error))) {
        fuse_reply_err(req, err);
        return;
    }
    victim->kind = VIEW_SNAP;
    victim->dom = g_strdup(pnode->dom);
    victim->snap = g_strdup(name);
    if (!ctl_run(fs->view, &(BackendOp){ .op = BACKEND_OP_DELETE, .dom = pnode->dom, .name = name,
                                          .flags = BACKEND_DELETE_METADATA_ONLY }, &error)) {
        fs_reply_error(req, error);
        return;
    }
    /* The kernel holds the removed directory's lock too. */
    fs_invalidate(fs, pnode->dom, inode_peek(fs->inodes, victim));
    fuse_reply_err(req, 0);
}

/* The snapshot a link target names: "snapshots/S", "./snapshots/S/", or an
 * absolute path ending in NAME/snapshots/S. */
static char *
fs_current_target(const char *dom, const char *target)
{
    g_autofree char *t = g_strdup(target);
    g_autofree char *abs_marker = g_strdup_printf("/%s/snapshots/", dom);
    const char *rest = NULL;
    char *end;

    while ((end = strrchr(t, '/')) && end[1] == '\0' && end != t)
        *end = '\0';
    if (g_str_has_prefix(t, "snapshots/"))
        rest = t + strlen("snapshots/");
    else if (g_str_has_prefix(t, "./snapshots/"))
        rest = t + strlen("./snapshots/");
    else if (t[0] == '/' && strstr(t, abs_marker))
        rest = strstr(t, abs_marker) + strlen(abs_marker);
    if (!rest || !*rest || strchr(rest, '/'))
        return NULL;
    return g_strchomp(g_strdup(rest));   /* trailing blanks go, as from a control file's line */
}

/* Replies: entry, or error. In a domain directory: `current` (makes the target
 * current) or any other name (GNU ln -sfn's temporary link, renamed later). */
static void
fs_op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    int err;
    g_autofree char *snap = NULL;

    if ((err = fs_dirop_parent(fs, parent, VIEW_DOM, &pnode, &error))) {
        fuse_reply_err(req, err);
        return;
    }
    if (!(snap = fs_current_target(pnode->dom, target))) {
        g_autofree char *msg = g_strdup_printf("a link in a domain directory must point to "
                                               "snapshots/SNAPSHOT, not '%s'", target);
        view_set_result(fs->view, pnode->dom, FALSE, msg);
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (strcmp(name, "current") == 0) {
        g_autoptr(ViewNode) cur = view_lookup(fs->view, pnode, "current", NULL);

        if (cur) {
            fuse_reply_err(req, EEXIST);   /* ln -sfn goes on with a temporary name */
            return;
        }
        if (!ctl_run(fs->view, &(BackendOp){ .op = BACKEND_OP_CURRENT, .dom = pnode->dom,
                                              .name = *snap ? snap : NULL }, &error)) {
            fs_reply_error(req, error);
            return;
        }
        fs_invalidate(fs, pnode->dom, parent);
        fs_reply_current_made(req, fs, pnode, snap);
        return;
    } else {
        g_autoptr(ViewNode) existing = view_lookup(fs->view, pnode, name, NULL);

        if (existing) {
            fuse_reply_err(req, EEXIST);
            return;
        }
        if (!view_templink_add(fs->view, pnode->dom, name, target, &error)) {
            fs_reply_error(req, error);
            return;
        }
    }
    fs_reply_entry_of(req, fs, parent, pnode, name);
}

/* Replies: err. A temporary link renamed onto `current` makes its target current. */
static void
fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
             const char *newname, unsigned int flags)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    g_autofree char *target = NULL;
    g_autofree char *snap = NULL;

    if (!(pnode = fs_node(fs, parent, &error))) {
        fs_reply_error(req, error);
        return;
    }
    if (fs->backend->read_only || view_node_is_guest(pnode) || fs_guest_ino(fs, newparent)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    if (pnode->kind != VIEW_DOM || parent != newparent || strcmp(newname, "current") != 0 ||
        (flags & RENAME_EXCHANGE)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (!(target = view_templink_take(fs->view, pnode->dom, name))) {
        fuse_reply_err(req, strcmp(name, "current") == 0 ? EINVAL : ENOENT);
        return;
    }
    snap = fs_current_target(pnode->dom, target);
    if (!ctl_run(fs->view, &(BackendOp){ .op = BACKEND_OP_CURRENT, .dom = pnode->dom,
                                          .name = *snap ? snap : NULL }, &error)) {
        /* The temporary link stays, as a failed rename leaves its source. */
        view_templink_add(fs->view, pnode->dom, name, target, NULL);
        fs_reply_error(req, error);
        return;
    }
    {
        g_autoptr(ViewNode) from = g_new0(ViewNode, 1);
        g_autoptr(ViewNode) to = g_new0(ViewNode, 1);

        from->kind = VIEW_TEMP_LINK;
        from->dom = g_strdup(pnode->dom);
        from->leaf = g_strdup(name);
        to->kind = VIEW_DOM_CURRENT;
        to->dom = g_strdup(pnode->dom);
        inode_retarget(fs->inodes, from, to);
    }
    fs_invalidate(fs, pnode->dom, parent);
    fuse_reply_err(req, 0);
}

/* Replies: err. `rm NAME/current` clears current; a temporary link goes away. */
static void
fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    FsState *fs = fs_state(req);
    g_autoptr(GError) error = NULL;
    g_autoptr(ViewNode) pnode = NULL;
    int err;
    g_autofree char *target = NULL;

    if ((err = fs_dirop_parent(fs, parent, VIEW_DOM, &pnode, &error))) {
        fuse_reply_err(req, err);
        return;
    }
    if ((target = view_templink_take(fs->view, pnode->dom, name))) {
        fs_invalidate(fs, pnode->dom, parent);
        fuse_reply_err(req, 0);
        return;
    }
    if (strcmp(name, "current") != 0) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (!ctl_run(fs->view, &(BackendOp){ .op = BACKEND_OP_CURRENT, .dom = pnode->dom }, &error)) {
        fs_reply_error(req, error);
        return;
    }
    fs_invalidate(fs, pnode->dom, parent);
    fuse_reply_err(req, 0);
}

/* Replies: err 0. */
static void
fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsState *fs = fs_state(req);
    g_autoptr(FsFile) f = fs_file_get(fs, fi->fh);

    if (f && f->ctl) {
        g_autoptr(GError) error = NULL;
        gboolean changed = FALSE;

        /* The last close: what is still pending applies now or is refused; the
         * outcome goes to ctl/result (release has no caller to tell). */
        g_mutex_lock(&f->lock);
        ctl_writer_flush(f->ctl, fs->view, TRUE, &changed, &error);
        g_mutex_unlock(&f->lock);
        if (changed)
            fs_invalidate(fs, ctl_writer_domain(f->ctl), 0);
    }
    if (f)
        fs_push_stop(f);
    fs_file_unregister(fs, fi->fh);
    fuse_reply_err(req, 0);
}

/* Replies: lseek, or error. SEEK_DATA/SEEK_HOLE let cp --sparse skip holes. */
static void
fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
    g_autoptr(FsFile) f = fs_file_get(fs_state(req), fi->fh);
    g_autoptr(GError) error = NULL;
    guint64 result = 0;
    guint64 size;
    gboolean ok;

    Image *img;

    if (!f || (!f->spare && !f->guest) || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    size = f->size;
    if (off < 0 || (guint64)off >= size) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    if (f->guest) {
        if (!view_guest_seek(f->guest, off, whence == SEEK_DATA, &result, &error))
            fs_reply_error(req, error);
        else if (whence == SEEK_DATA && result >= size)
            fuse_reply_err(req, ENXIO);
        else
            fuse_reply_lseek(req, result);
        return;
    }
    img = fs_reader_take(fs_state(req), f);
    ok = image_seek(img, off, whence == SEEK_DATA, &result, &error);
    fs_reader_give(f, img);
    if (!ok) {
        fs_reply_error(req, error);
        return;
    }
    fs_push_note(fs_state(req), f, off, whence == SEEK_DATA ? MIN(result, size) - off : 0,
                 FALSE);
    if (whence == SEEK_DATA && result >= size) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    fuse_reply_lseek(req, result);
}

/* Replies: statfs. */
static void
fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    FsState *fs = fs_state(req);
    struct statvfs sv = { 0 };

    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_namemax = 255;
    sv.f_files = inode_count(fs->inodes);
    sv.f_flag = ST_NOSUID | ST_NODEV | (fs->backend->read_only ? ST_RDONLY : 0);
    fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_op_init,
    .lookup = fs_op_lookup,
    .forget = fs_op_forget,
    .forget_multi = fs_op_forget_multi,
    .getattr = fs_op_getattr,
    .readlink = fs_op_readlink,
    .opendir = fs_op_opendir,
    .readdir = fs_op_readdir,
    .readdirplus = fs_op_readdirplus,
    .releasedir = fs_op_releasedir,
    .open = fs_op_open,
    .read = fs_op_read,
    .release = fs_op_release,
    .lseek = fs_op_lseek,
    .write = fs_op_write,
    .flush = fs_op_flush,
    .setattr = fs_op_setattr,
    .mkdir = fs_op_mkdir,
    .rmdir = fs_op_rmdir,
    .symlink = fs_op_symlink,
    .rename = fs_op_rename,
    .unlink = fs_op_unlink,
    .statfs = fs_op_statfs,
    .mknod = fs_op_mknod,
    .link = fs_op_link,
    .create = fs_op_create,
    .getxattr = fs_op_getxattr,
    .listxattr = fs_op_listxattr,
    .setxattr = fs_op_setxattr,
    .removexattr = fs_op_removexattr,
};
