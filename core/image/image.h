/* image.h: the guest-visible content of a chain from one element down: byte-exact, sparse-aware. */
#pragma once

#include <glib.h>

#include "chain.h"
#include "qcow2.h"

G_BEGIN_DECLS

typedef struct Image Image;

/* Opens layers @from .. base of @chain for reading (raw read directly, qcow2 by our
 * own reader: compressed clusters, v3 zero clusters, any cluster size, backing
 * shorter than the top, external data files), reading what qemu reads: sizes in
 * whole 512-byte sectors, CORE_ERROR_CORRUPT where qemu fails with EIO. Not
 * thread-safe; cheap to open: L1 tables are shared by every Image of the same
 * unchanged file (any thread). Errors: G_FILE_ERROR from open(), CORE_ERROR_CORRUPT,
 * CORE_ERROR_INVALID (a data file that is not a regular file or block device),
 * CORE_ERROR_UNSUPPORTED (encrypted, network layer). */
Image *image_open(const Chain *chain, guint from, GError **error);
void image_close(Image *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Image, image_close)

guint64 image_size(const Image *img);

/* Reads up to @len bytes at @offset; short only at the end. -1 with @error on failure. */
gssize image_pread(Image *img, void *buf, gsize len, guint64 offset, GError **error);

/* SEEK_DATA / SEEK_HOLE semantics over the whole chain: the next offset >= @offset
 * that is data (@data TRUE) or a hole (reads as zeros and is unallocated in every
 * layer). Returns image_size() when none. */
gboolean image_seek(Image *img, guint64 offset, gboolean data, guint64 *result, GError **error);

/* The allocation walk over layer @layer (counted from the top of @img): calls
 * @fn, in ascending order, for the guest ranges below image_size() where that
 * layer decides what the guest reads, whatever the layers below it hold: whole
 * clusters that its qcow2 entries allocate or zero, everything for a raw layer,
 * and all beyond its end (reads as zeros). CORE_ERROR_CORRUPT as reading does. */
gboolean image_layer_allocated(Image *img, guint layer, Qcow2RangeFunc fn, gpointer data,
                               GError **error);

G_END_DECLS
