/* fuzzdisk.h: a fuzzed input as a guest disk in memory, for the guest targets. */
#pragma once
#include <glib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
} FuzzDisk;

/* GuestDev's read over a FuzzDisk: past its end the disk reads short (as a truncated image). */
static inline gssize
fuzz_disk_read(gpointer data, void *buf, gsize len, guint64 off, GError **error)
{
    const FuzzDisk *d = data;

    if (off >= d->size)
        return 0;
    len = MIN(len, d->size - off);
    memcpy(buf, d->data + off, len);
    return len;
}
