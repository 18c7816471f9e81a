/* live.c: domains' states from libvirt's status files, images in use from qemu's OFD locks,
 * and the libvirt daemon in charge of a store. */
#include "live.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "error.h"
#include "util.h"
#include "xmlutil.h"

/* qemu's image locks (block/file-posix.c, raw_apply_lock_bytes): for each block-layer
 * permission i (0 consistent-read, 1 write, 2 write-unchanged, 3 resize, 4 graph-mod) a
 * shared OFD lock on byte 100 + i while qemu holds the permission and on byte 200 + i while
 * it refuses to share it. Seen with qemu 7.2 (/proc/locks): the top image of a running
 * libvirt guest, of `qemu-system-x86_64 -drive`, of `qemu-io` holds 100, 101, 103, 201, 203;
 * its backing images, and an image `qemu-io -r` reads, hold 100, 201, 203. So a lock on 101
 * means "a qemu writes this image", and any lock in 100..104 or 200..204 "a qemu uses it". */
#define LIVE_LOCK_PERM_BASE 100
#define LIVE_LOCK_SHARED_BASE 200
#define LIVE_LOCK_PERM_WRITE 1
#define LIVE_LOCK_NPERMS 5

#define LIVE_MAX_CMDLINE (1024 * 1024)   /* libvirt's qemu command lines are a few KiB */
#define LIVE_MAX_PIDFILE 64

const char *
live_state_name(LiveState state)
{
    switch (state) {
    case LIVE_STATE_SHUTOFF: return "shut off";
    case LIVE_STATE_RUNNING: return "running";
    case LIVE_STATE_BLOCKED: return "idle";
    case LIVE_STATE_PAUSED: return "paused";
    case LIVE_STATE_SHUTDOWN: return "in shutdown";
    case LIVE_STATE_CRASHED: return "crashed";
    case LIVE_STATE_PMSUSPENDED: return "pmsuspended";
    }
    g_assert_not_reached();
}

void
live_host_free(LiveHost *host)
{
    if (!host)
        return;
    g_free(host->run_dir);
    g_free(host->libvirt_dir);
    g_free(host->pid_dir);
    g_free(host);
}

/* realpath() of @path, or @path made absolute when it cannot be resolved. Owned. */
static char *
live_real_path(const char *path)
{
    char *real = realpath(path, NULL);
    char *copy;

    if (!real)
        return g_canonicalize_filename(path, NULL);
    copy = g_strdup(real);   /* g_free must not free malloc's memory on every platform */
    free(real);
    return copy;
}

static gboolean
live_same_path(const char *a, const char *b)
{
    g_autofree char *ra = live_real_path(a);
    g_autofree char *rb = live_real_path(b);

    return strcmp(ra, rb) == 0;
}

/* The runtime directory of user @uid as libvirt sees it when that user runs the session
 * daemon: $XDG_RUNTIME_DIR for ourselves, else systemd's /run/user/UID. Owned. */
static char *
live_runtime_dir(uid_t uid)
{
    const char *env = g_getenv("XDG_RUNTIME_DIR");

    if (uid == geteuid() && env && g_path_is_absolute(env))
        return g_strdup(env);
    return g_strdup_printf("/run/user/%u", (unsigned)uid);
}

/* TRUE when @config_dir is the session store of its owner @uid: $XDG_CONFIG_HOME/libvirt/qemu
 * (default ~/.config) of this process when it is the owner, else ~OWNER/.config/libvirt/qemu. */
static gboolean
live_is_session_store(const char *config_dir, uid_t uid)
{
    g_autofree char *expected = NULL;

    if (uid == geteuid()) {
        const char *xdg = g_getenv("XDG_CONFIG_HOME");
        const char *home = g_getenv("HOME");

        if (xdg && g_path_is_absolute(xdg))
            expected = g_build_filename(xdg, "libvirt", "qemu", NULL);
        else if (home && g_path_is_absolute(home))
            expected = g_build_filename(home, ".config", "libvirt", "qemu", NULL);
    }
    if (!expected) {
        struct passwd pw;
        struct passwd *found = NULL;
        char buf[4096];

        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) != 0 || !found || !pw.pw_dir)
            return FALSE;
        expected = g_build_filename(pw.pw_dir, ".config", "libvirt", "qemu", NULL);
    }
    return live_same_path(config_dir, expected);
}

