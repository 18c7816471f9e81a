/* backup_job.c: push backups of a domain's disks as a background job (full and incremental, raw and qcow2). */
#include "backup_job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chain.h"
#include "error.h"
#include "guard.h"
#include "image.h"
#include "journal.h"
#include "live.h"
#include "qcow2w.h"
#include "util.h"
#include "xmlutil.h"

#define JOB_CHUNK (256 * 1024)          /* bytes read and written at a time: stays in L2 */
#define JOB_WORKERS 4                   /* copying threads per disk, at most */
#define JOB_ZERO_BLOCK 4096              /* raw targets: zero runs of this size stay holes */
/* a private error domain: the thread's way of saying "stopped on request" */
#define JOB_CANCEL_ERROR g_quark_from_static_string("snapfs-backup-job-cancel")

typedef struct {
    guint64 off;
    guint64 len;
} JobRange;

typedef struct {
    const BackupDiskDef *bd;   /* borrowed from job->def */
    Chain *chain;
    Image *img;
    guint64 size;
    gboolean qcow2;            /* target format */
    gboolean block;            /* <target dev=>: written in place */
    gboolean incremental;
    guint above;               /* incremental: chain layers [0, above) are newer than S */
    char *backing_name;        /* incremental: S's image */
    char *backing_format;
    char *target;
    char *part;                /* the temporary file's name, until it is made */
    char *tmp;                 /* temporary file, NULL for block targets or once renamed */
    int fd;
    GArray *ranges;            /* JobRange: what to copy, in order */
    GArray *holds;             /* int: descriptors holding qemu's read locks on the chain's
                                * images (live_image_hold()); NULL: none taken */
} JobDisk;

/* The journal of a job's temporary files: written before they are made, locked
 * while the job lives, removed after them. A journal nobody holds locked belongs
 * to a process that died: its files are removed at the next load. */
typedef struct {
    Journal *journal;
    int fd;                    /* holds the OFD lock */
} JobParts;

#define JOB_PARTS_DIR ".snapfs-backups"

struct BackupJob {
    Store *store;              /* borrowed: outlives the job; NULL: started on a loaded
                                * domain (backup_job_start_loaded()) */
    char *domain;
    JobParts *parts;
    BackupDef *def;
    GPtrArray *disks;          /* JobDisk * */
    GThread *thread;
    gint cancel;               /* atomic */
    GMutex lock;               /* guards the fields below */
    BackupJobState state;
    gboolean running;          /* the thread has not ended */
    guint64 done;
    guint64 total;
    gint64 started;            /* monotonic, microseconds */
    gint64 ended;              /* 0 while running */
    char *error_text;
};

