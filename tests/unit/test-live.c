/* test-live.c: domain states from status files, qemu's image locks and daemon detection,
 * against real qemu processes, real sockets and real lock holders. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testcmd.h"
#include "error.h"
#include "live.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static char *
tmpdir(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("snapfs-live-XXXXXX", &error);

    g_assert_no_error(error);
    return dir;
}

static void
rm_rf(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

    g_assert_cmpint(system(cmd), ==, 0);
}

static void
write_file(const char *path, const char *text)
{
    g_autoptr(GError) error = NULL;

    g_file_set_contents(path, text, -1, &error);
    g_assert_no_error(error);
}

/* A qemu started for domain @guest (-name guest=...), CPUs stopped, no machine, no disk. */
static GPid
spawn_qemu(const char *name_arg, GSpawnChildSetupFunc setup, gpointer data)
{
    const char *argv[] = { "qemu-system-x86_64", "-name", name_arg, "-machine", "none", "-S",
                           "-display", "none", "-nodefaults", "-monitor", "none", "-serial",
                           "none", NULL };
    g_autoptr(GError) error = NULL;
    GPid pid = 0;

    g_spawn_async(NULL, (char **)argv, NULL,
                  G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
                  G_SPAWN_STDERR_TO_DEV_NULL, setup, data, &pid, &error);
    g_assert_no_error(error);   /* scripts/deps.sh installs qemu-system-x86 */
    return pid;
}

static void
stop(GPid pid)
{
    int status;

    kill(pid, SIGTERM);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
}

/* A pid that no process has: a child that exited and was reaped. */
static pid_t
dead_pid(void)
{
    pid_t pid = fork();
    int status;

    g_assert_cmpint(pid, >=, 0);
    if (pid == 0)
        _exit(0);
    g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
    return pid;
}

/* Waits until qemu's command line is in /proc (exec done), at most 10 s. */
static void
wait_exec(GPid pid, const char *name)
{
    for (int i = 0; i < 1000 && !live_pid_is_qemu_of(pid, name); i++)
        g_usleep(10000);
}

/* ---- states -------------------------------------------------------------------------------- */

static void
test_state_names(void)
{
    g_assert_cmpstr(live_state_name(LIVE_STATE_SHUTOFF), ==, "shut off");
    g_assert_cmpstr(live_state_name(LIVE_STATE_RUNNING), ==, "running");
    g_assert_cmpstr(live_state_name(LIVE_STATE_PAUSED), ==, "paused");
    g_assert_cmpstr(live_state_name(LIVE_STATE_BLOCKED), ==, "idle");
    g_assert_cmpstr(live_state_name(LIVE_STATE_SHUTDOWN), ==, "in shutdown");
    g_assert_cmpstr(live_state_name(LIVE_STATE_CRASHED), ==, "crashed");
    g_assert_cmpstr(live_state_name(LIVE_STATE_PMSUSPENDED), ==, "pmsuspended");
}

static void
test_qemu_name(void)
{
    GPid q1 = spawn_qemu("guest=a,,b,debug-threads=on", NULL, NULL);
    GPid q2 = spawn_qemu("old", NULL, NULL);

    wait_exec(q1, "a,b");
    wait_exec(q2, "old");
    g_assert_true(live_pid_is_qemu_of(q1, "a,b"));   /* libvirt doubles a ',' in the name */
    g_assert_false(live_pid_is_qemu_of(q1, "a"));
    g_assert_false(live_pid_is_qemu_of(q1, "a,,b"));
    g_assert_true(live_pid_is_qemu_of(q2, "old"));   /* -name NAME: "guest" is implied */
    g_assert_false(live_pid_is_qemu_of(getpid(), "a,b"));   /* alive, not qemu */
    g_assert_false(live_pid_is_qemu_of(dead_pid(), "a,b"));
    g_assert_false(live_pid_is_qemu_of(0, "a,b"));
    stop(q1);
    stop(q2);
    g_assert_false(live_pid_is_qemu_of(q1, "a,b"));
}