/* Fills the daemon's directories from the status directory's place in libvirt's layout. */
static void
live_host_set_layout(LiveHost *host)
{
    g_autofree char *base = g_path_get_basename(host->run_dir);
    g_autofree char *parent = g_path_get_dirname(host->run_dir);
    g_autofree char *parent_base = g_path_get_basename(parent);

    if (strcmp(base, "run") == 0 && strcmp(parent_base, "qemu") == 0) {
        host->layout = LIVE_LAYOUT_SESSION;      /* RT/libvirt/qemu/run */
        host->libvirt_dir = g_path_get_dirname(parent);
        host->pid_dir = g_strdup(host->libvirt_dir);
    } else if (strcmp(base, "qemu") == 0) {
        host->layout = LIVE_LAYOUT_SYSTEM;       /* RUN/libvirt/qemu */
        host->libvirt_dir = g_strdup(parent);
        host->pid_dir = g_path_get_dirname(parent);
    } else {
        host->layout = LIVE_LAYOUT_OTHER;
    }
}

LiveHost *
live_host_new(const char *config_dir, const char *run_dir)
{
    g_autoptr(LiveHost) host = g_new0(LiveHost, 1);
    struct stat st;

    if (run_dir) {
        host->run_dir = g_canonicalize_filename(run_dir, NULL);
    } else if (live_same_path(config_dir, "/etc/libvirt/qemu")) {
        host->run_dir = g_strdup("/run/libvirt/qemu");
    } else if (stat(config_dir, &st) == 0 && live_is_session_store(config_dir, st.st_uid)) {
        g_autofree char *rt = live_runtime_dir(st.st_uid);

        host->run_dir = g_build_filename(rt, "libvirt", "qemu", "run", NULL);
    } else {
        return g_steal_pointer(&host);           /* LIVE_LAYOUT_NONE */
    }
    live_host_set_layout(host);
    if (host->layout == LIVE_LAYOUT_SYSTEM) {
        host->default_uri = live_same_path(host->libvirt_dir, "/run/libvirt");
    } else if (host->layout == LIVE_LAYOUT_SESSION) {
        const char *env = g_getenv("XDG_RUNTIME_DIR");
        g_autofree char *rt = g_path_get_dirname(host->libvirt_dir);

        host->default_uri = env && g_path_is_absolute(env) && live_same_path(rt, env);
    }
    return g_steal_pointer(&host);
}

/* ---- processes ------------------------------------------------------------------------------ */

/* The holder of a POSIX lock on @fd's first byte (libvirt's pid files are locked there by the
 * process they name, also across pid namespaces: the kernel translates the pid), else 0. */
static pid_t
live_lock_holder(int fd)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

    if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
        return 0;
    return fl.l_pid > 0 ? fl.l_pid : 0;
}

/* Reads a pid file: the pid it names (0 when none) and its lock holder (0 when none).
 * FALSE when it cannot be read (a missing file is not logged). */
static gboolean
live_pidfile_read(const char *path, pid_t *named, pid_t *holder)
{
    g_auto(CoreFd) fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    char buf[LIVE_MAX_PIDFILE + 1];
    struct stat st;
    gssize n;
    guint64 v = 0;
    g_autoptr(GError) error = NULL;

    *named = *holder = 0;
    if (fd < 0) {
        if (errno != ENOENT)
            g_debug("cannot open '%s': %s", path, g_strerror(errno));
        return FALSE;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        g_debug("'%s' is not a regular file", path);
        return FALSE;
    }
    if ((n = util_pread_full(fd, path, buf, LIVE_MAX_PIDFILE, 0, &error)) < 0) {
        g_debug("%s", error->message);
        return FALSE;
    }
    buf[n] = '\0';
    g_strstrip(buf);
    if (g_ascii_string_to_unsigned(buf, 10, 1, G_MAXINT32, &v, NULL))
        *named = (pid_t)v;
    *holder = live_lock_holder(fd);
    return TRUE;
}

