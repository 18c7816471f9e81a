/* users.h: who in the store uses an image file: every domain's current disks and every
 * snapshot's disks, of every domain, with their whole chains, in any directory. */
#pragma once

#include <glib.h>

#include "store.h"

G_BEGIN_DECLS

typedef enum {
    USERS_KIND_DOMAIN,     /* a disk of a domain's current definition */
    USERS_KIND_SNAPSHOT,   /* a disk of the domain a snapshot captured (its <domain>) */
    USERS_KIND_OVERLAY,    /* the overlay an external snapshot made (its <disks>) */
    USERS_KIND_FILE,       /* an image in the same directory that no domain or snapshot names */
} UsersKind;

typedef struct {
    UsersKind kind;
    char *domain;          /* NULL for FILE */
    char *snapshot;        /* SNAPSHOT and OVERLAY */
    char *disk;            /* target dev; NULL for FILE */
    char *top;             /* the image at the top of the user's chain */
    gboolean is_top;       /* the image asked about is that top itself, not below it */
} ImageUser;

void image_user_free(ImageUser *user);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ImageUser, image_user_free)

/* What users_scan() read of the store: every chain top, and each image's header
 * backing file, read once and kept by path (no descriptor is kept). */
typedef struct UsersScan UsersScan;

/* Reads every domain (light: a stat per unchanged snapshot file) and lists their
 * chain tops. Images are opened later, when users_find() needs them, each once.
 * Domains that cannot be loaded are left out. Errors: listing the domains failed. */
UsersScan *users_scan(Store *store, GError **error);
void users_scan_free(UsersScan *scan);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(UsersScan, users_scan_free)

/* Every user whose chain holds @image (compared by device and inode, so any
 * spelling or link to it counts): the XML's elements and, below each, the backing
 * files the headers name (qcow2, qcow, qed; at most CHAIN_MAX_DEPTH deep). With
 * @with_files, also the images in @image's own directory that nobody names but
 * that are built on it. Owned array of ImageUser *, in store order; empty when
 * @image does not exist. */
GPtrArray *users_find(UsersScan *scan, const char *image, gboolean with_files);

/* "domain 'other' (disk vda), snapshot 'web/s1' (disk vda, image '/x/c.qcow2') and
 * image '/x/d.qcow2'": at most 10 users, then "and N more". Owned. */
char *users_describe(const GPtrArray *users);

G_END_DECLS
