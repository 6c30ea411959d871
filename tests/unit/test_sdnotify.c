/* test_sdnotify.c - the hand-written sd_notify: READY/STOPPING/RELOADING datagrams reach a
 * socket named by $NOTIFY_SOCKET (filesystem path and '@' abstract name), no socket is a
 * silent no-op, and unusable names or an absent listener are reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/sdnotify.h"

/* A datagram socket bound to `name` ('@' = abstract); returns the fd. */
static int bind_listener(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    assert_true(len < sizeof addr.sun_path);
    memcpy(addr.sun_path, name, len);
    socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
    if (name[0] == '@') {
        addr.sun_path[0] = '\0';
        addr_len--;
    }
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, addr_len), 0);
    return fd;
}

/* Receives one datagram (waiting at most a second) into buf as a string. */
static void receive(int fd, char *buf, size_t cap)
{
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, buf, cap - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
}

static void assert_received(int fd, const char *want)
{
    char buf[256];
    receive(fd, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void make_socket_path(char *out, size_t cap)
{
    char dir[] = "/tmp/sdnotify-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(out, cap, "%s/notify.sock", dir);
}

static void remove_socket_path(const char *path)
{
    unlink(path);
    char dir[108];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

static void test_path_socket_gets_states(void **state)
{
    (void)state;
    char path[108];
    make_socket_path(path, sizeof path);
    int fd = bind_listener(path);
    setenv("NOTIFY_SOCKET", path, 1);
    struct err e = {0};
    char buf[256];

    assert_int_equal(sdnotify_ready(&e), 0);
    assert_received(fd, "READY=1");

    assert_int_equal(sdnotify_stopping(&e), 0);
    assert_received(fd, "STOPPING=1");

    assert_int_equal(sdnotify_reloading(&e), 0);
    receive(fd, buf, sizeof buf);
    assert_memory_equal(buf, "RELOADING=1\nMONOTONIC_USEC=", 27);
    char *end = NULL;
    unsigned long long usec = strtoull(buf + 27, &end, 10);
    assert_true(usec > 0);
    assert_true(*end == '\0');

    assert_int_equal(sdnotify_send("STATUS=serving\nREADY=1", &e), 0);
    assert_received(fd, "STATUS=serving\nREADY=1");

    unsetenv("NOTIFY_SOCKET");
    close(fd);
    remove_socket_path(path);
}

static void test_abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@abs-sdnotify-test-%ld", (long)getpid());
    int fd = bind_listener(name);
    setenv("NOTIFY_SOCKET", name, 1);
    struct err e = {0};
    assert_int_equal(sdnotify_ready(&e), 0);
    assert_received(fd, "READY=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
}

static void test_no_socket_is_a_no_op(void **state)
{
    (void)state;
    struct err e = {0};
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(sdnotify_ready(&e), 0);
    setenv("NOTIFY_SOCKET", "", 1);
    assert_int_equal(sdnotify_stopping(&e), 0);
    unsetenv("NOTIFY_SOCKET");
}

static void test_errors_are_reported(void **state)
{
    (void)state;
    struct err e = {0};
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_int_equal(sdnotify_ready(&e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "NOTIFY_SOCKET"));

    char too_long[200];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[0] = '/';
    too_long[sizeof too_long - 1] = '\0';
    setenv("NOTIFY_SOCKET", too_long, 1);
    assert_int_equal(sdnotify_ready(&e), ERR_INVALID);

    char path[108];
    make_socket_path(path, sizeof path); /* nobody listens there */
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(sdnotify_ready(&e), ERR_IO);
    assert_non_null(strstr(e.msg, path));
    remove_socket_path(path);
    unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_socket_gets_states),
        cmocka_unit_test(test_abstract_socket),
        cmocka_unit_test(test_no_socket_is_a_no_op),
        cmocka_unit_test(test_errors_are_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
