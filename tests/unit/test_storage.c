/*
 * test_storage.c - the storage interface (src/storage) over the local backend: the shared
 * storage contract (tests/unit/storage_contract.h) run against a fresh temporary directory,
 * plus what only the local backend has: failed commits when the folder vanishes, hidden temp
 * files / empty directories / special files never listed, directory pruning on delete, file
 * and directory modes, relative roots, storages that cannot be created, keys colliding with
 * folders, bad storage configurations, and the path helpers of the backend interface.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage_contract.h"
#include "temp_storage.h"

/* ---- fixture (local-only tests) --------------------------------------------------------- */

static int open_local(const char *path, struct stor **s, struct err *e)
{
    struct cfg_local_storage l = {.path = (char *)path};
    struct cfg_storage c = {.local = &l};
    return stor_open(&c, s, e);
}

static int setup(void **state) { return temp_fx_setup(state, "/tmp/abs_stor_test.XXXXXX"); }

static int teardown(void **state) { return temp_fx_teardown(state); }

/* ---- helpers ------------------------------------------------------------------------------ */

struct tree_tally {
    int entries;    /* every entry, hidden ones and directories included */
    long objects;   /* visible regular files outside hidden directories */
    long leftovers; /* hidden entries (temp files) and visible directories holding no object */
};

static void tally_tree(const char *path, struct tree_tally *t)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, de->d_name);
        bool hidden = de->d_name[0] == '.';
        t->entries++;
        if (hidden)
            t->leftovers++;
        if (de->d_type == DT_DIR) {
            struct tree_tally inner = {0};
            tally_tree(child, &inner);
            t->entries += inner.entries;
            if (!hidden) {
                t->objects += inner.objects;
                t->leftovers += inner.leftovers + (inner.objects == 0); /* an empty directory */
            }
        } else if (!hidden) {
            t->objects++;
        }
    }
    closedir(d);
}

/* Number of directory entries (hidden ones included) in a directory tree, dirs counted. */
static int count_tree(const char *path)
{
    struct tree_tally t = {0};
    tally_tree(path, &t);
    return t.entries;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return st.st_mode & 07777;
}

/* ---- local contract backend --------------------------------------------------------------- */

static long local_leftovers(void *ctx, struct stor *s)
{
    (void)ctx;
    struct tree_tally t = {0};
    tally_tree(stor_root(s), &t);
    return t.leftovers;
}

static int local_open(void *ctx, struct stor **out, struct err *e)
{
    (void)ctx;
    char dir[64] = "/tmp/abs_stor_contract.XXXXXX", root[128];
    if (!mkdtemp(dir))
        return err_set(e, ERR_IO, "mkdtemp: %s", strerror(errno));
    snprintf(root, sizeof root, "%s/root", dir);
    return open_local(root, out, e);
}

static void local_cleanup(void *ctx, struct stor *s)
{
    (void)ctx;
    char *root = strdup(stor_root(s));
    rm_tree(dirname(root)); /* the mkdtemp directory */
    free(root);
}

static struct stor_contract local_backend = {
    .name = "local", .open = local_open, .cleanup = local_cleanup,
    .leftovers = local_leftovers,
};

/* ---- local backend specifics -------------------------------------------------------------- */

static void test_failed_commit_leaves_nothing(void **state)
{
    struct temp_fx *f = *state;
    struct stor *s = f->s;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(s, "t/1/x.asb", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, "abc", 3, &e), 0);
    /* The folder is deleted under the writer (e.g. a cancel racing it): commit must fail. */
    assert_int_equal(stor_delete_prefix(s, "t/", &e), 0);
    assert_int_equal(stor_writer_commit(w, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "x.asb"));
    sc_assert_list(s, "", false, "");
    assert_int_equal(stor_stat(s, "t/1/x.asb", NULL, NULL, &e), ERR_NOT_FOUND);
}

/* ---- contract: listing -------------------------------------------------------------------- */

static void test_list_hidden_and_empty_dirs(void **state)
{
    struct temp_fx *f = *state;
    struct stor *s = f->s;
    sc_put_str(s, "a/x", "1");
    char path[512];
    /* An empty directory, a directory holding only a stale temp file, a hidden file. */
    snprintf(path, sizeof path, "%s/empty", f->root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/stale", f->root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/stale/.0_ns_1.asb.tmp-abcdef", f->root);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/a/.hidden", f->root);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    /* A special file is not an object either. */
    snprintf(path, sizeof path, "%s/a/fifo", f->root);
    assert_int_equal(mkfifo(path, 0600), 0);

    sc_assert_list(s, "", false, "a/x");
    sc_assert_list(s, "", true, "a/");
    sc_assert_list(s, "a/", true, "a/x");

    /* delete-prefix removes stale temp files with the folder. */
    struct err e = {0};
    assert_int_equal(stor_delete_prefix(s, "stale/", &e), 0);
    snprintf(path, sizeof path, "%s/stale", f->root);
    assert_int_equal(access(path, F_OK), -1);
}

