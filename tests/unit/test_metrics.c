/* test_metrics.c - metrics registry: exposition text, escaping, histograms, limits, threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics/metrics.h"

static char *render(struct metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    struct err e;
    assert_int_equal(metrics_render(m, &text, &len, &e), 0);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    return text;
}

static struct metrics *new_registry(void)
{
    struct metrics *m = metrics_new();
    assert_non_null(m);
    return m;
}

static void test_counter_exposition_exact(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *f = metrics_counter(m, "http_requests_total", "Total requests.",
                                               (const char *[]){"method", "route", "status", NULL});
    assert_non_null(f);
    metrics_inc(f, (const char *[]){"GET", "/health", "200"});
    metrics_inc(f, (const char *[]){"GET", "/health", "200"});
    metrics_add(f, (const char *[]){"PUT", "/v1/config", "400"}, 3);
    metrics_add(f, (const char *[]){"PUT", "/v1/config", "400"}, -5); /* ignored for counters */
    char *text = render(m);
    assert_string_equal(text, "# HELP http_requests_total Total requests.\n"
                              "# TYPE http_requests_total counter\n"
                              "http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 2\n"
                              "http_requests_total{method=\"PUT\",route=\"/v1/config\",status=\"400\"} 3\n");
    free(text);
    metrics_free(m);
}

static void test_gauge_and_unlabelled(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *g = metrics_gauge(m, "restore_in_progress", "Restores running.", NULL);
    struct metrics_family *pct = metrics_gauge(m, "backup_progress_pct", "Progress.",
                                               (const char *[]){"routine", "type", NULL});
    metrics_set(pct, (const char *[]){"daily", "full"}, 12.5);
    metrics_add(pct, (const char *[]){"daily", "full"}, 0.25);
    metrics_add(g, NULL, 2);
    metrics_add(g, NULL, -1);
    char *text = render(m);
    /* The unlabelled gauge exists from registration, exposed without braces. */
    assert_string_equal(text, "# HELP restore_in_progress Restores running.\n"
                              "# TYPE restore_in_progress gauge\n"
                              "restore_in_progress 1\n"
                              "# HELP backup_progress_pct Progress.\n"
                              "# TYPE backup_progress_pct gauge\n"
                              "backup_progress_pct{routine=\"daily\",type=\"full\"} 12.75\n");
    double v = 0;
    assert_int_equal(metrics_get(pct, (const char *[]){"daily", "full"}, &v), 0);
    assert_true(v == 12.75);
    assert_int_equal(metrics_get(pct, (const char *[]){"daily", "incremental"}, &v),
                     ERR_NOT_FOUND);
    free(text);
    metrics_free(m);
}

static void test_label_and_help_escaping(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *f = metrics_counter(m, "odd_total", "Help with \\ and\nnewline \"q\".",
                                               (const char *[]){"v", NULL});
    metrics_inc(f, (const char *[]){"a\\b\"c\nd"});
    char *text = render(m);
    /* HELP escapes backslash and newline (not quotes); label values also escape quotes. */
    assert_string_equal(text, "# HELP odd_total Help with \\\\ and\\nnewline \"q\".\n"
                              "# TYPE odd_total counter\n"
                              "odd_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
    free(text);
    metrics_free(m);
}

static void test_histogram_cumulative(void **state)
{
    struct metrics *m = new_registry();
    const double buckets[] = {0.25, 1, 10};
    struct metrics_family *h = metrics_histogram(m, "job_seconds", "Job duration.",
                                                 (const char *[]){"routine", NULL}, buckets, 3);
    assert_non_null(h);
    /* 0.25 sits exactly on a bound: `le` is inclusive. Values are exact in binary. */
    const double obs[] = {0.125, 0.25, 0.5, 5, 50};
    for (size_t i = 0; i < 5; i++)
        metrics_observe(h, (const char *[]){"r1"}, obs[i]);
    char *text = render(m);
    assert_string_equal(text, "# HELP job_seconds Job duration.\n"
                              "# TYPE job_seconds histogram\n"
                              "job_seconds_bucket{routine=\"r1\",le=\"0.25\"} 2\n"
                              "job_seconds_bucket{routine=\"r1\",le=\"1\"} 3\n"
                              "job_seconds_bucket{routine=\"r1\",le=\"10\"} 4\n"
                              "job_seconds_bucket{routine=\"r1\",le=\"+Inf\"} 5\n"
                              "job_seconds_sum{routine=\"r1\"} 55.875\n"
                              "job_seconds_count{routine=\"r1\"} 5\n");
    free(text);
    metrics_free(m);
}

static void test_histogram_default_buckets_unlabelled(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *h = metrics_histogram(m, "lat_seconds", "Latency.", NULL, NULL, 0);
    metrics_observe(h, NULL, 0.00390625);
    metrics_observe(h, NULL, 0.25);
    char *text = render(m);
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.25\"} 2\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"10\"} 2\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"+Inf\"} 2\n"));
    assert_non_null(strstr(text, "lat_seconds_sum 0.25390625\n"));
    assert_non_null(strstr(text, "lat_seconds_count 2\n"));
    /* 11 default buckets + +Inf. */
    size_t n = 0;
    for (const char *p = text; (p = strstr(p, "_bucket{")); p++)
        n++;
    assert_int_equal(n, metrics_default_buckets_len + 1);
    free(text);
    metrics_free(m);
}

