/*
 * cloud_loader.c - finds and loads the cloud module (see cloud_module.h) once per process.
 *
 * A program linked with the cloud objects has abs_cloud_module() itself (a weak reference
 * resolves to it). The service binary has the module's image (another weak reference): it is
 * copied to a memfd and loaded from there. Failing that, the module file is looked for next to
 * the executable, then in ../lib/aerospike-backup-service/ relative to it. A loaded module's
 * build string must equal ours.
 */
#include "storage/cloud_module.h"

#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/fsutil.h"
#include "util/strutil.h"
#include "version.h"

extern const struct cloud_module *abs_cloud_module(void) __attribute__((weak));
extern const unsigned char *abs_cloud_module_image(size_t *len) __attribute__((weak));

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const struct cloud_module *loaded;
static char load_error[600];

/* Directory of the running executable into buf; false if unknown. */
static bool exe_dir(char *buf, size_t cap)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0)
        return false;
    path[n] = '\0';
    return (size_t)str_printf(buf, cap, "%s", dirname(path)) < cap;
}

static const struct cloud_module *open_module(const char *path, char *why, size_t cap)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        str_printf(why, cap, "%s", dlerror());
        return NULL;
    }
    const struct cloud_module *(*entry)(void) = (const struct cloud_module *(*)(void))dlsym(h, "abs_cloud_module");
    const struct cloud_module *m = entry ? entry() : NULL;
    if (!m || strcmp(m->build, ABS_VERSION " " ABS_COMMIT) != 0) {
        str_printf(why, cap, "%s: %s", path, m ? "built for another version of the service" : "not a cloud module");
        dlclose(h);
        return NULL;
    }
    return m; /* stays loaded for the life of the process */
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* Linux 6.3: an executable memfd even with vm.memfd_noexec=1 */
#endif

/* The embedded image, copied to a memfd and loaded from /proc/self/fd (glibc has no
 * dlopen-from-descriptor). */
static const struct cloud_module *open_embedded(char *why, size_t cap)
{
    size_t len = 0;
    const unsigned char *image = abs_cloud_module_image(&len);
    int fd = memfd_create(CLOUD_MODULE_FILE, MFD_CLOEXEC | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) /* a kernel before 6.3 does not know MFD_EXEC */
        fd = memfd_create(CLOUD_MODULE_FILE, MFD_CLOEXEC);
    if (fd < 0) {
        str_printf(why, cap, "embedded module: memfd_create: %s", strerror(errno));
        return NULL;
    }
    const struct cloud_module *m = NULL;
    if (fs_write_all(fd, image, len) != 0) {
        str_printf(why, cap, "embedded module: %s", strerror(errno));
    } else {
        char path[64];
        str_printf(path, sizeof path, "/proc/self/fd/%d", fd);
        m = open_module(path, why, cap);
    }
    close(fd); /* the mapping keeps the module */
    return m;
}

static void load(void)
{
    if (abs_cloud_module) {
        loaded = abs_cloud_module();
        return;
    }
    char dir[PATH_MAX], path[PATH_MAX + 64], why[3][400] = {"", "", ""};
    if (abs_cloud_module_image && (loaded = open_embedded(why[2], sizeof why[2])) != NULL)
        return;
    if (!exe_dir(dir, sizeof dir)) {
        str_printf(load_error, sizeof load_error, "cannot find the executable's directory");
        return;
    }
    str_printf(path, sizeof path, "%s/%s", dir, CLOUD_MODULE_FILE); /* build tree */
    loaded = open_module(path, why[0], sizeof why[0]);
    if (!loaded) { /* installed: <prefix>/bin and <prefix>/lib/aerospike-backup-service */
        str_printf(path, sizeof path, "%s/../lib/aerospike-backup-service/%s", dir, CLOUD_MODULE_FILE);
        loaded = open_module(path, why[1], sizeof why[1]);
    }
    if (!loaded)
        str_printf(load_error, sizeof load_error, "cloud storage support (%s) is not available: %s%s%s; %s",
                   CLOUD_MODULE_FILE, why[2], why[2][0] ? "; " : "", why[0], why[1]);
}

int cloud_module_get(const struct cloud_module **out, struct err *e)
{
    pthread_once(&load_once, load);
    *out = loaded;
    return loaded ? 0 : err_set(e, ERR_UNAVAILABLE, "%s", load_error);
}

void cloud_module_abort_retries(void)
{
    if (__atomic_load_n(&loaded, __ATOMIC_ACQUIRE))
        loaded->abort_retries();
}

void cloud_module_shutdown(void)
{
    if (loaded)
        loaded->global_cleanup();
}