/* /proc/PID/cmdline as a vector (owned), NULL when the process is gone or a zombie. */
static char **
live_cmdline(pid_t pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
    g_autofree char *buf = NULL;
    g_autoptr(GPtrArray) argv = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;

    if (!util_file_read_limited(path, LIVE_MAX_CMDLINE, &buf, &len, &error)) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))   /* gone */
            g_debug("%s", error->message);
        return NULL;
    }
    if (len == 0)
        return NULL;
    argv = g_ptr_array_new();
    for (gsize off = 0; off < len;) {
        gsize n = strnlen(buf + off, len - off);

        g_ptr_array_add(argv, g_strndup(buf + off, n));
        off += n + 1;
    }
    g_ptr_array_add(argv, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&argv), FALSE);
}

/* The guest name in qemu's -name argument ("guest=NAME,debug-threads=on", or "NAME,..." where
 * the first part without a key is the implied "guest"), with QEMU's option escaping undone (a
 * ',' in a value is written ",,"). Owned, NULL when there is none. */
static char *
live_qemu_name(const char *arg)
{
    const char *p = arg;

    for (gboolean first = TRUE; *p; first = FALSE) {
        g_autoptr(GString) part = g_string_new(NULL);

        while (*p && !(p[0] == ',' && p[1] != ',')) {
            if (p[0] == ',')
                p++;                           /* ",," is one ',' */
            g_string_append_c(part, *p++);
        }
        if (*p)
            p++;                               /* the separating ',' */
        if (g_str_has_prefix(part->str, "guest="))
            return g_strdup(part->str + strlen("guest="));
        if (first && !strchr(part->str, '='))
            return g_string_free(g_steal_pointer(&part), FALSE);
    }
    return NULL;
}

gboolean
live_pid_is_qemu_of(pid_t pid, const char *name)
{
    g_auto(GStrv) argv = NULL;
    g_autofree char *prog = NULL;

    if (pid <= 0 || !(argv = live_cmdline(pid)) || !argv[0])
        return FALSE;
    prog = g_path_get_basename(argv[0]);
    if (!g_str_has_prefix(prog, "qemu"))       /* qemu-system-x86_64, qemu-kvm ... */
        return FALSE;
    for (guint i = 1; argv[i] && argv[i + 1]; i++) {
        if (strcmp(argv[i], "-name") == 0) {
            g_autofree char *guest = live_qemu_name(argv[i + 1]);

            return guest && strcmp(guest, name) == 0;
        }
    }
    return FALSE;
}

static LiveState
live_state_parse(const char *word)
{
    static const struct {
        const char *word;
        LiveState state;
    } states[] = {
        { "running", LIVE_STATE_RUNNING },
        { "blocked", LIVE_STATE_BLOCKED },
        { "paused", LIVE_STATE_PAUSED },
        { "shutdown", LIVE_STATE_SHUTDOWN },
        { "shutoff", LIVE_STATE_SHUTDOWN },   /* qemu still lives: on its way out */
        { "crashed", LIVE_STATE_CRASHED },
        { "pmsuspended", LIVE_STATE_PMSUSPENDED },
    };

    for (guint i = 0; word && i < G_N_ELEMENTS(states); i++)
        if (strcmp(word, states[i].word) == 0)
            return states[i].state;
    return LIVE_STATE_RUNNING;                 /* qemu lives; "nostate" or unknown */
}

/* The root of RUN_DIR/NAME.xml: <domstatus state='paused' reason='user' pid='1234'>. */
static gboolean
live_status_read(const char *path, char **state, pid_t *pid)
{
    g_autofree char *buf = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *pid_text = NULL;
    guint64 v = 0;
    gsize len = 0;

    *state = NULL;
    *pid = 0;
    if (!util_file_read_limited(path, XMLUTIL_MAX_DOC, &buf, &len, &error) ||
        !(doc = xmlutil_read(buf, len, "domstatus", &error))) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            g_debug("status file: %s", error->message);
        return FALSE;
    }
    *state = xmlutil_prop(xmlDocGetRootElement(doc), "state");
    pid_text = xmlutil_prop(xmlDocGetRootElement(doc), "pid");
    if (pid_text && g_ascii_string_to_unsigned(pid_text, 10, 1, G_MAXINT32, &v, NULL))
        *pid = (pid_t)v;
    return TRUE;
}