static void
status_files(const char *run, const char *name, const char *state, pid_t status_pid,
             const char *pidfile)
{
    g_autofree char *xml = g_strdup_printf("%s/%s.xml", run, name);
    g_autofree char *pidpath = g_strdup_printf("%s/%s.pid", run, name);
    g_autofree char *text = NULL;

    /* what libvirt 9.0 writes, shortened: a comment, then <domstatus state= reason= pid=> */
    text = g_strdup_printf("<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE.\n-->\n"
                           "<domstatus state='%s' reason='user' pid='%d'>\n"
                           "  <domain type='qemu' id='1'>\n    <name>%s</name>\n  </domain>\n"
                           "</domstatus>\n", state, (int)status_pid, name);
    write_file(xml, text);
    if (pidfile)
        write_file(pidpath, pidfile);
    else
        g_unlink(pidpath);
}

static void
test_status(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *run = g_build_filename(dir, "libvirt", "qemu", "run", NULL);
    g_autoptr(LiveHost) host = live_host_new(dir, run);
    g_autofree char *qpid = NULL;
    g_autofree char *mine = g_strdup_printf("%d", (int)getpid());
    g_autofree char *dead = g_strdup_printf("%d\n", (int)dead_pid());
    GPid q = spawn_qemu("guest=vm,debug-threads=on", NULL, NULL);
    GPid other = spawn_qemu("guest=other,debug-threads=on", NULL, NULL);
    g_autofree char *opid = g_strdup_printf("%d", (int)other);
    g_autofree char *xml = g_build_filename(run, "vm.xml", NULL);
    g_autofree char *pidpath = g_build_filename(run, "vm.pid", NULL);
    pid_t pid = -1;

    g_assert_cmpint(g_mkdir_with_parents(run, 0755), ==, 0);
    g_assert_cmpint(host->layout, ==, LIVE_LAYOUT_SESSION);
    wait_exec(q, "vm");
    wait_exec(other, "other");
    qpid = g_strdup_printf("%d", (int)q);

    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_SHUTOFF);   /* no files */
    g_assert_cmpint(pid, ==, 0);
    status_files(run, "vm", "running", q, qpid);
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_RUNNING);
    g_assert_cmpint(pid, ==, q);
    status_files(run, "vm", "paused", q, qpid);
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_PAUSED);
    status_files(run, "vm", "pmsuspended", q, qpid);
    g_assert_cmpint(live_domain_state(host, "vm", NULL), ==, LIVE_STATE_PMSUSPENDED);
    /* the status file's pid is enough without a pid file */
    status_files(run, "vm", "paused", q, NULL);
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_PAUSED);
    g_assert_cmpint(pid, ==, q);
    /* a live qemu with an unreadable status file: running */
    write_file(xml, "<domstatus");
    write_file(pidpath, qpid);
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_RUNNING);

    /* stale status files: not trusted */
    status_files(run, "vm", "running", getpid(), mine);      /* alive, but not qemu */
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_SHUTOFF);
    g_assert_cmpint(pid, ==, 0);
    status_files(run, "vm", "running", 0, dead);             /* no such process */
    g_assert_cmpint(live_domain_state(host, "vm", NULL), ==, LIVE_STATE_SHUTOFF);
    status_files(run, "vm", "paused", other, opid);          /* another domain's qemu */
    g_assert_cmpint(live_domain_state(host, "vm", NULL), ==, LIVE_STATE_SHUTOFF);
    status_files(run, "vm", "running", q, "garbage\n");
    g_assert_cmpint(live_domain_state(host, "vm", NULL), ==, LIVE_STATE_RUNNING);
    stop(q);                                                 /* the qemu went away */
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_SHUTOFF);
    g_assert_cmpint(pid, ==, 0);
    g_assert_cmpint(live_domain_state(host, "../vm", NULL), ==, LIVE_STATE_SHUTOFF);
    stop(other);
    rm_rf(dir);
}

/* Runs in the child before exec: locks the pid file the way libvirt's virPidFileAcquire does
 * (a POSIX write lock on byte 0, inherited by qemu through exec). */
static void
lock_pidfile(gpointer data)
{
    int fd = open(data, O_RDWR | O_CREAT, 0644);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

    if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
        _exit(111);
}

static void
test_status_lock_holder(void)
{
    g_autofree char *dir = tmpdir();
    g_autoptr(LiveHost) host = live_host_new(dir, dir);
    g_autofree char *pidpath = g_build_filename(dir, "vm.pid", NULL);
    GPid q = spawn_qemu("guest=vm", lock_pidfile, pidpath);
    pid_t pid = 0;

    wait_exec(q, "vm");
    /* the pid file is empty and there is no status file: the lock's holder is the qemu */
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_RUNNING);
    g_assert_cmpint(pid, ==, q);
    g_assert_cmpint(host->layout, ==, LIVE_LAYOUT_OTHER);
    stop(q);
    g_assert_cmpint(live_domain_state(host, "vm", &pid), ==, LIVE_STATE_SHUTOFF);
    rm_rf(dir);
}