static void test_register_rules(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *f = NULL, *again = NULL;
    struct err e;
    assert_int_equal(metrics_register(m, METRICS_COUNTER, "a_total", "A.",
                                      (const char *[]){"x", NULL}, NULL, 0, &f, &e), 0);
    assert_int_equal(metrics_register(m, METRICS_COUNTER, "a_total", "A.",
                                      (const char *[]){"x", NULL}, NULL, 0, &again, &e), 0);
    assert_ptr_equal(f, again);
    assert_int_equal(metrics_register(m, METRICS_GAUGE, "a_total", "A.",
                                      (const char *[]){"x", NULL}, NULL, 0, &again, &e),
                     ERR_CONFLICT);
    assert_int_equal(metrics_register(m, METRICS_COUNTER, "a_total", "A.",
                                      (const char *[]){"y", NULL}, NULL, 0, &again, &e),
                     ERR_CONFLICT);
    assert_int_equal(metrics_register(m, METRICS_COUNTER, "9bad", "", NULL, NULL, 0, &again, &e),
                     ERR_INVALID);
    assert_int_equal(metrics_register(m, METRICS_COUNTER, "ok", "",
                                      (const char *[]){"bad-label", NULL}, NULL, 0, &again, &e),
                     ERR_INVALID);
    assert_int_equal(metrics_register(m, METRICS_HISTOGRAM, "h", "",
                                      (const char *[]){"le", NULL}, NULL, 0, &again, &e),
                     ERR_INVALID);
    const double unsorted[] = {1, 0.5};
    assert_int_equal(metrics_register(m, METRICS_HISTOGRAM, "h", "", NULL, unsorted, 2, &again,
                                      &e),
                     ERR_INVALID);
    /* A labelled family with no series yet is not rendered at all. */
    char *text = render(m);
    assert_string_equal(text, "");
    free(text);
    metrics_free(m);
}

static void test_remove_series(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *f = metrics_gauge(m, "g", "G.", (const char *[]){"routine", NULL});
    metrics_set(f, (const char *[]){"a"}, 1);
    metrics_set(f, (const char *[]){"b"}, 2);
    metrics_set(f, (const char *[]){"c"}, 3);
    metrics_remove(f, (const char *[]){"b"});
    metrics_remove(f, (const char *[]){"zzz"});
    char *text = render(m);
    assert_string_equal(text, "# HELP g G.\n# TYPE g gauge\ng{routine=\"a\"} 1\ng{routine=\"c\"} 3\n");
    free(text);
    metrics_remove(f, (const char *[]){"c"});
    metrics_set(f, (const char *[]){"d"}, 4);
    text = render(m);
    assert_string_equal(text, "# HELP g G.\n# TYPE g gauge\ng{routine=\"a\"} 1\ng{routine=\"d\"} 4\n");
    free(text);
    metrics_free(m);
}

static void test_series_cap(void **state)
{
    struct metrics *m = new_registry();
    struct metrics_family *f = metrics_counter(m, "many_total", "", (const char *[]){"id", NULL});
    char id[32];
    for (int i = 0; i < METRICS_MAX_SERIES + 5; i++) {
        snprintf(id, sizeof id, "%d", i);
        metrics_inc(f, (const char *[]){id});
    }
    assert_int_equal(metrics_dropped(f), 5);
    double v = 0;
    assert_int_equal(metrics_get(f, (const char *[]){"0"}, &v), 0);
    snprintf(id, sizeof id, "%d", METRICS_MAX_SERIES);
    assert_int_equal(metrics_get(f, (const char *[]){id}, &v), ERR_NOT_FOUND);
    metrics_free(m);
}

static void test_null_family_is_noop(void **state)
{
    metrics_inc(NULL, NULL);
    metrics_set(NULL, NULL, 1);
    metrics_observe(NULL, NULL, 1);
    assert_null(metrics_counter(NULL, "x", "", NULL));
    struct metrics *m = new_registry();
    struct metrics_family *f = metrics_counter(m, "c_total", "", (const char *[]){"a", NULL});
    metrics_inc(f, NULL); /* missing label values: ignored */
    metrics_inc(f, (const char *[]){NULL});
    char *text = render(m);
    assert_string_equal(text, "");
    free(text);
    metrics_free(m);
}

struct thread_arg {
    struct metrics_family *c, *h;
};

static void *hammer(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 20000; i++) {
        metrics_inc(a->c, (const char *[]){i % 2 ? "odd" : "even"});
        metrics_observe(a->h, NULL, 0.5);
    }
    return NULL;
}

static void test_thread_safety(void **state)
{
    struct metrics *m = new_registry();
    struct thread_arg a = {
        metrics_counter(m, "t_total", "", (const char *[]){"k", NULL}),
        metrics_histogram(m, "t_seconds", "", NULL, NULL, 0),
    };
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &a), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    double even = 0, odd = 0, count = 0;
    assert_int_equal(metrics_get(a.c, (const char *[]){"even"}, &even), 0);
    assert_int_equal(metrics_get(a.c, (const char *[]){"odd"}, &odd), 0);
    assert_int_equal(metrics_get(a.h, NULL, &count), 0);
    assert_true(even == 40000 && odd == 40000 && count == 80000);
    char *text = render(m);
    assert_non_null(strstr(text, "t_seconds_sum 40000\n"));
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_exposition_exact),
        cmocka_unit_test(test_gauge_and_unlabelled),
        cmocka_unit_test(test_label_and_help_escaping),
        cmocka_unit_test(test_histogram_cumulative),
        cmocka_unit_test(test_histogram_default_buckets_unlabelled),
        cmocka_unit_test(test_register_rules),
        cmocka_unit_test(test_remove_series),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_null_family_is_noop),
        cmocka_unit_test(test_thread_safety),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
