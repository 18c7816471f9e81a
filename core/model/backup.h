/* backup.h: the <domainbackup> model: parse, align against a domain, format. */
#pragma once

#include <glib.h>

#include "domain.h"

G_BEGIN_DECLS

typedef enum { BACKUP_MODE_PUSH = 0, BACKUP_MODE_PULL } BackupMode;
typedef enum { BACKUP_DISK_MODE_DEFAULT = 0, BACKUP_DISK_MODE_FULL,
               BACKUP_DISK_MODE_INCREMENTAL } BackupDiskMode;

typedef struct {
    char *name;
    gboolean backup;          /* backup='yes' (default) / 'no' */
    int backup_set;           /* 1 when backup= was given (formatting keeps it) */
    BackupDiskMode backupmode;
    char *incremental;
    char *exportname;
    char *exportbitmap;
    char *state;              /* internal only */
    StorageSource *store;     /* target (push) or scratch (pull): type, path, format; */
    char *store_extra;        /* <seclabel>/<encryption> children of the store, serialised verbatim */
} BackupDiskDef;

typedef struct {
    BackupMode mode;
    char *incremental;
    gboolean has_server;
    char *server_transport;   /* tcp (default) | unix */
    char *server_name;
    char *server_port;
    char *server_socket;
    char *server_tls;         /* yes|no|NULL */
    GPtrArray *disks;         /* BackupDiskDef * */
    char *tls_alias;          /* internal only: <privateData><objects><TLSx509 alias=> */
    char *tls_secret_alias;   /* internal only: <secret type='tlskey' alias=> */
} BackupDef;

BackupDef *backup_def_new(void);
void backup_def_free(BackupDef *def);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BackupDef, backup_def_free)

/* virDomainBackupDefParseString: validates against domainbackup.rng first when
 * @rng_dir is non-NULL (as the public API always does), then libvirt's <domainbackup> rules.
 * Errors are CORE_ERROR_PARSE / CORE_ERROR_INVALID with libvirt's texts. */
BackupDef *backup_parse(const char *buf, gsize len, const char *rng_dir, GError **error);

/* virDomainBackupAlignDisks: unlisted disks, default backupmode, default target
 * names (disk path + '.' + @suffix). */
gboolean backup_align_disks(BackupDef *def, const DomainDef *dom, const char *suffix,
                            GError **error);

/* Formats @def as virDomainBackupDefFormat: <domainbackup mode=>, <incremental>,
 * <server>, <disks>; with @internal also disk state=/index= and <privateData>.
 * Owned, trailing newline. Cannot fail. */
char *backup_format(const BackupDef *def, gboolean internal);

typedef enum {
    BACKUP_PARSE_INTERNAL = 1 << 0,   /* status XML: no RNG, state= (required), index=,
                                       * <privateData> aliases */
} BackupParseFlags;

/* backup_parse() with @flags (BackupParseFlags). BACKUP_PARSE_INTERNAL never
 * validates against the RNG, as libvirt's status parse. */
BackupDef *backup_parse_flags(const char *buf, gsize len, const char *rng_dir, guint flags,
                              GError **error);

BackupDiskDef *backup_disk_def_new(void);
void backup_disk_def_free(BackupDiskDef *disk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BackupDiskDef, backup_disk_def_free)

G_END_DECLS