static gboolean
live_name_is_file_name(const char *name)
{
    return *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

LiveState
live_domain_state(const LiveHost *host, const char *name, pid_t *pid)
{
    g_autofree char *xml_path = NULL;
    g_autofree char *pid_path = NULL;
    g_autofree char *state = NULL;
    pid_t candidates[3] = { 0, 0, 0 };   /* pid file's lock holder, its content, status pid */
    pid_t found = 0;
    gboolean have_status;

    if (pid)
        *pid = 0;
    if (!host->run_dir || !live_name_is_file_name(name))
        return LIVE_STATE_SHUTOFF;
    xml_path = g_strdup_printf("%s/%s.xml", host->run_dir, name);
    pid_path = g_strdup_printf("%s/%s.pid", host->run_dir, name);
    live_pidfile_read(pid_path, &candidates[1], &candidates[0]);
    have_status = live_status_read(xml_path, &state, &candidates[2]);
    for (guint i = 0; i < G_N_ELEMENTS(candidates) && !found; i++)
        if (live_pid_is_qemu_of(candidates[i], name))
            found = candidates[i];
    if (!found) {
        if (candidates[0] || candidates[1] || candidates[2])
            g_debug("status of '%s' names no live qemu of it: shut off", name);
        return LIVE_STATE_SHUTOFF;
    }
    if (pid)
        *pid = found;
    return have_status ? live_state_parse(state) : LIVE_STATE_RUNNING;
}

/* ---- the daemon ---------------------------------------------------------------------------- */

static const char *const live_daemons[] = { "libvirtd", "virtqemud" };

/* TRUE when @pid is alive and its command is @daemon. */
static gboolean
live_pid_is(pid_t pid, const char *daemon)
{
    g_autofree char *path = g_strdup_printf("/proc/%d/comm", (int)pid);
    g_autofree char *comm = NULL;

    if (pid <= 0 || !g_file_get_contents(path, &comm, NULL, NULL))
        return FALSE;
    g_strchomp(comm);
    return strcmp(comm, daemon) == 0;
}

/* TRUE when a process accepts connections on the unix socket @path. Non-blocking: a full
 * backlog (EAGAIN) still means a listener; nothing is sent. */
static gboolean
live_socket_answers(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    g_auto(CoreFd) fd = -1;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        g_debug("socket path '%s' is too long to connect to", path);
        return FALSE;
    }
    strcpy(addr.sun_path, path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
        return FALSE;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 || errno == EAGAIN)
        return TRUE;
    if (errno != ENOENT && errno != ECONNREFUSED)
        g_debug("cannot connect to '%s': %s", path, g_strerror(errno));
    return FALSE;
}

/* The URI that reaches the daemon listening on @socket_path. Owned. */
static char *
live_host_uri(const LiveHost *host, const char *socket_path)
{
    const char *mode = host->layout == LIVE_LAYOUT_SYSTEM ? "system" : "session";
    g_autofree char *escaped = NULL;

    if (host->default_uri)
        return g_strdup_printf("qemu:///%s", mode);
    escaped = g_uri_escape_string(socket_path, "/", FALSE);
    return g_strdup_printf("qemu+unix:///%s?socket=%s", mode, escaped);
}

gboolean
live_host_daemon(const LiveHost *host, char **uri, pid_t *pid)
{
    if (uri)
        *uri = NULL;
    if (pid)
        *pid = 0;
    if (!host->libvirt_dir)
        return FALSE;
    /* The monolithic libvirtd first: qemu:///system and qemu:///session reach it through
     * libvirt-sock; a modular virtqemud listens on virtqemud-sock. */
    for (guint i = 0; i < G_N_ELEMENTS(live_daemons); i++) {
        const char *daemon = live_daemons[i];
        g_autofree char *pid_name = g_strconcat(daemon, ".pid", NULL);
        g_autofree char *pid_path = g_build_filename(host->pid_dir, pid_name, NULL);
        g_autofree char *sock_name = g_strconcat(i == 0 ? "libvirt" : daemon, "-sock", NULL);
        g_autofree char *sock_path = g_build_filename(host->libvirt_dir, sock_name, NULL);
        pid_t named = 0;
        pid_t holder = 0;
        pid_t alive = 0;

        if (live_pidfile_read(pid_path, &named, &holder))
            alive = holder ? holder : live_pid_is(named, daemon) ? named : 0;
        if (alive || live_socket_answers(sock_path)) {
            if (uri)
                *uri = live_host_uri(host, sock_path);
            if (pid)
                *pid = alive;
            return TRUE;
        }
    }
    return FALSE;
}

