/* viewpath.h: tree/ nodes by path for the view tests (header-only): lookups, contents,
 * link targets and attributes, each asserted to succeed. */
#pragma once

#include <string.h>
#include <sys/stat.h>

#include <glib.h>

#include "error.h"
#include "view.h"

/* The node at @path ("db/snapshots/s2"; "" is the root), asserted to exist. */
static ViewNode *
node_at(View *view, const char *path)
{
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    ViewNode *node = g_new0(ViewNode, 1);

    node->kind = VIEW_ROOT;
    for (guint i = 0; parts[i]; i++) {
        g_autoptr(GError) error = NULL;
        ViewNode *child;

        if (!*parts[i])
            continue;
        child = view_lookup(view, node, parts[i], &error);
        g_assert_no_error(error);
        g_assert_nonnull(child);
        view_node_free(node);
        node = child;
    }
    return node;
}

/* strcmp for a GPtrArray of strings. */
static gint
cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The content of generated file @path. Owned. */
static char *
text_at(View *view, const char *path)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = view_read_content(view, node, NULL, &error);
    gsize len;
    const char *data;

    g_assert_no_error(error);
    data = g_bytes_get_data(bytes, &len);
    return g_strndup(data, len);
}

/* The target of link @path. Owned. */
static char *
link_at(View *view, const char *path)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(GError) error = NULL;
    char *target = view_readlink(view, node, &error);

    g_assert_no_error(error);
    return target;
}

static struct stat
stat_at(View *view, const char *path)
{
    g_autoptr(ViewNode) node = node_at(view, path);
    g_autoptr(GError) error = NULL;
    struct stat st;

    g_assert_true(view_stat(view, node, &st, &error));
    g_assert_no_error(error);
    return st;
}

/* Every node under @dir: its type as listed, a directory's nlink and mode, a generated
 * file's size equal to its content's length (*@files counts them) and its mode, a
 * link's size equal to its target's length. */
static void
walk_tree(View *view, const ViewNode *dir, guint *files)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) ents = view_readdir(view, dir, &error);

    g_assert_no_error(error);
    for (guint i = 0; i < ents->len; i++) {
        const ViewDirent *ent = ents->pdata[i];
        g_autoptr(ViewNode) node = view_lookup(view, dir, ent->name, &error);
        struct stat st;

        g_assert_no_error(error);
        if (!view_stat(view, node, &st, &error))
            g_error("stat of %s/%s: %s", node->snap ? node->snap : "", ent->name,
                    error ? error->message : "no error");
        g_assert_cmpuint(st.st_mode & S_IFMT, ==, ent->type);
        if (view_node_is_guest(node)) {
            /* Beside a disk a VM writes, files/ and partitions.tsv stat but say EBUSY
             * when opened, as data does. */
            g_autoptr(GBytes) probe = NULL;
            g_autoptr(GPtrArray) probe_ents = NULL;

            if (S_ISDIR(st.st_mode))
                probe_ents = view_readdir(view, node, &error);
            else
                probe = view_read_content(view, node, NULL, &error);
            if (error && g_error_matches(error, CORE_ERROR, CORE_ERROR_BUSY)) {
                g_clear_error(&error);
                continue;
            }
            g_assert_no_error(error);
        }
        if (S_ISDIR(st.st_mode)) {
            g_autoptr(GPtrArray) sub = view_readdir(view, node, &error);
            guint subdirs = 0;

            g_assert_no_error(error);
            for (guint j = 0; j < sub->len; j++)
                subdirs += ((ViewDirent *)sub->pdata[j])->type == S_IFDIR;
            g_assert_cmpuint(st.st_nlink, ==, 2 + subdirs);
            /* files/: the guest's modes are its own, only the owner enters */
            g_assert_cmpint(st.st_mode & 07777, ==, node->kind == VIEW_GUEST_FILES ? 0700 : 0555);
            walk_tree(view, node, files);
        } else if (S_ISLNK(st.st_mode)) {
            g_autofree char *target = view_readlink(view, node, &error);

            g_assert_no_error(error);
            g_assert_cmpuint(st.st_size, ==, strlen(target));
        } else if (node->kind == VIEW_DISK_FILE && strcmp(node->leaf, "data") == 0) {
            g_assert_cmpint(st.st_mode & 07777, ==, 0400);   /* its size is the image's */
        } else if (node->kind == VIEW_CTL_FILE && !view_ctl_is_result(node)) {
            g_assert_cmpint(st.st_mode & 07777, ==, 0200);
            g_assert_cmpuint(st.st_size, ==, 0);
        } else {
            g_autoptr(GBytes) bytes = view_read_content(view, node, NULL, &error);
            guint64 version = 0, size = 0;

            g_assert_no_error(error);
            g_assert_cmpuint(g_bytes_get_size(bytes), ==, (guint64)st.st_size);
            g_assert_true(view_content_version(view, node, &version, &size, NULL, &error));
            g_assert_cmpuint(size, ==, (guint64)st.st_size);
            g_assert_cmpint(st.st_mode & 07777, ==,
                            g_str_has_suffix(ent->name, ".secure.xml") ? 0400 : 0444);
            (*files)++;
        }
    }
}
