/* chain.h: backing chains from the domain XML first, then probed from image headers. */
#pragma once

#include <glib.h>

#include "domain.h"
#include "qcow.h"

G_BEGIN_DECLS

#define CHAIN_MAX_DEPTH 200

typedef struct {
    StorageSource *src;     /* owned copy without ->backing */
    char *label;            /* "vda" for the top; below it "vda[N]", N libvirt's index when
                               the XML gives every such element one (a running domain's
                               definition), else the depth (1, 2, ...) */
    QcowInfo *info;         /* NULL when not local or it failed */
    char *error;            /* why this element could not be read; NULL = fine */
} ChainLayer;

typedef struct {
    GPtrArray *layers;      /* ChainLayer *, top first */
    char *error;            /* a chain-wide failure (loop, too deep, unsafe probe), shown on the
                               layer where it happened too */
    gboolean terminated;    /* TRUE: the base is known to have no backing file */
} Chain;

void chain_free(Chain *chain);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Chain, chain_free)

/* Resolves the chain of disk @target whose top is @top: follows the XML's
 * <backingStore> elements, stops at a terminator, probes headers where the XML
 * stops (libvirt's rules, virStorageSourceGetMetadataRecurse: top format from
 * <driver type>, backing format from the parent's header, probed format refused when that image
 * has its own backing file, depth 200, loops, relative names). Never fails as a
 * whole: per-element problems land in ChainLayer.error. Network sources are listed,
 * never opened. */
Chain *chain_resolve(const StorageSource *top, const char *target);

/* Checks what another program (qemu-img) would open given image @path: the image and, from
 * the headers, every backing file below it must be outside the snapfs mount and regular files
 * or block devices. A missing or unreadable element ends the check with TRUE (that program
 * reports it); a refusal is an error naming the element. */
gboolean chain_check_outside(const char *path, GError **error);

/* The chain as nested <backingStore> XML under the disk (for disks/vda.xml). */
StorageSource *chain_to_source(const Chain *chain);

G_END_DECLS