const char *
backup_job_state_to_string(BackupJobState state)
{
    switch (state) {
    case BACKUP_JOB_RUNNING:
        return "running";
    case BACKUP_JOB_COMPLETED:
        return "completed";
    case BACKUP_JOB_FAILED:
        return "failed";
    case BACKUP_JOB_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

/* Releases the images' locks the disk holds. */
static void
job_disk_release(JobDisk *d)
{
    for (guint i = 0; d->holds && i < d->holds->len; i++)
        close(g_array_index(d->holds, int, i));
    g_clear_pointer(&d->holds, g_array_unref);
}

static void
job_disk_free(JobDisk *d)
{
    if (!d)
        return;
    job_disk_release(d);
    if (d->fd >= 0)
        close(d->fd);
    if (d->tmp)
        unlink(d->tmp);    /* never a target: only set while the file is ours */
    g_free(d->tmp);
    g_free(d->part);
    g_free(d->target);
    g_free(d->backing_name);
    g_free(d->backing_format);
    image_close(d->img);
    chain_free(d->chain);
    if (d->ranges)
        g_array_unref(d->ranges);
    g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(JobDisk, job_disk_free)

/* ---- temporary files: journal and cleanup --------------------------------- */

static void
job_parts_free(JobParts *parts)
{
    if (!parts)
        return;
    /* after the job's files are gone or renamed: only then may the record go */
    if (parts->journal)
        journal_remove(parts->journal, NULL);
    if (parts->fd >= 0)
        close(parts->fd);
    journal_free(parts->journal);
    g_free(parts);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(JobParts, job_parts_free)

/* Takes the OFD write lock of @path without waiting: -1 with errno EAGAIN when a
 * live job holds it. */
static int
job_parts_lock(const char *path)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0)
        return -1;
    while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        int errsv = errno;

        if (errsv == EINTR)
            continue;
        close(fd);
        errno = errsv == EACCES ? EAGAIN : errsv;
        return -1;
    }
    return fd;
}

/* Names the temporary file of every file target (TARGET.part-XXXXXX, names that
 * are free now) and, with a @store, records them in a journal, written and locked
 * before any of them is made. */
static JobParts *
job_parts_new(Store *store, const char *domain, GPtrArray *disks, GError **error)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    g_autoptr(JobParts) parts = g_new0(JobParts, 1);
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    g_autofree char *path = NULL;
    char id[13] = { 0 };
    struct stat st;
    struct stat locked;

    parts->fd = -1;
    for (guint i = 0; i < disks->len; i++) {
        JobDisk *d = disks->pdata[i];
        char suffix[7] = { 0 };

        if (d->block)
            continue;
        do {
            for (guint j = 0; j < 6; j++)
                suffix[j] = alnum[g_random_int_range(0, sizeof(alnum) - 1)];
            g_free(d->part);
            d->part = g_strdup_printf("%s.part-%s", d->target, suffix);
        } while (lstat(d->part, &st) == 0);
        g_ptr_array_add(names, d->part);
    }
    if (names->len == 0 || !store)
        return g_steal_pointer(&parts);
    for (guint j = 0; j < 12; j++)
        id[j] = alnum[g_random_int_range(0, sizeof(alnum) - 1)];
    path = g_build_filename(store->snapshot_dir, JOB_PARTS_DIR, id, NULL);
    parts->journal = journal_new(path, "backup");
    journal_set(parts->journal, "domain", domain);
    journal_set_list(parts->journal, "parts", (const char *const *)names->pdata, names->len);
    if (!journal_write(parts->journal, error)) {
        g_clear_pointer(&parts->journal, journal_free);
        return NULL;
    }
    /* A cleanup by another process between the write and the lock would remove the
     * journal: then this one is not the file written, and the job does not start. */
    if ((parts->fd = job_parts_lock(path)) < 0 || fstat(parts->fd, &locked) < 0 ||
        stat(path, &st) < 0 || st.st_ino != locked.st_ino || st.st_dev != locked.st_dev) {
        int errsv = parts->fd < 0 ? errno : ENOENT;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot lock backup journal '%s': %s", path, g_strerror(errsv));
        return NULL;
    }
    return g_steal_pointer(&parts);
}

void
backup_job_recover(Store *store, GPtrArray *resolved, GPtrArray *failed)
{
    g_autofree char *dir = g_build_filename(store->snapshot_dir, JOB_PARTS_DIR, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (!d || store->read_only)
        return;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autoptr(Journal) journal = NULL;
        g_autoptr(GError) error = NULL;
        g_auto(CoreFd) fd = -1;
        g_auto(GStrv) files = NULL;
        g_autofree char *domain = NULL;
        guint removed = 0;

        if (g_str_has_suffix(name, ".new"))
            continue;   /* a journal being written; no file of it exists yet */
        if ((fd = job_parts_lock(path)) < 0)
            continue;   /* a running job (or gone meanwhile) */
        if (!(journal = journal_load(path, &error))) {
            g_ptr_array_add(failed, g_strdup(error->message));
            continue;
        }
        domain = journal_get(journal, "domain");
        files = journal_get_list(journal, "parts");
        for (guint i = 0; files[i]; i++) {
            if (unlink(files[i]) == 0) {
                removed++;
            } else if (errno != ENOENT) {
                int errsv = errno;

                g_ptr_array_add(failed, g_strdup_printf("cannot remove '%s' of an interrupted "
                                                        "backup: %s", files[i],
                                                        g_strerror(errsv)));
            }
        }
        if (!journal_remove(journal, &error)) {
            g_ptr_array_add(failed, g_strdup(error->message));
            continue;
        }
        if (removed)
            g_ptr_array_add(resolved, g_strdup_printf("domain '%s': removed %u temporary "
                                                      "file(s) of an interrupted backup",
                                                      domain ? domain : "", removed));
    }
}

static void
job_free_fields(BackupJob *job)
{
    g_free(job->domain);
    backup_def_free(job->def);
    if (job->disks)
        g_ptr_array_unref(job->disks);
    job_parts_free(job->parts);
    g_free(job->error_text);
    g_mutex_clear(&job->lock);
    g_free(job);
}

void
backup_job_free(BackupJob *job)
{
    if (!job)
        return;
    if (job->thread) {
        backup_job_cancel(job);
        backup_job_wait(job);
    }
    job_free_fields(job);
}

/* ---- validation ---------------------------------------------------------- */

