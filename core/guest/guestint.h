/* guestint.h: what the files of core/guest/ share: little-endian fields and whole reads. */
#pragma once

#include "guest.h"

static inline guint16
guest_le16(const guint8 *p)
{
    return p[0] | (guint16)p[1] << 8;
}

static inline guint32
guest_le32(const guint8 *p)
{
    return p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

static inline guint64
guest_le64(const guint8 *p)
{
    return guest_le32(p) | (guint64)guest_le32(p + 4) << 32;
}

/* Reads exactly @len bytes at @off; what lies past the end of @dev reads as zeros. */
gboolean guest_read(const GuestDev *dev, void *buf, gsize len, guint64 off, GError **error);