/* Deleting prunes the directories it empties, up to (not including) the root. */
static void test_delete_prunes_dirs(void **state)
{
    struct temp_fx *f = *state;
    struct stor *s = f->s;
    sc_make_layout(s);
    struct err e = {0};
    char path[512];
    assert_int_equal(stor_delete(s, "r/incremental/1704114000000/data/test/metadata.yaml", &e),
                     0);
    snprintf(path, sizeof path, "%s/r/incremental", f->root);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/r", f->root);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(stor_delete_prefix(s, "r/backup/1704110400000/", &e), 0);
    snprintf(path, sizeof path, "%s/r/backup/1704110400000", f->root);
    assert_int_equal(access(path, F_OK), -1);
    /* The last folder of a routine: the routine folder goes too. */
    assert_int_equal(stor_delete_prefix(s, "r2/backup/", &e), 0);
    snprintf(path, sizeof path, "%s/r2", f->root);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(stor_delete(s, "top", &e), 0);
    assert_int_equal(stor_delete(s, "r/a-b", &e), 0);
    assert_int_equal(stor_delete_prefix(s, "r/", &e), 0);
    assert_int_equal(access(f->root, F_OK), 0);
    assert_int_equal(count_tree(f->root), 0);
}

/* An open writer has its temp file on disk; commit leaves exactly the object's tree. */
static void test_temp_file_until_commit(void **state)
{
    struct temp_fx *f = *state;
    struct err e = {0};
    struct stor_writer *w;
    assert_int_equal(stor_writer_open(f->s, "r/backup/1/data/ns/metadata.yaml", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, "created: x\n", 11, &e), 0);
    assert_true(count_tree(f->root) > 0);
    sc_assert_list(f->s, "", false, "");
    assert_int_equal(stor_writer_commit(w, &e), 0);
    /* r, backup, 1, data, ns, metadata.yaml */
    assert_int_equal(count_tree(f->root), 6);
    /* An aborted writer removes the directories made for it. */
    assert_int_equal(stor_writer_open(f->s, "q/1/x", 0, &w, &e), 0);
    assert_int_equal(stor_writer_write(w, "abc", 3, &e), 0);
    stor_writer_abort(w);
    assert_int_equal(count_tree(f->root), 6);
}

/* The leftovers probe used by the contract sees what it must. */
static void test_leftovers_probe(void **state)
{
    struct temp_fx *f = *state;
    char path[512];
    assert_int_equal(local_leftovers(NULL, f->s), 0);
    sc_put_str(f->s, "a/x", "1");
    assert_int_equal(local_leftovers(NULL, f->s), 0);
    snprintf(path, sizeof path, "%s/empty", f->root);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(local_leftovers(NULL, f->s), 1);
    snprintf(path, sizeof path, "%s/a/.x.tmp-1", f->root);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(local_leftovers(NULL, f->s), 2);
}

static void test_modes(void **state)
{
    struct temp_fx *f = *state;
    struct stor *s = f->s;
    mode_t old = umask(0);
    sc_write_obj(s, "r/backup/1/data/test/0_test_1.asb", 10, 1);
    sc_put_str(s, "r/backup/1/data/test/metadata.yaml", "m");
    umask(old);
    char path[512];
    assert_int_equal(mode_of(f->root), 0700);
    const char *dirs[] = {"r", "r/backup", "r/backup/1", "r/backup/1/data",
                          "r/backup/1/data/test"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->root, dirs[i]);
        assert_int_equal(mode_of(path), 0700);
    }
    snprintf(path, sizeof path, "%s/r/backup/1/data/test/0_test_1.asb", f->root);
    assert_int_equal(mode_of(path), 0600);
    snprintf(path, sizeof path, "%s/r/backup/1/data/test/metadata.yaml", f->root);
    assert_int_equal(mode_of(path), 0600);

    /* A relative root resolves against the current directory, once. */
    char cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    struct stor *rel;
    struct err e = {0};
    int rc = open_local("rel/store", &rel, &e);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    snprintf(path, sizeof path, "%s/rel/store", f->dir);
    assert_string_equal(stor_root(rel), path);
    assert_int_equal(stor_get_kind(rel), STOR_LOCAL);
    assert_non_null(strstr(stor_name(rel), path));
    assert_int_equal(stor_part_size(rel), 0);
    sc_put_str(rel, "k", "v"); /* cwd changed back: still lands in the resolved root */
    snprintf(path, sizeof path, "%s/rel/store/k", f->dir);
    assert_int_equal(access(path, F_OK), 0);
    stor_close(rel);
}