static gboolean
job_same_file(const char *a, const char *b)
{
    struct stat sa;
    struct stat sb;

    if (g_strcmp0(a, b) == 0)
        return TRUE;
    if (!a || !b || !util_path_stat(a, FALSE, &sa, NULL) || !util_path_stat(b, FALSE, &sb, NULL))
        return FALSE;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Where the chain of @dd meets S's image: S must be an external snapshot of the
 * disk whose <domain> names an image of the current chain. */
static gboolean
job_find_incremental(JobDisk *d, const BackendDomain *sd, const char *name, GError **error)
{
    SnapNode *node = snaptree_lookup(sd->snaps, name);
    const SnapDiskDef *sdisk = NULL;
    const DiskDef *old = NULL;

    if (!node) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                    "Domain snapshot not found: no domain snapshot with matching name '%s'",
                    name);
        return FALSE;
    }
    for (guint i = 0; i < node->def->disks->len; i++) {
        const SnapDiskDef *sdd = node->def->disks->pdata[i];

        if (g_strcmp0(sdd->name, d->bd->name) == 0)
            sdisk = sdd;
    }
    if (!sdisk || sdisk->snapshot != SNAP_LOC_EXTERNAL) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "incremental backup of disk '%s' needs an external snapshot of it: "
                    "snapshot '%s' is not one", d->bd->name, name);
        return FALSE;
    }
    if (node->def->dom)
        old = domain_disk_by_name(node->def->dom, d->bd->name);
    if (!old || !old->src || !old->src->path) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "snapshot '%s' does not record the image of disk '%s'", name,
                    d->bd->name);
        return FALSE;
    }
    for (guint i = 0; i < d->chain->layers->len; i++) {
        const ChainLayer *cl = d->chain->layers->pdata[i];

        if (cl->src->path && job_same_file(cl->src->path, old->src->path)) {
            d->above = i;
            d->backing_name = g_strdup(cl->src->path);
            d->backing_format = g_strdup(cl->src->format ? cl->src->format : "raw");
            return TRUE;
        }
    }
    g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                "image '%s' of snapshot '%s' is not in the backing chain of disk '%s'",
                old->src->path, name, d->bd->name);
    return FALSE;
}

/* A block target must be a block device: anything else would be overwritten as if it were
 * one. The words are qemu's, which libvirt passes on when its host_device driver refuses the
 * target; a character device, which qemu would take, is refused as well. */
static gboolean
job_target_is_device(const struct stat *st, const char *target, GError **error)
{
    if (S_ISBLK(st->st_mode))
        return TRUE;
    if (S_ISCHR(st->st_mode))
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "'%s' is a character device: a block target must be a block device", target);
    else
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "'host_device' driver requires '%s' to be either a character or block device",
                    target);
    return FALSE;
}

/* Holds qemu's read locks on every local image of @d's chain until the job ends. */
static gboolean
job_disk_hold(JobDisk *d, GError **error)
{
    d->holds = g_array_new(FALSE, FALSE, sizeof(int));
    for (guint i = 0; i < d->chain->layers->len; i++) {
        const ChainLayer *layer = d->chain->layers->pdata[i];
        int fd;

        if (!layer->src->path || (layer->src->type != STORAGE_TYPE_FILE &&
                                  layer->src->type != STORAGE_TYPE_BLOCK))
            continue;
        if ((fd = live_image_hold(layer->src->path, error)) < 0)
            return FALSE;
        g_array_append_val(d->holds, fd);
    }
    return TRUE;
}

/* Everything about one disk that can fail before the thread starts; @hold: the chain's
 * images locked as qemu-img locks what it reads. */
static JobDisk *
job_disk_prepare(const BackupDiskDef *bd, const BackendDomain *sd, gboolean hold,
                 GError **error)
{
    g_autoptr(JobDisk) d = g_new0(JobDisk, 1);
    const DiskDef *dd = domain_disk_by_name(sd->def, bd->name);
    const char *format = bd->store->format;
    struct stat st;

    d->fd = -1;
    d->bd = bd;
    g_assert(dd);   /* alignment found it */
    if (!g_str_equal(format, "raw") && !g_str_equal(format, "qcow2")) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                    "backup target format '%s' of disk '%s' is not supported "
                    "(raw or qcow2)", format, bd->name);
        return NULL;
    }
    d->qcow2 = g_str_equal(format, "qcow2");
    d->block = bd->store->type == STORAGE_TYPE_BLOCK;
    d->target = g_strdup(bd->store->path);
    if (!d->target || !g_path_is_absolute(d->target)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                    "backup target '%s' of disk '%s' must be an absolute path",
                    d->target ? d->target : "", bd->name);
        return NULL;
    }
    d->chain = chain_resolve(dd->src, dd->dst);
    if (hold && !job_disk_hold(d, error)) {
        g_prefix_error(error, "disk '%s': ", bd->name);
        return NULL;
    }
    if (!(d->img = image_open(d->chain, 0, error))) {
        g_prefix_error(error, "disk '%s': ", bd->name);
        return NULL;
    }
    d->size = image_size(d->img);
    if (d->block) {
        if (!util_path_stat(d->target, FALSE, &st, error)) {
            g_prefix_error(error, "cannot stat target device '%s': ", d->target);
            return NULL;
        }
        if (!job_target_is_device(&st, d->target, error))
            return NULL;
    } else if (!util_path_outside(d->target, error)) {
        g_prefix_error(error, "cannot create target file '%s': ", d->target);
        return NULL;
    } else if (util_path_stat(d->target, TRUE, &st, NULL)) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS,
                    "target file '%s' already exists", d->target);
        return NULL;
    }
    if (bd->backupmode == BACKUP_DISK_MODE_INCREMENTAL) {
        d->incremental = TRUE;
        if (!d->qcow2) {
            g_set_error(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                        "incremental backup of disk '%s' needs a qcow2 target", bd->name);
            return NULL;
        }
        if (!job_find_incremental(d, sd, bd->incremental, error))
            return NULL;
    }
    return g_steal_pointer(&d);
}

