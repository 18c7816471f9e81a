/* daemon.h: the libvirt daemon backend: every read and every change through a libvirt daemon's API
 * (snapfs -c URI), so that the daemon stays the one owner of its domains. */
#pragma once

#include <glib.h>

#include "backend.h"

G_BEGIN_DECLS

/* Connects to @uri (virConnectOpenAuth with libvirt's default callbacks); the error
 * carries libvirt's own message. @read_only: no change is asked of the daemon. */
Backend *daemon_backend_new(const char *uri, gboolean read_only, GError **error);

G_END_DECLS
