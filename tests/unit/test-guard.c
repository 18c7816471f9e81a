/* test-guard.c: which changes the guard refuses, and what it says, against a real qemu named
 * in a status file, real qemu-io lock holders and a listening daemon socket. */
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testcmd.h"
#include "error.h"
#include "guard.h"

static char *root;      /* the store: ROOT/qemu/vm.xml, ROOT/qemu/snapshot/vm/s1.xml */
static char *img;       /* ROOT/img: base.qcow2 <- top.qcow2 (vm's vda) */
static char *run;       /* ROOT/rt/libvirt/qemu/run: status files (session layout) */

static void
write_file(const char *path, const char *text)
{
    g_autoptr(GError) error = NULL;

    g_file_set_contents(path, text, -1, &error);
    g_assert_no_error(error);
}

static void
setup(void)
{
    g_autofree char *qemu = NULL;
    g_autofree char *snapdir = NULL;
    g_autofree char *cmd = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *path = NULL;

    root = g_dir_make_tmp("snapfs-guard-XXXXXX", NULL);
    img = g_build_filename(root, "img", NULL);
    run = g_build_filename(root, "rt", "libvirt", "qemu", "run", NULL);
    qemu = g_build_filename(root, "qemu", NULL);
    snapdir = g_build_filename(qemu, "snapshot", "vm", NULL);
    g_assert_cmpint(g_mkdir_with_parents(img, 0755), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(run, 0755), ==, 0);
    g_assert_cmpint(g_mkdir_with_parents(snapdir, 0755), ==, 0);
    cmd = g_strdup_printf("sh -c 'cd %s && qemu-img create -q -f qcow2 base.qcow2 1M && "
                          "qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2'", img);
    test_cmd(cmd);
    xml = g_strdup_printf("<domain type='qemu'>\n  <name>vm</name>\n"
                          "  <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid>\n"
                          "  <memory unit='KiB'>65536</memory>\n"
                          "  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n"
                          "  <devices>\n    <disk type='file' device='disk'>\n"
                          "      <driver name='qemu' type='qcow2'/>\n"
                          "      <source file='%s/top.qcow2'/>\n"
                          "      <target dev='vda' bus='virtio'/>\n    </disk>\n"
                          "  </devices>\n</domain>\n", img);
    path = g_build_filename(qemu, "vm.xml", NULL);
    write_file(path, xml);
}

static void
teardown(void)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", root);

    test_cmd(cmd);
    g_clear_pointer(&root, g_free);
    g_clear_pointer(&img, g_free);
    g_clear_pointer(&run, g_free);
}

typedef struct {
    GPid pid;
    int in;   /* closing it ends qemu-io */
} Holder;

/* A process holding @path's qemu locks (qemu-io, read-only with @ro), once it holds them. */
static Holder
hold(const char *name, gboolean ro)
{
    g_autofree char *path = g_build_filename(img, name, NULL);
    const char *argv[] = { "qemu-io", "-f", "qcow2", ro ? "-r" : path, ro ? path : NULL, NULL };
    g_autoptr(GError) error = NULL;
    Holder h = { 0, -1 };

    g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
                             G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                             G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                             NULL, NULL, &h.pid, &h.in, NULL, NULL, &error);
    g_assert_no_error(error);
    for (int i = 0; i < 1000; i++) {
        LiveImageUse use = LIVE_IMAGE_FREE;

        g_assert_true(live_image_use(path, &use, NULL));
        if (use != LIVE_IMAGE_FREE)
            break;
        g_usleep(10000);
    }
    return h;
}

static void
release(Holder *h)
{
    int status;

    close(h->in);
    g_assert_cmpint(waitpid(h->pid, &status, 0), ==, h->pid);
}

/* guard_check() with the domain and snapshot that a control file's @payload names (as
 * tree/ctl.c parses them: undefine's first word, define's <name>, revert's line). */
static gboolean
check(const LiveHost *host, BackendOpKind op, const char *dom, const char *payload, GError **error)
{
    g_autoptr(Store) store = store_open(root, NULL, NULL, NULL);
    g_autofree char *name = NULL;
    g_autofree char *snap = NULL;

    g_assert_nonnull(store);
    if (op == BACKEND_OP_DEFINE) {
        name = guard_define_name(payload, strlen(payload));
    } else if (op == BACKEND_OP_UNDEFINE) {
        g_auto(GStrv) words = g_strsplit(payload, " ", 2);

        name = g_strdup(words[0]);
    } else {
        name = g_strdup(dom);
    }
    if (op == BACKEND_OP_REVERT || op == BACKEND_OP_CURRENT)
        snap = g_strchomp(g_strdup(payload));
    return guard_check(store, host, op, name, snap, error);
}

static void
test_free(void)
{
    g_autoptr(LiveHost) host = live_host_new(root, run);
    g_autoptr(GError) error = NULL;

    g_assert_true(check(host, BACKEND_OP_CREATE, "vm", "s1", &error));
    g_assert_no_error(error);
    g_assert_true(check(NULL, BACKEND_OP_CREATE, "vm", "s1", &error));   /* nothing checked */
    g_assert_true(check(host, BACKEND_OP_CREATE, "nosuch", "s1", &error));   /* create says */
    g_assert_true(check(host, BACKEND_OP_UNDEFINE, NULL, "../x --snapshots-metadata", &error));
    g_assert_no_error(error);
}