/* Opens where the data goes: a new temporary file next to the target, or the device. */
static gboolean
job_disk_open(JobDisk *d, GError **error)
{
    if (d->block) {
        struct stat st;

        if ((d->fd = util_image_open(d->target, O_WRONLY, &st, error)) < 0)
            return FALSE;
        return job_target_is_device(&st, d->target, error);   /* it may have changed since */
    }
    {
        int fd = open(d->part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

        if (fd < 0) {
            int errsv = errno;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                        "cannot create a temporary file for target '%s': %s", d->target,
                        g_strerror(errsv));
            return FALSE;
        }
        d->fd = fd;
        d->tmp = g_steal_pointer(&d->part);
    }
    return TRUE;
}

/* ---- mapping ------------------------------------------------------------- */

static void
job_ranges_add(GArray *ranges, guint64 off, guint64 len)
{
    if (len == 0)
        return;
    if (ranges->len > 0) {
        JobRange *last = &g_array_index(ranges, JobRange, ranges->len - 1);

        if (off <= last->off + last->len) {   /* ranges come in order */
            guint64 end = MAX(last->off + last->len, off + len);
            last->len = end - last->off;
            return;
        }
    }
    g_array_append_val(ranges, ((JobRange){ off, len }));
}

/* Full backup: every data range of the chain, widened to @unit boundaries. */
static gboolean
job_map_full(JobDisk *d, guint64 unit, GError **error)
{
    guint64 off = 0;

    while (off < d->size) {
        guint64 data;
        guint64 hole;
        guint64 start;
        guint64 end;

        if (!image_seek(d->img, off, TRUE, &data, error))
            return FALSE;
        if (data >= d->size)
            break;
        if (!image_seek(d->img, data, FALSE, &hole, error))
            return FALSE;
        start = data / unit * unit;
        end = MIN((hole + unit - 1) / unit * unit, d->size);
        job_ranges_add(d->ranges, start, end - start);
        off = hole;
    }
    return TRUE;
}

/* Where layers of a guest disk allocate, one byte per target cluster. */
typedef struct {
    guint8 *map;
    guint64 nmap;
    guint64 cs;     /* target cluster size */
} JobMap;

/* Marks the target clusters that overlap guest range [@off, @off + @len). */
static gboolean
job_map_mark(gpointer data, guint64 off, guint64 len, GError **error)
{
    JobMap *m = data;

    for (guint64 c = off / m->cs; c < m->nmap && c * m->cs < off + len; c++)
        m->map[c] = 1;
    return TRUE;
}

/* Incremental: the target clusters allocated in the layers above S's image. */
static gboolean
job_map_incremental(JobDisk *d, guint64 cs, GError **error)
{
    guint64 nmap = (d->size + cs - 1) / cs;
    g_autofree guint8 *map = g_malloc0(MAX(nmap, 1));
    JobMap m = { map, nmap, cs };

    /* zero clusters count: they hide what is below them */
    for (guint i = 0; i < d->above; i++) {
        if (!image_layer_allocated(d->img, i, job_map_mark, &m, error))
            return FALSE;
    }
    for (guint64 c = 0; c < nmap; c++) {
        if (map[c])
            job_ranges_add(d->ranges, c * cs, MIN(cs, d->size - c * cs));
    }
    return TRUE;
}

/* ---- copying ------------------------------------------------------------- */


