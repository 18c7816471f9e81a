/* testcmd.h: a shell command a unit test needs to succeed (qemu-img, mkstore.sh). */
#pragma once

#include <glib.h>

/* Runs @cmd (split as a shell would, not run by one) and asserts it exits 0. */
static inline void
test_cmd(const char *cmd)
{
    g_autoptr(GError) error = NULL;
    int status = -1;

    g_spawn_command_line_sync(cmd, NULL, NULL, &status, &error);
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}