/* ---- images -------------------------------------------------------------------------------- */

typedef struct {
    GPid pid;
    int in;   /* qemu-io's stdin: closing it ends qemu-io */
} QemuIo;

/* qemu-io holding @path open (read-only with @ro), waiting for commands on a pipe. */
static QemuIo
spawn_qemu_io(const char *path, gboolean ro)
{
    const char *argv[] = { "qemu-io", "-f", "qcow2", ro ? "-r" : path, ro ? path : NULL, NULL };
    g_autoptr(GError) error = NULL;
    QemuIo q = { 0, -1 };

    g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                             G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                             NULL, NULL, &q.pid, &q.in, NULL, NULL, &error);
    g_assert_no_error(error);
    return q;
}

static void
stop_qemu_io(QemuIo *q)
{
    int status;

    close(q->in);
    g_assert_cmpint(waitpid(q->pid, &status, 0), ==, q->pid);
    g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* live_image_use() of @path once it is no longer FREE (qemu-io took its locks), at most 10 s. */
static LiveImageUse
wait_locked(const char *path)
{
    LiveImageUse use = LIVE_IMAGE_FREE;

    for (int i = 0; i < 1000; i++) {
        g_autoptr(GError) error = NULL;

        g_assert_true(live_image_use(path, &use, &error));
        g_assert_no_error(error);
        if (use != LIVE_IMAGE_FREE)
            break;
        g_usleep(10000);
    }
    return use;
}

static LiveImageUse
use_of(const char *path)
{
    g_autoptr(GError) error = NULL;
    LiveImageUse use = LIVE_IMAGE_FREE;

    g_assert_true(live_image_use(path, &use, &error));
    g_assert_no_error(error);
    return use;
}

static void
test_image_locks(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *base = g_build_filename(dir, "base.qcow2", NULL);
    g_autofree char *top = g_build_filename(dir, "top.qcow2", NULL);
    g_autofree char *lone = g_build_filename(dir, "lone.qcow2", NULL);
    g_autofree char *cmd = g_strdup_printf("sh -c 'cd %s && qemu-img create -q -f qcow2 "
                                           "base.qcow2 1M && qemu-img create -q -f qcow2 -b "
                                           "base.qcow2 -F qcow2 top.qcow2 && qemu-img create -q "
                                           "-f qcow2 lone.qcow2 1M'", dir);
    g_autoptr(GError) error = NULL;
    QemuIo writer;
    QemuIo reader;

    test_cmd(cmd);
    g_assert_cmpint(use_of(top), ==, LIVE_IMAGE_FREE);
    writer = spawn_qemu_io(top, FALSE);
    reader = spawn_qemu_io(lone, TRUE);
    g_assert_cmpint(wait_locked(top), ==, LIVE_IMAGE_WRITTEN);     /* byte 101 */
    g_assert_cmpint(wait_locked(lone), ==, LIVE_IMAGE_USED);       /* 100, 201: read-only */
    g_assert_cmpint(wait_locked(base), ==, LIVE_IMAGE_USED);       /* the writer's backing file */

    g_assert_false(live_image_check(top, LIVE_IMAGE_FREE, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "a running qemu writes it"));
    g_assert_nonnull(strstr(error->message, top));
    g_clear_error(&error);
    g_assert_false(live_image_check(top, LIVE_IMAGE_USED, &error));   /* its bytes change */
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_clear_error(&error);
    g_assert_false(live_image_check(base, LIVE_IMAGE_FREE, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_assert_nonnull(strstr(error->message, "has it open"));
    g_clear_error(&error);
    g_assert_true(live_image_check(base, LIVE_IMAGE_USED, &error));   /* read: fine */
    g_assert_no_error(error);

    /* probing takes no lock: qemu-img still gets its own after many probes */
    for (int i = 0; i < 100; i++)
        use_of(lone);
    stop_qemu_io(&writer);
    stop_qemu_io(&reader);
    g_assert_cmpint(use_of(top), ==, LIVE_IMAGE_FREE);
    g_assert_cmpint(use_of(base), ==, LIVE_IMAGE_FREE);
    g_assert_cmpint(use_of(lone), ==, LIVE_IMAGE_FREE);
    rm_rf(dir);
}

static void
test_image_kinds(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *fifo = g_build_filename(dir, "fifo", NULL);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    g_autoptr(GError) error = NULL;
    LiveImageUse use = LIVE_IMAGE_WRITTEN;

    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_assert_false(live_image_use(fifo, &use, &error));          /* refused, without waiting */
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_true(live_image_check(fifo, LIVE_IMAGE_FREE, &error));   /* the operation says */
    g_assert_no_error(error);
    g_assert_false(live_image_use(dir, &use, &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(live_image_use(missing, &use, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    g_clear_error(&error);
    g_assert_true(live_image_check(missing, LIVE_IMAGE_FREE, &error));   /* nothing uses it */
    g_assert_no_error(error);
    rm_rf(dir);
}

/* ---- the daemon ---------------------------------------------------------------------------- */

/* A listening unix socket at @path. */
static int
listen_at(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpuint(strlen(path), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, path);
    g_unlink(path);                           /* a stale socket file of an earlier listener */
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    return fd;
}

/* A child that holds a POSIX lock on @path's first byte (as libvirtd on its pid file) until
 * its pipe is closed. Returns its pid; *@hold is the pipe's write end. */
static pid_t
lock_holder(const char *path, int *hold)
{
    int p[2];
    int ready[2];
    pid_t pid;
    char c;

    g_assert_cmpint(pipe(p), ==, 0);
    g_assert_cmpint(pipe(ready), ==, 0);
    pid = fork();
    g_assert_cmpint(pid, >=, 0);
    if (pid == 0) {
        int fd = open(path, O_RDWR | O_CREAT, 0644);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        close(p[1]);
        close(ready[0]);
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1 || read(p[0], &c, 1) < 0)
            _exit(1);
        _exit(0);
    }
    close(p[0]);
    close(ready[1]);
    g_assert_cmpint(read(ready[0], &c, 1), ==, 1);
    close(ready[0]);
    *hold = p[1];
    return pid;
}

static void
test_daemon_session(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *cfg = g_build_filename(dir, "config", NULL);
    g_autofree char *rt = g_build_filename(dir, "run", NULL);
    g_autofree char *config_dir = g_build_filename(cfg, "libvirt", "qemu", NULL);
    g_autofree char *libvirt = g_build_filename(rt, "libvirt", NULL);
    g_autofree char *sock = g_build_filename(libvirt, "libvirt-sock", NULL);
    g_autofree char *pidfile = g_build_filename(libvirt, "libvirtd.pid", NULL);
    g_autofree char *expect_run = g_build_filename(libvirt, "qemu", "run", NULL);
    g_autofree char *uri = NULL;
    g_autofree char *mine = g_strdup_printf("%d\n", (int)getpid());
    g_autofree char *sock_uri = g_strdup_printf("qemu+unix:///session?socket=%s", sock);
    g_autoptr(LiveHost) host = NULL;
    pid_t pid = -1;
    pid_t holder;
    int hold;
    int lfd;
    int status;

    g_assert_cmpint(g_mkdir_with_parents(config_dir, 0755), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(libvirt, 0700), ==, 0);
    g_setenv("XDG_CONFIG_HOME", cfg, TRUE);
    g_setenv("XDG_RUNTIME_DIR", rt, TRUE);
    host = live_host_new(config_dir, NULL);   /* $XDG_CONFIG_HOME/libvirt/qemu: session */
    g_assert_cmpint(host->layout, ==, LIVE_LAYOUT_SESSION);
    g_assert_cmpstr(host->run_dir, ==, expect_run);
    g_assert_cmpstr(host->libvirt_dir, ==, libvirt);
    g_assert_true(host->default_uri);

    g_assert_false(live_host_daemon(host, &uri, &pid));
    g_assert_null(uri);

    lfd = listen_at(sock);                    /* a socket that answers */
    g_assert_true(live_host_daemon(host, &uri, &pid));
    g_assert_cmpstr(uri, ==, "qemu:///session");
    g_assert_cmpint(pid, ==, 0);
    g_clear_pointer(&uri, g_free);
    close(lfd);                               /* a stale socket file: nobody listens */
    g_assert_true(g_file_test(sock, G_FILE_TEST_EXISTS));
    g_assert_false(live_host_daemon(host, &uri, &pid));

    holder = lock_holder(pidfile, &hold);     /* a locked pid file */
    g_assert_true(live_host_daemon(host, &uri, &pid));
    g_assert_cmpstr(uri, ==, "qemu:///session");
    g_assert_cmpint(pid, ==, holder);
    g_clear_pointer(&uri, g_free);
    close(hold);
    g_assert_cmpint(waitpid(holder, &status, 0), ==, holder);
    g_assert_false(live_host_daemon(host, &uri, &pid));   /* the holder is gone */

    write_file(pidfile, mine);                /* alive, but not libvirtd */
    g_assert_false(live_host_daemon(host, &uri, &pid));

    /* the same store seen by a process with another runtime directory: a socket URI */
    g_setenv("XDG_RUNTIME_DIR", dir, TRUE);
    g_clear_pointer(&host, live_host_free);
    host = live_host_new(config_dir, expect_run);
    g_assert_false(host->default_uri);
    lfd = listen_at(sock);
    g_assert_true(live_host_daemon(host, &uri, &pid));
    g_assert_cmpstr(uri, ==, sock_uri);
    g_clear_pointer(&uri, g_free);
    close(lfd);

    g_unsetenv("XDG_CONFIG_HOME");
    g_unsetenv("XDG_RUNTIME_DIR");
    rm_rf(dir);
}

static void
test_layouts(void)
{
    g_autofree char *dir = tmpdir();
    g_autofree char *sys_run = g_build_filename(dir, "run", "libvirt", "qemu", NULL);
    g_autofree char *sys_lv = g_build_filename(dir, "run", "libvirt", NULL);
    g_autofree char *sys_pid = g_build_filename(dir, "run", NULL);
    g_autofree char *sock = g_build_filename(sys_lv, "virtqemud-sock", NULL);
    g_autofree char *uri = NULL;
    g_autofree char *sock_uri = g_strdup_printf("qemu+unix:///system?socket=%s", sock);
    g_autoptr(LiveHost) host = NULL;
    g_autoptr(LiveHost) etc = live_host_new("/etc/libvirt/qemu", NULL);
    g_autoptr(LiveHost) other = live_host_new(dir, NULL);
    pid_t pid;
    int lfd;

    g_assert_cmpint(etc->layout, ==, LIVE_LAYOUT_SYSTEM);
    g_assert_cmpstr(etc->run_dir, ==, "/run/libvirt/qemu");
    g_assert_cmpstr(etc->libvirt_dir, ==, "/run/libvirt");
    g_assert_cmpstr(etc->pid_dir, ==, "/run");
    g_assert_true(etc->default_uri);

    /* a store that is neither libvirt's system nor a session store: nothing is looked for */
    g_assert_cmpint(other->layout, ==, LIVE_LAYOUT_NONE);
    g_assert_null(other->run_dir);
    g_assert_false(live_host_daemon(other, &uri, &pid));
    g_assert_cmpint(live_domain_state(other, "vm", &pid), ==, LIVE_STATE_SHUTOFF);

    /* a system layout elsewhere, with a modular virtqemud */
    g_assert_cmpint(g_mkdir_with_parents(sys_run, 0755), ==, 0);
    host = live_host_new(dir, sys_run);
    g_assert_cmpint(host->layout, ==, LIVE_LAYOUT_SYSTEM);
    g_assert_cmpstr(host->libvirt_dir, ==, sys_lv);
    g_assert_cmpstr(host->pid_dir, ==, sys_pid);
    g_assert_false(host->default_uri);
    lfd = listen_at(sock);
    g_assert_true(live_host_daemon(host, &uri, &pid));
    g_assert_cmpstr(uri, ==, sock_uri);
    close(lfd);
    rm_rf(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/live/state-names", test_state_names);
    g_test_add_func("/live/qemu-name", test_qemu_name);
    g_test_add_func("/live/status", test_status);
    g_test_add_func("/live/status-lock-holder", test_status_lock_holder);
    g_test_add_func("/live/image-locks", test_image_locks);
    g_test_add_func("/live/image-kinds", test_image_kinds);
    g_test_add_func("/live/daemon-session", test_daemon_session);
    g_test_add_func("/live/layouts", test_layouts);
    return g_test_run();
}
