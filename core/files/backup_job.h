/* backup_job.h: push backups of a domain's disks as a background job (full and incremental, raw and qcow2). */
#pragma once

#include <glib.h>

#include "backend.h"
#include "backup.h"
#include "store.h"

G_BEGIN_DECLS

typedef enum {
    BACKUP_JOB_RUNNING = 0,
    BACKUP_JOB_COMPLETED,
    BACKUP_JOB_FAILED,
    BACKUP_JOB_CANCELLED,
} BackupJobState;

const char *backup_job_state_to_string(BackupJobState state);  /* "running", ... */

typedef struct BackupJob BackupJob;

/* Starts a push backup of domain @domain of @store from <domainbackup> XML @xml:
 * parses it (validating against domainbackup.rng in xmlutil_schema_dir()), refuses
 * pull mode, aligns the disks against the domain (default target names: the disk
 * path + "." + the current Unix time, as libvirt), defaults each target's
 * <driver type> to qcow2 (as libvirt's qemu driver), checks everything that can be
 * checked before writing (chains readable, targets absent, incremental snapshots)
 * and then copies in a thread of its own; returns at once. Each target is written
 * to TARGET.part-XXXXXX in its directory, fsynced, and only when every disk is done
 * renamed to its name: a failed or cancelled job leaves no target and no temporary
 * file; a killed one leaves them in a journal that backup_job_recover() reads. <target dev=> (block) targets are written in place.
 * Errors: what backup_parse()/backup_align_disks() set (libvirt's texts),
 * CORE_ERROR_UNSUPPORTED (pull mode, target formats other than raw/qcow2, raw
 * increments), CORE_ERROR_EXISTS ("target file '%s' already exists"),
 * CORE_ERROR_NOT_FOUND (no such snapshot), CORE_ERROR_INVALID ("no disks selected
 * for backup", snapshot not external / not in the chain), chain errors.
 * @previous: the domain's last job or NULL; while it runs, CORE_ERROR_BUSY after
 * the document parsed (libvirt's order), so at most one job runs per domain.
 * Owned; backup_job_free(). */
BackupJob *backup_job_start(Store *store, const char *domain, const char *xml, gsize len,
                            BackupJob *previous, GError **error);

/* backup_job_start() for a backend without a store (the daemon's, for a domain its daemon
 * does not run): @domain as loaded (@sd, full, read during the call only) instead of the
 * store's; no journal of the temporary files (a process killed mid-way leaves its
 * TARGET.part-XXXXXX files) and no guard: the caller keeps its own changes of the domain's
 * images away while the job runs. The images read are locked as qemu-img locks an image it
 * reads (live_image_hold()) until the job ends: a qemu that would write one (the domain
 * started meanwhile) fails to open it; one that writes it now refuses the job
 * (CORE_ERROR_BUSY). */
BackupJob *backup_job_start_loaded(const BackendDomain *sd, const char *domain,
                                   const char *xml, gsize len, BackupJob *previous,
                                   GError **error);

/* Asks the job to stop; returns at once (backup_job_wait() to wait). Idempotent;
 * a finished job is not changed. */
void backup_job_cancel(BackupJob *job);

/* Waits for the job's thread to end. Returns the final state. */
BackupJobState backup_job_wait(BackupJob *job);

/* Thread-safe snapshot of the progress: @done / @total bytes of guest data to copy
 * (total is known once the job has mapped the disks, 0 before), @rate bytes per
 * second since the start, @error_text (owned, NULL unless failed). Any output may be
 * NULL. */
void backup_job_status(BackupJob *job, BackupJobState *state, guint64 *done, guint64 *total,
                       double *rate, char **error_text);

/* One line (with trailing newline), for NAME/job, e.g.
 *   "backup running 104857600/1073741824 bytes 512.3 MB/s\n"
 *   "backup completed 1073741824/1073741824 bytes 498.0 MB/s\n"
 *   "backup failed 4096/1073741824 bytes 1.2 MB/s: cannot write to '...': No space left\n"
 * Fields: operation, state, done/total, "bytes", rate and unit; after ": " the
 * reason of a failure. Owned. */
char *backup_job_describe(BackupJob *job);

/* The aligned <domainbackup> (backup_format(), not internal): what
 * virDomainBackupGetXMLDesc returns. Owned. */
char *backup_job_xml(BackupJob *job);

const char *backup_job_domain(BackupJob *job);

/* TRUE while the job's thread has not ended. */
gboolean backup_job_is_running(BackupJob *job);

/* For the one-job-per-domain rule: FALSE with CORE_ERROR_BUSY "another backup job
 * is already running" (libvirt's text) when @job (may be NULL) is still running. */
gboolean backup_job_check_idle(BackupJob *job, GError **error);

/* Removes the temporary files of backups whose process died (journals in
 * SNAPSHOT_DIR/.snapfs-backups nobody holds locked; only the files they name);
 * nothing with a read-only store. @resolved and @failed (char *) receive a line per
 * journal cleaned or file that could not be removed. */
void backup_job_recover(Store *store, GPtrArray *resolved, GPtrArray *failed);

/* Cancels, waits, frees. NULL is fine. */
void backup_job_free(BackupJob *job);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BackupJob, backup_job_free)

G_END_DECLS