static gboolean
job_pwrite(JobDisk *d, const guint8 *buf, gsize len, guint64 off, GError **error)
{
    return util_pwrite_full(d->fd, d->tmp ? d->tmp : d->target, buf, len, off, error);
}

/* Raw: writes the non-zero blocks of @buf; zero blocks stay holes of the sparse
 * file (a device gets everything). */
static gboolean
job_write_raw(JobDisk *d, const guint8 *buf, gsize len, guint64 off, GError **error)
{
    gsize start = 0;   /* of the pending run of data */
    gsize p;

    if (d->block)
        return job_pwrite(d, buf, len, off, error);
    for (p = 0; p < len; p += JOB_ZERO_BLOCK) {
        gsize n = MIN(JOB_ZERO_BLOCK, len - p);

        if (!util_is_zero(buf + p, n))
            continue;
        if (p > start && !job_pwrite(d, buf + start, p - start, off + start, error))
            return FALSE;
        start = p + n;
    }
    if (len > start && !job_pwrite(d, buf + start, len - start, off + start, error))
        return FALSE;
    return TRUE;
}

static void
job_progress(BackupJob *job, guint64 add)
{
    g_mutex_lock(&job->lock);
    job->done += add;
    g_mutex_unlock(&job->lock);
}

static gboolean
job_cancelled(BackupJob *job, GError **error)
{
    if (!g_atomic_int_get(&job->cancel))
        return FALSE;
    g_set_error_literal(error, JOB_CANCEL_ERROR, 0, "backup cancelled");
    return TRUE;
}

/* One disk's copy, shared by its workers. */
typedef struct {
    BackupJob *job;
    JobDisk *d;
    Qcow2Writer *w;            /* NULL for raw targets; takes writes from several threads */
    GArray *items;             /* JobRange: chunks of at most JOB_CHUNK bytes */
    gint next;                 /* atomic: the next item to take */
    gint stop;                 /* atomic: a worker failed or the job was cancelled */
    GMutex elock;              /* guards error */
    GError *error;             /* the first failure */
} JobCopy;

static gboolean
job_copy_item(JobCopy *c, Image *img, guint8 *buf, const JobRange *r, GError **error)
{
    JobDisk *d = c->d;
    gssize got;

    if ((got = image_pread(img, buf, r->len, r->off, error)) < 0)
        return FALSE;
    if ((guint64)got != r->len) {
        g_set_error(error, CORE_ERROR, CORE_ERROR_CORRUPT,
                    "disk '%s' ended early at %" G_GUINT64_FORMAT, d->bd->name,
                    r->off + got);
        return FALSE;
    }
    if (!c->w) {
        if (!job_write_raw(d, buf, r->len, r->off, error))
            return FALSE;
        /* Start writeback now: the fsync before the rename then finds little left,
         * and the disk writes while the chain is still being read. */
        sync_file_range(d->fd, (off_t)r->off, (off_t)r->len, SYNC_FILE_RANGE_WRITE);
        return TRUE;
    }
    return qcow2w_write(c->w, r->off, buf, r->len, d->incremental, error);
}

/* A worker: its own Image (they are not thread-safe) and buffer; takes chunks
 * until none is left or something failed. */
static gpointer
job_worker(gpointer data)
{
    JobCopy *c = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(Image) img = image_open(c->d->chain, 0, &error);
    g_autofree guint8 *buf = g_malloc(JOB_CHUNK);

    while (img && !g_atomic_int_get(&c->stop)) {
        guint i = (guint)g_atomic_int_add(&c->next, 1);
        const JobRange *r;

        if (i >= c->items->len)
            break;
        if (job_cancelled(c->job, &error))
            break;
        r = &g_array_index(c->items, JobRange, i);
        if (!job_copy_item(c, img, buf, r, &error))
            break;
        job_progress(c->job, r->len);
    }
    if (error) {
        g_atomic_int_set(&c->stop, 1);
        g_mutex_lock(&c->elock);
        if (!c->error)
            c->error = g_steal_pointer(&error);
        g_mutex_unlock(&c->elock);
    }
    return NULL;
}