static void
test_running(void)
{
    g_autoptr(LiveHost) host = live_host_new(root, run);
    g_autoptr(GError) error = NULL;
    const char *argv[] = { "qemu-system-x86_64", "-name", "guest=vm,debug-threads=on",
                           "-machine", "none", "-S", "-display", "none", "-nodefaults",
                           "-monitor", "none", "-serial", "none", NULL };
    g_autofree char *xml = g_build_filename(run, "vm.xml", NULL);
    g_autofree char *status = NULL;
    g_autofree char *want = NULL;
    GPid q = 0;
    int st;

    g_spawn_async(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                  G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &q,
                  &error);
    g_assert_no_error(error);
    for (int i = 0; i < 1000 && !live_pid_is_qemu_of(q, "vm"); i++)
        g_usleep(10000);
    status = g_strdup_printf("<domstatus state='paused' reason='user' pid='%d'>\n"
                             "</domstatus>\n", (int)q);
    write_file(xml, status);

    g_assert_false(check(host, BACKEND_OP_REVERT, "vm", "s1\n", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    want = g_strdup_printf("domain 'vm' is paused (qemu pid %d) and no libvirt daemon answers "
                           "for it: shut it down first, or start its daemon and use virsh "
                           "snapshot-revert vm s1", (int)q);
    g_assert_cmpstr(error->message, ==, want);
    g_clear_error(&error);
    /* undefine and define name the domain in their payload */
    g_assert_false(check(host, BACKEND_OP_UNDEFINE, NULL, "vm --snapshots-metadata", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_clear_error(&error);
    g_assert_false(check(host, BACKEND_OP_DEFINE, NULL,
                         "<domain type='qemu'><name>vm</name><memory>65536</memory>"
                         "<os><type>hvm</type></os></domain>", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_clear_error(&error);
    /* another domain is not affected */
    g_assert_true(check(host, BACKEND_OP_UNDEFINE, NULL, "other", &error));
    g_assert_no_error(error);

    kill(q, SIGTERM);
    g_assert_cmpint(waitpid(q, &st, 0), ==, q);
    g_assert_true(check(host, BACKEND_OP_REVERT, "vm", "s1\n", &error));   /* stale file */
    g_assert_no_error(error);
}

static void
test_daemon(void)
{
    g_autofree char *libvirt = g_build_filename(root, "rt", "libvirt", NULL);
    g_autofree char *sock = g_build_filename(libvirt, "libvirt-sock", NULL);
    g_autofree char *want = NULL;
    g_autoptr(LiveHost) host = live_host_new(root, run);
    g_autoptr(GError) error = NULL;
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpuint(strlen(sock), <, sizeof(addr.sun_path));
    strcpy(addr.sun_path, sock);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);

    g_assert_false(check(host, BACKEND_OP_GENID, "vm", "new\n", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    want = g_strdup_printf("a libvirt daemon is in charge of this store: it would ignore this "
                           "change and overwrite it; use virsh -c qemu+unix:///session?socket=%s "
                           "edit vm", sock);
    g_assert_cmpstr(error->message, ==, want);
    g_clear_error(&error);
    g_assert_true(check(host, BACKEND_OP_BACKUP, "vm", "<domainbackup/>", &error));
    g_assert_no_error(error);
    close(fd);
}

static void
test_images(void)
{
    g_autoptr(LiveHost) host = live_host_new(root, NULL);   /* no status files at all */
    g_autoptr(GError) error = NULL;
    g_autofree char *top = g_build_filename(img, "top.qcow2", NULL);
    g_autofree char *want = NULL;
    Holder h;

    g_assert_cmpint(host->layout, ==, LIVE_LAYOUT_NONE);
    h = hold("top.qcow2", FALSE);                  /* a qemu started by hand runs vm */
    g_assert_false(check(host, BACKEND_OP_CREATE, "vm", "s1", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    want = g_strdup_printf("domain 'vm' is busy: image '%s' is in use: a running qemu writes it "
                           "(it holds qemu's write lock); stop that process first", top);
    g_assert_cmpstr(error->message, ==, want);
    g_clear_error(&error);
    g_assert_false(check(host, BACKEND_OP_BACKUP, "vm", "<domainbackup/>", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_clear_error(&error);
    release(&h);

    h = hold("top.qcow2", TRUE);                   /* read, not written: no backup refusal */
    g_assert_false(check(host, BACKEND_OP_CREATE, "vm", "s1", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    g_clear_error(&error);
    g_assert_true(check(host, BACKEND_OP_BACKUP, "vm", "<domainbackup/>", &error));
    g_assert_no_error(error);
    release(&h);

    h = hold("base.qcow2", TRUE);                  /* a shared base another VM reads */
    g_assert_true(check(host, BACKEND_OP_CREATE, "vm", "s1", &error));
    g_assert_no_error(error);
    release(&h);
    h = hold("base.qcow2", FALSE);                 /* a base someone writes */
    g_assert_false(check(host, BACKEND_OP_GENID, "vm", "new", &error));
    g_assert_error(error, CORE_ERROR, CORE_ERROR_BUSY);
    release(&h);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_vtable("/guard/free", 0, NULL, (GTestFixtureFunc)setup,
                      (GTestFixtureFunc)test_free, (GTestFixtureFunc)teardown);
    g_test_add_vtable("/guard/running", 0, NULL, (GTestFixtureFunc)setup,
                      (GTestFixtureFunc)test_running, (GTestFixtureFunc)teardown);
    g_test_add_vtable("/guard/daemon", 0, NULL, (GTestFixtureFunc)setup,
                      (GTestFixtureFunc)test_daemon, (GTestFixtureFunc)teardown);
    g_test_add_vtable("/guard/images", 0, NULL, (GTestFixtureFunc)setup,
                      (GTestFixtureFunc)test_images, (GTestFixtureFunc)teardown);
    return g_test_run();
}