static void test_unwritable(void **state)
{
    struct temp_fx *f = *state;
    struct err e = {0};
    struct stor *s = (void *)1;
    char path[512];

    /* Root below a regular file. */
    snprintf(path, sizeof path, "%s/plainfile", f->dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof path, "%s/plainfile/store", f->dir);
    assert_int_equal(open_local(path, &s, &e), ERR_IO);
    assert_null(s);
    assert_non_null(strstr(e.msg, "plainfile"));
    /* Root that is a regular file. */
    snprintf(path, sizeof path, "%s/plainfile", f->dir);
    assert_int_equal(open_local(path, &s, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "not a directory"));
    /* Root in /proc (no directory can be made there, even by root). */
    assert_int_equal(open_local("/proc/abs_stor_test/x", &s, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "/proc/abs_stor_test"));
    assert_int_equal(open_local("", &s, &e), ERR_INVALID);
    assert_int_equal(open_local(NULL, &s, &e), ERR_INVALID);

    /* A key whose folder would sit under an object. */
    sc_put_str(f->s, "obj", "x");
    struct stor_writer *w = (void *)1;
    assert_int_equal(stor_writer_open(f->s, "obj/sub/file", 0, &w, &e), ERR_IO);
    assert_null(w);
    assert_non_null(strstr(e.msg, "obj"));
    assert_int_equal(stor_put(f->s, "obj/x", "y", 1, &e), ERR_IO);
    /* A key naming an existing folder cannot be committed over it. */
    sc_put_str(f->s, "dir/x", "x");
    assert_int_equal(stor_put(f->s, "dir", "y", 1, &e), ERR_IO);
    assert_non_null(strstr(e.msg, "dir"));
    sc_assert_list(f->s, "", false, "dir/x,obj");
    char root_entries[512];
    snprintf(root_entries, sizeof root_entries, "%s", f->root);
    assert_int_equal(count_tree(root_entries), 3); /* obj, dir, dir/x: no temp file left */
}

/* Storage configurations naming no kind, or two, are refused (the cloud kinds themselves are
 * tested in test_stor_s3.c / their own tests). */
static void test_open_kinds(void **state)
{
    (void)state;
    struct err e = {0};
    struct stor *s = (void *)1;
    struct cfg_s3_storage s3 = {.bucket = "b"};
    struct cfg_local_storage loc = {.path = "/tmp"};
    struct cfg_storage c = {0};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    assert_null(s);
    c = (struct cfg_storage){.local = &loc, .s3 = &s3};
    assert_int_equal(stor_open(&c, &s, &e), ERR_INVALID);
    assert_int_equal(stor_open(NULL, &s, &e), ERR_INVALID);
    stor_close(NULL);
}

static void test_path_helpers(void **state)
{
    (void)state;
    char *p;
    struct {
        const char *a, *b, *want;
    } joins[] = {{"a", "b", "a/b"},   {"a/", "b", "a/b"}, {"a", "/b", "a/b"}, {"", "b", "b"},
                 {"a", "", "a"},      {NULL, "b", "b"},   {"a//", "b/c", "a/b/c"},
                 {"", "", ""}};
    for (size_t i = 0; i < sizeof joins / sizeof joins[0]; i++) {
        p = stor_path_join(joins[i].a, joins[i].b);
        assert_string_equal(p, joins[i].want);
        free(p);
    }
    struct {
        const char *in, *want;
    } norms[] = {{"/backups/abs/", "backups/abs"}, {"x", "x"}, {"///", ""}, {NULL, ""}};
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        p = stor_prefix_normalize(norms[i].in);
        assert_string_equal(p, norms[i].want);
        free(p);
    }
    /* Object names under a cloud-style root prefix, through a bare base handle. */
    struct stor s;
    struct err e = {0};
    static const struct stor_ops ops = {.scheme = "test"};
    assert_int_equal(stor_base_init(&s, &ops, STOR_S3, "pre/fix", "s3://b/pre/fix", 5 << 20, &e),
                     0);
    p = stor_object_name(&s, "r/backup/1/x");
    assert_string_equal(p, "pre/fix/r/backup/1/x");
    assert_string_equal(stor_key_of_object(&s, p), "r/backup/1/x");
    free(p);
    assert_null(stor_key_of_object(&s, "pre/fixx/a"));
    assert_null(stor_key_of_object(&s, "other/a"));
    assert_int_equal(stor_part_size(&s), 5 << 20);
    free(s.root);
    free(s.name);
    assert_int_equal(stor_base_init(&s, &ops, STOR_GCS, "", NULL, 0, &e), 0);
    assert_string_equal(stor_name(&s), "test");
    p = stor_object_name(&s, "k");
    assert_string_equal(p, "k");
    assert_string_equal(stor_key_of_object(&s, "k"), "k");
    free(p);
    free(s.root);
    free(s.name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STOR_CONTRACT_TESTS(&local_backend),
        cmocka_unit_test_setup_teardown(test_failed_commit_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_hidden_and_empty_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_prunes_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_file_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test(test_open_kinds),
        cmocka_unit_test(test_path_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