static gboolean
job_copy_disk(BackupJob *job, JobDisk *d, GError **error)
{
    g_autoptr(Qcow2Writer) w = NULL;
    JobCopy c = { .job = job, .d = d };
    GThread *workers[JOB_WORKERS];
    guint nworkers;

    if (d->qcow2) {
        if (!(w = qcow2w_new(d->fd, d->tmp ? d->tmp : d->target, d->size, 0, d->backing_name,
                             d->backing_format, error)))
            return FALSE;
    } else if (!d->block && ftruncate(d->fd, (off_t)d->size) < 0) {
        int errsv = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot resize '%s': %s", d->tmp, g_strerror(errsv));
        return FALSE;
    }
    c.w = w;
    c.items = g_array_new(FALSE, FALSE, sizeof(JobRange));
    for (guint i = 0; i < d->ranges->len; i++) {
        JobRange r = g_array_index(d->ranges, JobRange, i);

        for (guint64 off = r.off; off < r.off + r.len; off += JOB_CHUNK) {
            JobRange item = { off, MIN(JOB_CHUNK, r.off + r.len - off) };
            g_array_append_val(c.items, item);
        }
    }
    g_mutex_init(&c.elock);
    /* reads and writes overlap: the chain is in the page cache more often than not,
     * and a single thread leaves the copy bound by one core's memcpy */
    nworkers = CLAMP(g_get_num_processors(), 2, JOB_WORKERS);
    nworkers = MIN(nworkers, MAX(c.items->len, 1));
    for (guint i = 0; i < nworkers; i++)
        workers[i] = g_thread_new("backup-worker", job_worker, &c);
    for (guint i = 0; i < nworkers; i++)
        g_thread_join(workers[i]);
    g_array_unref(c.items);
    g_mutex_clear(&c.elock);
    if (c.error) {
        g_propagate_error(error, c.error);
        return FALSE;
    }
    if (job_cancelled(job, error))
        return FALSE;
    if (w && !qcow2w_finish(w, error))
        return FALSE;
    if (fsync(d->fd) < 0) {
        int errsv = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot sync '%s': %s", d->tmp ? d->tmp : d->target, g_strerror(errsv));
        return FALSE;
    }
    return TRUE;
}

/* Renames every temporary file to its target without replacing anything; on a
 * failure the targets already renamed are removed again. */
static gboolean
job_commit(BackupJob *job, GError **error)
{
    guint i;

    for (i = 0; i < job->disks->len; i++) {
        JobDisk *d = job->disks->pdata[i];

        if (!d->tmp)
            continue;
        if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->target, RENAME_NOREPLACE) < 0) {
            int errsv = errno;

            /* filesystems without RENAME_NOREPLACE: link() never replaces either */
            if (errsv == EINVAL || errsv == ENOSYS) {
                if (link(d->tmp, d->target) == 0) {
                    unlink(d->tmp);
                    errsv = 0;
                } else {
                    errsv = errno;
                }
            }
            if (errsv != 0) {
                if (errsv == EEXIST)
                    g_set_error(error, CORE_ERROR, CORE_ERROR_EXISTS,
                                "target file '%s' already exists", d->target);
                else
                    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                                "cannot rename '%s' to '%s': %s", d->tmp, d->target,
                                g_strerror(errsv));
                break;
            }
        }
        g_clear_pointer(&d->tmp, g_free);
    }
    if (i < job->disks->len) {
        while (i-- > 0) {
            JobDisk *d = job->disks->pdata[i];

            if (!d->block)
                unlink(d->target);
        }
        return FALSE;
    }
    for (i = 0; i < job->disks->len; i++) {
        JobDisk *d = job->disks->pdata[i];

        if (!d->block && !util_fsync_dir_of(d->target, error))
            break;
    }
    if (i < job->disks->len) {   /* not durable: a failed job leaves no target */
        for (i = 0; i < job->disks->len; i++) {
            JobDisk *d = job->disks->pdata[i];

            if (!d->block)
                unlink(d->target);
        }
        return FALSE;
    }
    return TRUE;
}

/* The ranges each disk copies (from the allocation maps) and their sum: done before
 * the job starts, so `job` shows its total from the first moment. */
static gboolean
job_map_disks(GPtrArray *disks, guint64 *total, GError **error)
{
    *total = 0;
    for (guint i = 0; i < disks->len; i++) {
        JobDisk *d = disks->pdata[i];
        guint64 unit = d->qcow2 ? QCOW2W_DEFAULT_CLUSTER_SIZE : JOB_ZERO_BLOCK;

        d->ranges = g_array_new(FALSE, FALSE, sizeof(JobRange));
        if (d->block && !d->qcow2)
            job_ranges_add(d->ranges, 0, d->size);   /* old device content must go */
        else if (d->incremental ? !job_map_incremental(d, unit, error)
                                : !job_map_full(d, unit, error))
            return FALSE;
        for (guint j = 0; j < d->ranges->len; j++)
            *total += g_array_index(d->ranges, JobRange, j).len;
    }
    return TRUE;
}

static gboolean
job_run(BackupJob *job, GError **error)
{
    for (guint i = 0; i < job->disks->len; i++) {
        JobDisk *d = job->disks->pdata[i];

        if (!job_copy_disk(job, d, error)) {
            g_prefix_error(error, "disk '%s': ", d->bd->name);
            return FALSE;
        }
    }
    if (job_cancelled(job, error))
        return FALSE;
    return job_commit(job, error);
}