/* ---- images -------------------------------------------------------------------------------- */

/* TRUE when another open file description holds an OFD lock on a byte in [@start, @start+@len). */
static gboolean
live_ofd_locked(int fd, off_t start, off_t len, GError **error, const char *path)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

    if (fcntl(fd, F_OFD_GETLK, &fl) < 0) {
        int errsv = errno;

        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                    "cannot probe the locks of '%s': %s", path, g_strerror(errsv));
        return FALSE;
    }
    return fl.l_type != F_UNLCK;
}

gboolean
live_image_use(const char *path, LiveImageUse *use, GError **error)
{
    g_auto(CoreFd) fd = util_image_open(path, O_RDONLY, NULL, error);   /* never a FIFO */
    GError *probe_error = NULL;

    if (fd < 0)
        return FALSE;
    if (live_ofd_locked(fd, LIVE_LOCK_PERM_BASE + LIVE_LOCK_PERM_WRITE, 1, &probe_error, path)) {
        *use = LIVE_IMAGE_WRITTEN;
    } else if (!probe_error &&
               (live_ofd_locked(fd, LIVE_LOCK_PERM_BASE, LIVE_LOCK_NPERMS, &probe_error, path) ||
                (!probe_error && live_ofd_locked(fd, LIVE_LOCK_SHARED_BASE, LIVE_LOCK_NPERMS,
                                                 &probe_error, path)))) {
        *use = LIVE_IMAGE_USED;
    } else if (!probe_error) {
        *use = LIVE_IMAGE_FREE;
    }
    if (probe_error) {
        g_propagate_error(error, probe_error);
        return FALSE;
    }
    return TRUE;
}

/* CORE_ERROR_BUSY: @path is used by another process as @use says. */
static void
live_image_busy(const char *path, LiveImageUse use, GError **error)
{
    if (use == LIVE_IMAGE_WRITTEN)
        g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                    "image '%s' is in use: a running qemu writes it (it holds qemu's write lock)",
                    path);
    else
        g_set_error(error, CORE_ERROR, CORE_ERROR_BUSY,
                    "image '%s' is in use: a running qemu has it open (it holds qemu's locks)",
                    path);
}

gboolean
live_image_check(const char *path, LiveImageUse allowed, GError **error)
{
    g_autoptr(GError) local = NULL;
    LiveImageUse use = LIVE_IMAGE_FREE;

    if (!live_image_use(path, &use, &local)) {
        /* Missing, not an image, inside the mount...: nobody can be using it as an image,
         * and whoever opens it next says why it cannot. */
        g_debug("not probed: %s: %s", path, local->message);
        return TRUE;
    }
    if (use <= allowed)
        return TRUE;
    live_image_busy(path, use, error);
    return FALSE;
}

int
live_image_hold(const char *path, GError **error)
{
    g_auto(CoreFd) fd = util_image_open(path, O_RDONLY, NULL, error);
    off_t bytes[] = { LIVE_LOCK_PERM_BASE, LIVE_LOCK_SHARED_BASE + LIVE_LOCK_PERM_WRITE };
    LiveImageUse use = LIVE_IMAGE_FREE;

    if (fd < 0)
        return -1;
    for (guint i = 0; i < G_N_ELEMENTS(bytes); i++) {
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = bytes[i],
                            .l_len = 1 };

        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
            int errsv = errno;

            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv),
                        "cannot lock '%s': %s", path, g_strerror(errsv));
            return -1;
        }
    }
    /* As qemu does: the locks first, then the look for a writer; a qemu starting at the
     * same time looks after taking its own, so one of the two sees the other. */
    if (!live_image_use(path, &use, error))
        return -1;
    if (use == LIVE_IMAGE_WRITTEN) {
        live_image_busy(path, use, error);
        return -1;
    }
    return g_steal_fd(&fd);
}
