/* live.h: what runs on the host: domains' states from libvirt's status files, images in
 * use from qemu's locks, and a libvirt daemon in charge of the store. */
#pragma once

#include <glib.h>
#include <sys/types.h>

G_BEGIN_DECLS

/* libvirt's domain states (virDomainState), named as `virsh domstate` prints them. */
typedef enum {
    LIVE_STATE_SHUTOFF,      /* "shut off": no qemu runs the domain */
    LIVE_STATE_RUNNING,      /* "running" */
    LIVE_STATE_BLOCKED,      /* "idle" */
    LIVE_STATE_PAUSED,       /* "paused" */
    LIVE_STATE_SHUTDOWN,     /* "in shutdown" */
    LIVE_STATE_CRASHED,      /* "crashed" */
    LIVE_STATE_PMSUSPENDED,  /* "pmsuspended" */
} LiveState;

/* virsh domstate's word for @state. Static string. */
const char *live_state_name(LiveState state);

/* Where a store's libvirt keeps its run-time files. */
typedef enum {
    LIVE_LAYOUT_NONE,     /* unknown: no status files, no daemon is looked for */
    LIVE_LAYOUT_SYSTEM,   /* RUN/libvirt/qemu/NAME.xml, RUN/libvirt/libvirt-sock, RUN/libvirtd.pid */
    LIVE_LAYOUT_SESSION,  /* RT/libvirt/qemu/run/NAME.xml, RT/libvirt/libvirt-sock and
                             RT/libvirt/libvirtd.pid (RT: the owner's XDG_RUNTIME_DIR) */
    LIVE_LAYOUT_OTHER,    /* a status directory given by hand that is neither: status files
                             only, no daemon is looked for */
} LiveLayout;

/* Read-only after live_host_new(); shared between threads without a lock. */
typedef struct {
    LiveLayout layout;
    char *run_dir;        /* libvirt's qemu status files (NAME.xml, NAME.pid); NULL: NONE */
    char *libvirt_dir;    /* the daemon's sockets; NULL: no daemon is looked for */
    char *pid_dir;        /* the daemon's pid files; NULL with libvirt_dir */
    gboolean default_uri; /* qemu:///system or qemu:///session reaches the daemon from here */
} LiveHost;

/* Finds where the libvirt whose domain definitions are in @config_dir keeps its run-time
 * files. @run_dir (may be NULL): the status directory given by hand (-o run_dir); its layout
 * is read from its path (".../libvirt/qemu/run": session, ".../libvirt/qemu": system).
 * Without it: /etc/libvirt/qemu is the system daemon's store (/run/libvirt/qemu); the
 * session store of the directory's owner ($XDG_CONFIG_HOME/libvirt/qemu of this process when
 * it is the owner, else ~OWNER/.config/libvirt/qemu) has its status files under the owner's
 * runtime directory ($XDG_RUNTIME_DIR when this process is the owner and it is set, else
 * /run/user/UID); any other store has no known run-time files (LIVE_LAYOUT_NONE). Touches
 * nothing but the stat of @config_dir and the password database. Never fails. */
LiveHost *live_host_new(const char *config_dir, const char *run_dir);
void live_host_free(LiveHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LiveHost, live_host_free)

/* The state of domain @name: its status file RUN_DIR/NAME.xml and pid file RUN_DIR/NAME.pid
 * are trusted only when a process named there (the pid file's lock holder, its content, or
 * the status file's pid attribute) is alive and is a qemu started for that domain (its
 * command line: a qemu binary with "-name guest=NAME,..."). Otherwise, or without a run
 * directory, LIVE_STATE_SHUTOFF. A live qemu whose status file cannot be read is
 * LIVE_STATE_RUNNING. @pid (may be NULL): qemu's pid, 0 when shut off. Never fails; what it
 * could not read is logged with g_debug(). */
LiveState live_domain_state(const LiveHost *host, const char *name, pid_t *pid);

/* TRUE when the process @pid is alive and is a qemu started for domain @name. */
gboolean live_pid_is_qemu_of(pid_t pid, const char *name);

/* A libvirt daemon (libvirtd or virtqemud) in charge of @host's store: its pid file is locked
 * by a live process, or names a live libvirtd or virtqemud, or one of its sockets accepts a
 * connection (non-blocking: never waits for the daemon). Returns TRUE with @uri (owned, may
 * be NULL): the URI that reaches it ("qemu:///system", "qemu:///session", or
 * "qemu+unix:///session?socket=PATH" for other directories), and @pid (may be NULL): the
 * daemon's pid, 0 when only its socket answered. FALSE when none is found. */
gboolean live_host_daemon(const LiveHost *host, char **uri, pid_t *pid);

/* How an image is used by other processes, from qemu's OFD locks. */
typedef enum {
    LIVE_IMAGE_FREE,      /* no qemu lock: nothing (that locks) uses it */
    LIVE_IMAGE_USED,      /* opened by a qemu that does not write it: a backing image of a
                             running VM, a `qemu-img` or `qemu-io -r` reading it */
    LIVE_IMAGE_WRITTEN,   /* a qemu holds the write permission: the top of a running VM */
} LiveImageUse;

/* Probes @path's qemu locks with F_OFD_GETLK, holding none itself. Opens @path read-only,
 * non-blocking, and only when it is a regular file or a block device (CORE_ERROR_INVALID
 * otherwise); a failed open sets G_FILE_ERROR with its errno. */
gboolean live_image_use(const char *path, LiveImageUse *use, GError **error);

/* TRUE when no other process uses @path beyond @allowed: LIVE_IMAGE_FREE before anything
 * that writes, commits into or removes the image; LIVE_IMAGE_USED before reading bytes that
 * must not change under the reader. Otherwise CORE_ERROR_BUSY saying what holds it. A
 * @path that live_image_use() cannot probe (missing, not a regular file or block device,
 * inside the snapfs mount) is not in use (TRUE): the operation that opens it says why. */
gboolean live_image_check(const char *path, LiveImageUse allowed, GError **error);

/* Takes on @path the locks qemu-img takes on an image it reads (consistent read held, write
 * shared with no one), so that a qemu that starts to write it meanwhile fails ("Failed to get
 * "write" lock") instead of changing what is read. Returns the descriptor that holds them
 * (closing it releases them); -1 with CORE_ERROR_BUSY when a process writes the image, or
 * the error of the open (util_image_open(): regular files and block devices only). */
int live_image_hold(const char *path, GError **error);

G_END_DECLS