static gpointer
job_thread(gpointer data)
{
    BackupJob *job = data;
    g_autoptr(GError) error = NULL;
    gboolean ok = job_run(job, &error);

    /* close and remove what is left of the temporary files */
    for (guint i = 0; i < job->disks->len; i++) {
        JobDisk *d = job->disks->pdata[i];

        if (d->fd >= 0)
            close(d->fd);
        d->fd = -1;
        if (d->tmp)
            unlink(d->tmp);
        g_clear_pointer(&d->tmp, g_free);
        g_clear_pointer(&d->img, image_close);
        job_disk_release(d);
    }
    g_clear_pointer(&job->parts, job_parts_free);
    g_mutex_lock(&job->lock);
    if (ok)
        job->state = BACKUP_JOB_COMPLETED;
    else if (g_error_matches(error, JOB_CANCEL_ERROR, 0))
        job->state = BACKUP_JOB_CANCELLED;
    else {
        job->state = BACKUP_JOB_FAILED;
        job->error_text = g_strdup(error->message);
    }
    job->ended = g_get_monotonic_time();
    /* the images are free before the job reads as ended */
    if (job->store)
        guard_backup_end(job->store, job->domain);
    job->running = FALSE;
    g_mutex_unlock(&job->lock);
    return NULL;
}

/* ---- public -------------------------------------------------------------- */

/* Starts the job of @def on @domain as @sd (read during the call only) describes it;
 * @store keeps the journal of its temporary files and the guard; without one (NULL) the
 * images are locked as qemu-img locks what it reads, so that no qemu writes them meanwhile. */
static BackupJob *
job_launch(Store *store, const BackendDomain *sd, const char *domain, BackupDef *def_owned,
           GError **error)
{
    BackupJob *job = NULL;
    g_autoptr(BackupDef) def = def_owned;
    /* before disks: freed after them, so the journal goes after the files */
    g_autoptr(JobParts) parts = NULL;
    g_autoptr(GPtrArray) disks = g_ptr_array_new_with_free_func((GDestroyNotify)job_disk_free);
    g_autofree char *suffix = NULL;
    guint64 total;

    suffix = g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time() / G_USEC_PER_SEC);
    if (!backup_align_disks(def, sd->def, suffix, error))
        return NULL;
    for (guint i = 0; i < def->disks->len; i++) {
        BackupDiskDef *bd = def->disks->pdata[i];
        JobDisk *d;

        if (!bd->backup)
            continue;
        /* libvirt's qemu driver: push targets are qcow2 unless <driver type> says */
        if (!bd->store->format)
            bd->store->format = g_strdup("qcow2");
        if (!(d = job_disk_prepare(bd, sd, store == NULL, error)))
            return NULL;
        for (guint j = 0; j < disks->len; j++) {
            JobDisk *o = disks->pdata[j];

            if (job_same_file(o->target, d->target)) {
                g_set_error(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "disks '%s' and '%s' have the same backup target '%s'",
                            o->bd->name, bd->name, d->target);
                job_disk_free(d);
                return NULL;
            }
        }
        g_ptr_array_add(disks, d);
    }
    if (disks->len == 0) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_INVALID,
                            "no disks selected for backup");
        return NULL;
    }
    if (!(parts = job_parts_new(store, domain, disks, error)))
        return NULL;
    for (guint i = 0; i < disks->len; i++) {
        if (!job_disk_open(disks->pdata[i], error))
            return NULL;    /* the free function removes the files made so far */
    }
    if (!job_map_disks(disks, &total, error))
        return NULL;

    job = g_new0(BackupJob, 1);
    job->store = store;
    job->total = total;
    g_mutex_init(&job->lock);
    job->domain = g_strdup(domain);
    job->def = g_steal_pointer(&def);
    job->disks = g_steal_pointer(&disks);
    job->parts = g_steal_pointer(&parts);
    job->state = BACKUP_JOB_RUNNING;
    job->running = TRUE;
    job->started = g_get_monotonic_time();
    job->thread = g_thread_new("backup", job_thread, job);
    return job;
}

