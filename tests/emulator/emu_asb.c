/*
 * emu_asb.c - loading the emulator from an asbackup `.asb` text file and dumping a namespace
 * back into one, using the project's .asb codec (src/asb/).
 *
 * Loading keeps what the file says (generation, void-time, stored key, set, bins) and stamps
 * the load time as last-update-time; MAP bins get the server's key-sorting of unordered maps,
 * GeoJSON bins the server's cell header. A set-less index written by asbackup 4.5.8 with the set
 * token `null` is read as "no set". Dumps write records partition by partition (descending
 * digest inside a partition), then the namespace's index lines and the UDF lines, so two dumps of
 * the same content are byte-identical and can be compared with cmp(1).
 */
#include "emu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asb/asb.h"

static int file_read(void *ctx, void *buf, size_t cap, size_t *got, struct err *e)
{
    FILE *f = ctx;
    size_t n = fread(buf, 1, cap, f);
    if (n == 0 && ferror(f))
        return err_set(e, ERR_IO, "read error: %s", strerror(errno));
    *got = n;
    return 0;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Encodes one asb value as a READ op; skips NIL bins. */
static int put_bin(struct as_buf *b, const struct asb_bin *bin, struct err *e)
{
    const struct asb_value *v = &bin->v;
    uint8_t num[8];
    if (bin->name_len > 255)
        return err_set(e, ERR_INVALID, "bin name of %u bytes", bin->name_len);
    switch (v->type) {
    case ASB_P_NIL:
        return 0;
    case ASB_P_INTEGER:
        put_be64(num, (uint64_t)v->i);
        return as_op_put(b, AS_OP_READ, AS_PARTICLE_INTEGER, bin->name, bin->name_len, num, 8);
    case ASB_P_DOUBLE: {
        uint64_t u;
        memcpy(&u, &v->d, 8);
        put_be64(num, u);
        return as_op_put(b, AS_OP_READ, AS_PARTICLE_FLOAT, bin->name, bin->name_len, num, 8);
    }
    case ASB_P_BOOL:
        num[0] = v->b ? 1 : 0;
        return as_op_put(b, AS_OP_READ, AS_PARTICLE_BOOL, bin->name, bin->name_len, num, 1);
    case ASB_P_GEOJSON: {
        uint32_t gl;
        uint8_t *g = emu_geo_with_cells(v->data, v->len, &gl);
        if (!g)
            return err_set(e, ERR_INVALID, "bin %.*s: invalid GeoJSON", (int)bin->name_len, bin->name);
        as_op_put(b, AS_OP_READ, AS_PARTICLE_GEOJSON, bin->name, bin->name_len, g, gl);
        free(g);
        return 0;
    }
    case ASB_P_MAP: {
        uint8_t *m;
        size_t ml;
        if (emu_map_normalize(v->data, v->len, &m, &ml) == 0) {
            as_op_put(b, AS_OP_READ, AS_PARTICLE_MAP, bin->name, bin->name_len, m, ml);
            free(m);
            return 0;
        }
        return as_op_put(b, AS_OP_READ, AS_PARTICLE_MAP, bin->name, bin->name_len, v->data, v->len);
    }
    default:
        return as_op_put(b, AS_OP_READ, v->type, bin->name, bin->name_len, v->data, v->len);
    }
}

static int load_record(struct emu_cluster *c, const struct asb_record *ar, struct err *e)
{
    struct emu_ns *ns = emu_ns_find(c, ar->ns, ar->ns_len);
    if (!ns)
        return err_set(e, ERR_INVALID, "namespace '%.*s' is not configured (use --namespace)",
                       (int)ar->ns_len, ar->ns);
    struct emu_rec *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(e, ERR_NOMEM, "out of memory");
    memcpy(r->digest, ar->digest, AS_DIGEST_SIZE);
    r->generation = ar->generation ? ar->generation : 1;
    r->void_time = ar->void_time;
    r->lut_ns = emu_now_ns();
    const struct asb_value *k = &ar->key;
    if (k->type != ASB_P_NIL) {
        uint32_t kl = (k->type == ASB_P_INTEGER || k->type == ASB_P_DOUBLE) ? 8 : k->len;
        r->key = malloc((size_t)kl + 1);
        if (!r->key) {
            emu_rec_free(r);
            return err_set(e, ERR_NOMEM, "out of memory");
        }
        r->key[0] = k->type;
        if (k->type == ASB_P_INTEGER) {
            put_be64(r->key + 1, (uint64_t)k->i);
        } else if (k->type == ASB_P_DOUBLE) {
            uint64_t u;
            memcpy(&u, &k->d, 8);
            put_be64(r->key + 1, u);
        } else if (kl) {
            memcpy(r->key + 1, k->data, kl);
        }
        r->key_len = kl + 1;
    }
    struct as_buf b;
    as_buf_init(&b);
    unsigned n = 0;
    for (uint32_t i = 0; i < ar->n_bins; i++) {
        if (put_bin(&b, &ar->bins[i], e) != 0 && !b.failed) {
            as_buf_free(&b);
            emu_rec_free(r);
            return ERR_INVALID;
        }
        n += ar->bins[i].v.type != ASB_P_NIL;
    }
    if (b.failed || n > UINT16_MAX) {
        as_buf_free(&b);
        emu_rec_free(r);
        return err_set(e, ERR_NOMEM, "record too large");
    }
    r->bins = b.data;
    r->bins_len = (uint32_t)b.len;
    r->n_bins = (uint16_t)n;
    pthread_rwlock_wrlock(&ns->lock);
    int set_id = emu_set_id(ns, ar->set, ar->set_len, true);
    int rc = set_id < 0 ? -1 : 0;
    if (rc == 0) {
        r->set_id = (uint16_t)set_id;
        rc = emu_rec_insert(ns, r);
    }
    pthread_rwlock_unlock(&ns->lock);
    if (rc != 0) {
        emu_rec_free(r);
        return err_set(e, ERR_INVALID, "cannot store record (set table full or out of memory)");
    }
    return 0;
}

static int load_sindex(struct emu_cluster *c, const struct asb_sindex *a, struct err *e)
{
    struct emu_sindex s;
    memset(&s, 0, sizeof s);
    if (a->ns_len >= sizeof s.ns || a->name_len >= sizeof s.name || a->bin_len >= sizeof s.bin ||
        a->set_len >= sizeof s.set)
        return err_set(e, ERR_INVALID, "index line with an over-long name");
    memcpy(s.ns, a->ns, a->ns_len);
    memcpy(s.name, a->name, a->name_len);
    memcpy(s.bin, a->bin, a->bin_len);
    if (!(a->set_len == 4 && memcmp(a->set, "null", 4) == 0))
        memcpy(s.set, a->set, a->set_len);
    const char *it = a->index_type == 'L' ? "list" : a->index_type == 'K' ? "mapkeys"
                   : a->index_type == 'V' ? "mapvalues" : "default";
    const char *bt = a->bin_type == 'S' ? "string" : a->bin_type == 'G' ? "geo2dsphere"
                   : a->bin_type == 'B' ? "blob" : "numeric";
    snprintf(s.indextype, sizeof s.indextype, "%s", it);
    snprintf(s.type, sizeof s.type, "%s", bt);
    if (a->ctx_len)
        s.context = strndup(a->ctx, a->ctx_len);
    if (a->expr_len)
        s.exp = strndup(a->expr, a->expr_len);
    if (emu_sindex_add(c, &s) != 0) {
        free(s.context);
        free(s.exp);
    }
    return 0;
}

int emu_load_asb(struct emu_cluster *c, const char *path, struct err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    struct asb_dec *d = asb_dec_new(file_read, f, NULL);
    if (!d) {
        fclose(f);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    int rc = 0;
    for (;;) {
        struct asb_item it;
        if ((rc = asb_dec_next(d, &it, e)) != 0)
            break;
        if (it.kind == ASB_ITEM_EOF)
            break;
        if (it.kind == ASB_ITEM_RECORD) {
            rc = load_record(c, &it.u.rec, e);
        } else if (it.kind == ASB_ITEM_UDF) {
            uint8_t *content = malloc(it.u.udf.content_len ? it.u.udf.content_len : 1);
            char name[128];
            if (!content || it.u.udf.name_len >= sizeof name) {
                free(content);
                rc = err_set(e, ERR_INVALID, "bad UDF line");
            } else {
                memcpy(content, it.u.udf.content, it.u.udf.content_len);
                memcpy(name, it.u.udf.name, it.u.udf.name_len);
                name[it.u.udf.name_len] = '\0';
                rc = emu_udf_store(c, name, content, it.u.udf.content_len) == 0
                         ? 0 : err_set(e, ERR_NOMEM, "out of memory");
            }
        } else if (it.kind == ASB_ITEM_SINDEX) {
            rc = load_sindex(c, &it.u.sindex, e);
        }
        if (rc)
            break;
    }
    asb_dec_free(d);
    fclose(f);
    if (rc)
        err_prefix(e, "%s", path);
    return rc;
}

/* ---- dump ------------------------------------------------------------------------------------------ */

static int file_sink(void *ctx, const void *data, size_t len, struct err *e)
{
    if (fwrite(data, 1, len, ctx) != len)
        return err_set(e, ERR_IO, "write error: %s", strerror(errno));
    return 0;
}

static char letter_type(const char *type)
{
    return strcmp(type, "string") == 0 ? 'S' : strcmp(type, "geo2dsphere") == 0 ? 'G'
         : strcmp(type, "blob") == 0 ? 'B' : 'N';
}

static char letter_indextype(const char *t)
{
    return strcmp(t, "list") == 0 ? 'L' : strcmp(t, "mapkeys") == 0 ? 'K'
         : strcmp(t, "mapvalues") == 0 ? 'V' : 'N';
}

static int dump_meta(struct emu_cluster *c, const char *nsname, struct asb_writer *w, struct err *e)
{
    int rc = 0;
    pthread_mutex_lock(&c->meta);
    for (unsigned i = 0; rc == 0 && i < c->n_sindexes; i++) {
        const struct emu_sindex *s = &c->sindexes[i];
        if (strcmp(s->ns, nsname) != 0)
            continue;
        struct asb_sindex a = {
            .ns = s->ns, .ns_len = (uint32_t)strlen(s->ns),
            .set = s->set, .set_len = (uint32_t)strlen(s->set),
            .name = s->name, .name_len = (uint32_t)strlen(s->name),
            .index_type = letter_indextype(s->indextype),
            .bin = s->bin, .bin_len = (uint32_t)strlen(s->bin),
            .bin_type = letter_type(s->type),
            .ctx = s->context, .ctx_len = s->context ? (uint32_t)strlen(s->context) : 0,
            .expr = s->exp, .expr_len = s->exp ? (uint32_t)strlen(s->exp) : 0,
        };
        rc = asb_writer_sindex(w, &a, e);
    }
    for (unsigned i = 0; rc == 0 && i < c->n_udfs; i++) {
        const struct emu_udf *u = &c->udfs[i];
        struct asb_udf a = { .type = 'L', .name = u->name, .name_len = (uint32_t)strlen(u->name),
                             .content = u->content, .content_len = (uint32_t)u->len };
        rc = asb_writer_udf(w, &a, e);
    }
    pthread_mutex_unlock(&c->meta);
    return rc;
}

static void value_of(uint8_t ptype, const uint8_t *v, uint32_t len, struct asb_value *out)
{
    memset(out, 0, sizeof *out);
    out->type = ptype;
    switch (ptype) {
    case AS_PARTICLE_INTEGER:
        as_particle_int(v, len, &out->i);
        break;
    case AS_PARTICLE_FLOAT:
        as_particle_double(v, len, &out->d);
        break;
    case AS_PARTICLE_BOOL:
        out->b = len == 1 && v[0];
        break;
    case AS_PARTICLE_GEOJSON: {
        const uint8_t *js;
        uint32_t jl;
        if (as_particle_geojson_text(v, len, &js, &jl) == 0) {
            out->data = js;
            out->len = jl;
        }
        break;
    }
    default:
        out->data = v;
        out->len = len;
    }
}

static int dump_records(struct emu_ns *ns, struct asb_writer *w, struct err *e)
{
    struct asb_bin *bins = NULL;
    size_t cap = 0;
    int rc = 0;
    uint32_t now = emu_now_cl();
    pthread_rwlock_rdlock(&ns->lock);
    for (unsigned p = 0; rc == 0 && p < AS_PARTITIONS; p++) {
        struct emu_part *part = &ns->parts[p];
        for (uint32_t i = 0; rc == 0 && i < part->n; i++) {
            const struct emu_rec *r = part->recs[i];
            if (emu_rec_expired(r, now))
                continue;
            if (r->n_bins > cap) {
                struct asb_bin *nb = realloc(bins, r->n_bins * sizeof *nb);
                if (!nb) {
                    rc = err_set(e, ERR_NOMEM, "out of memory");
                    break;
                }
                bins = nb;
                cap = r->n_bins;
            }
            struct as_iter it = { r->bins, r->bins + r->bins_len, r->n_bins };
            struct as_op op;
            uint32_t n = 0;
            while (as_op_next(&it, &op)) {
                bins[n].name = (const char *)op.name;
                bins[n].name_len = op.name_len;
                value_of(op.particle_type, op.value, op.value_len, &bins[n].v);
                n++;
            }
            const char *set = emu_set_name(ns, r->set_id);
            struct asb_record ar = {
                .ns = ns->name, .ns_len = (uint32_t)strlen(ns->name),
                .set = set, .set_len = (uint32_t)strlen(set),
                .generation = r->generation, .void_time = r->void_time,
                .n_bins = n, .bins = bins,
            };
            memcpy(ar.digest, r->digest, AS_DIGEST_SIZE);
            if (r->key)
                value_of(r->key[0], r->key + 1, r->key_len - 1, &ar.key);
            else
                ar.key.type = ASB_P_NIL;
            rc = asb_writer_record(w, &ar, e);
        }
    }
    pthread_rwlock_unlock(&ns->lock);
    free(bins);
    return rc;
}

int emu_dump_asb(struct emu_cluster *c, const char *nsname, const char *path, struct err *e)
{
    struct emu_ns *ns = emu_ns_find(c, nsname, strlen(nsname));
    if (!ns)
        return err_set(e, ERR_NOT_FOUND, "namespace '%s' not found", nsname);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
    struct asb_writer w;
    int rc = asb_writer_init(&w, 0, false, file_sink, f, e);
    if (rc == 0)
        rc = asb_writer_header(&w, ns->name, (uint32_t)strlen(ns->name), true, e);
    if (rc == 0)
        rc = dump_meta(c, ns->name, &w, e);
    if (rc == 0)
        rc = dump_records(ns, &w, e);
    if (rc == 0)
        rc = asb_writer_flush(&w, e);
    asb_writer_free(&w);
    if (fclose(f) != 0 && rc == 0)
        rc = err_set(e, ERR_IO, "%s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- generator ------------------------------------------------------------------------------------------ */

int emu_generate(struct emu_cluster *c, const char *spec, struct err *e)
{
    char ns_name[64] = "", set[AS_SET_NAME_MAX + 1] = "";
    unsigned long count = 0, bytes = 200;
    const char *p1 = strchr(spec, ':');
    if (!p1 || (size_t)(p1 - spec) >= sizeof ns_name)
        return err_set(e, ERR_INVALID, "--generate NS:COUNT[:SET[:BYTES]]");
    memcpy(ns_name, spec, (size_t)(p1 - spec));
    char *end;
    count = strtoul(p1 + 1, &end, 10);
    if (*end == ':') {
        const char *p2 = end + 1, *p3 = strchr(p2, ':');
        size_t sl = p3 ? (size_t)(p3 - p2) : strlen(p2);
        if (sl >= sizeof set)
            return err_set(e, ERR_INVALID, "set name too long");
        memcpy(set, p2, sl);
        if (p3) {
            bytes = strtoul(p3 + 1, &end, 10);
            if (*end || bytes < 40 || bytes > 1000000)
                return err_set(e, ERR_INVALID, "BYTES must be 40..1000000");
        }
    } else if (*end) {
        return err_set(e, ERR_INVALID, "--generate NS:COUNT[:SET[:BYTES]]");
    }
    struct emu_ns *ns = emu_ns_find(c, ns_name, strlen(ns_name));
    if (!ns)
        return err_set(e, ERR_INVALID, "namespace '%s' is not configured", ns_name);
    size_t pad_len = bytes - 40;
    uint8_t *pad = malloc(pad_len);
    if (!pad)
        return err_set(e, ERR_NOMEM, "out of memory");
    uint64_t x = 88172645463325252ull;
    uint64_t lut = emu_now_ns();
    pthread_rwlock_wrlock(&ns->lock);
    int set_id = emu_set_id(ns, set, strlen(set), true);
    int rc = set_id < 0 ? err_set(e, ERR_INVALID, "bad set") : 0;
    for (unsigned long i = 0; rc == 0 && i < count; i++) {
        char key[32], name[32];
        int kl = snprintf(key, sizeof key, "key-%lu", i);
        int nl = snprintf(name, sizeof name, "name-%lu", i);
        for (size_t k = 0; k < pad_len; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            pad[k] = (uint8_t)x;
        }
        struct emu_rec *r = calloc(1, sizeof *r);
        if (!r || (rc = as_digest_compute(set, strlen(set), AS_PARTICLE_STRING, key, (size_t)kl,
                                          r->digest, e)) != 0) {
            free(r);
            rc = rc ? rc : err_set(e, ERR_NOMEM, "out of memory");
            break;
        }
        r->set_id = (uint16_t)set_id;
        r->generation = 1;
        r->lut_ns = lut;
        r->key = malloc((size_t)kl + 1);
        if (r->key) {
            r->key[0] = AS_PARTICLE_STRING;
            memcpy(r->key + 1, key, (size_t)kl);
            r->key_len = (uint32_t)kl + 1;
        }
        struct as_buf b;
        as_buf_init(&b);
        uint8_t num[8];
        put_be64(num, i);
        as_op_put(&b, AS_OP_READ, AS_PARTICLE_INTEGER, "id", 2, num, 8);
        as_op_put(&b, AS_OP_READ, AS_PARTICLE_STRING, "name", 4, name, (size_t)nl);
        as_op_put(&b, AS_OP_READ, AS_PARTICLE_BLOB, "pad", 3, pad, pad_len);
        r->bins = b.data;
        r->bins_len = (uint32_t)b.len;
        r->n_bins = 3;
        if (b.failed || !r->key || emu_rec_insert(ns, r) != 0) {
            emu_rec_free(r);
            rc = err_set(e, ERR_NOMEM, "out of memory");
        }
    }
    pthread_rwlock_unlock(&ns->lock);
    free(pad);
    return rc;
}