/* Starts the job of @def once its domain is marked as being read (guard_backup_begin()). */
static BackupJob *
job_start(Store *store, const char *domain, BackupDef *def, GError **error)
{
    g_autoptr(BackendDomain) sd = NULL;
    g_autoptr(GError) local = NULL;

    {
        /* leftovers of a backup another process was running when it died */
        g_autoptr(GPtrArray) resolved = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) failed = g_ptr_array_new_with_free_func(g_free);

        backup_job_recover(store, resolved, failed);
        for (guint i = 0; i < failed->len; i++)
            g_debug("%s", (char *)failed->pdata[i]);
    }
    if (!(sd = store_load_domain(store, domain, &local))) {
        backup_def_free(def);
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            g_set_error(error, CORE_ERROR, CORE_ERROR_NOT_FOUND,
                        "Domain not found: no domain with matching name '%s'", domain);
        else
            g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return job_launch(store, sd, domain, def, error);
}

/* A job's document, push mode only, while @previous runs nothing: libvirt's order
 * (qemuBackupBegin) is parse, then the running job, then alignment. Owned. */
static BackupDef *
job_parse(const char *xml, gsize len, BackupJob *previous, GError **error)
{
    g_autoptr(BackupDef) def = NULL;

    if (!(def = backup_parse(xml, len, xmlutil_schema_dir(), error)))
        return NULL;
    if (def->mode == BACKUP_MODE_PULL) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_UNSUPPORTED,
                            "pull mode backups need a running domain; "
                            "snapfs only does push backups");
        return NULL;
    }
    if (!backup_job_check_idle(previous, error))
        return NULL;
    return g_steal_pointer(&def);
}

BackupJob *
backup_job_start_loaded(const BackendDomain *sd, const char *domain, const char *xml,
                        gsize len, BackupJob *previous, GError **error)
{
    BackupDef *def = job_parse(xml, len, previous, error);

    return def ? job_launch(NULL, sd, domain, def, error) : NULL;
}

BackupJob *
backup_job_start(Store *store, const char *domain, const char *xml, gsize len,
                 BackupJob *previous, GError **error)
{
    g_autoptr(BackupDef) def = NULL;
    BackupJob *job;

    if (!(def = job_parse(xml, len, previous, error)))
        return NULL;
    /* From here until the job ends no change of the domain's images goes ahead. */
    if (!guard_backup_begin(store, domain, error))
        return NULL;
    if (!(job = job_start(store, domain, g_steal_pointer(&def), error)))
        guard_backup_end(store, domain);
    return job;
}

void
backup_job_cancel(BackupJob *job)
{
    g_atomic_int_set(&job->cancel, 1);
}

BackupJobState
backup_job_wait(BackupJob *job)
{
    BackupJobState state;

    if (job->thread) {
        g_thread_join(job->thread);
        job->thread = NULL;
    }
    g_mutex_lock(&job->lock);
    state = job->state;
    g_mutex_unlock(&job->lock);
    return state;
}

void
backup_job_status(BackupJob *job, BackupJobState *state, guint64 *done, guint64 *total,
                  double *rate, char **error_text)
{
    gint64 end;
    double secs;

    g_mutex_lock(&job->lock);
    end = job->ended ? job->ended : g_get_monotonic_time();
    secs = (double)(end - job->started) / G_USEC_PER_SEC;
    if (state)
        *state = job->state;
    if (done)
        *done = job->done;
    if (total)
        *total = job->total;
    if (rate)
        *rate = secs > 0 ? job->done / secs : 0;
    if (error_text)
        *error_text = g_strdup(job->error_text);
    g_mutex_unlock(&job->lock);
}

char *
backup_job_describe(BackupJob *job)
{
    BackupJobState state;
    guint64 done;
    guint64 total;
    double rate;
    g_autofree char *reason = NULL;
    char ratebuf[G_ASCII_DTOSTR_BUF_SIZE];

    backup_job_status(job, &state, &done, &total, &rate, &reason);
    if (reason)   /* one line, whatever the message */
        g_strdelimit(reason, "\r\n", ' ');
    g_ascii_formatd(ratebuf, sizeof(ratebuf), "%.1f", rate / 1e6);
    return g_strdup_printf("backup %s %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                           " bytes %s MB/s%s%s\n", backup_job_state_to_string(state),
                           done, total, ratebuf, reason ? ": " : "", reason ? reason : "");
}

char *
backup_job_xml(BackupJob *job)
{
    return backup_format(job->def, FALSE);
}

const char *
backup_job_domain(BackupJob *job)
{
    return job->domain;
}

gboolean
backup_job_is_running(BackupJob *job)
{
    gboolean running;

    g_mutex_lock(&job->lock);
    running = job->running;
    g_mutex_unlock(&job->lock);
    return running;
}

gboolean
backup_job_check_idle(BackupJob *job, GError **error)
{
    if (job && backup_job_is_running(job)) {
        g_set_error_literal(error, CORE_ERROR, CORE_ERROR_BUSY,
                            "another backup job is already running");
        return FALSE;
    }
    return TRUE;
}
