/* engine._pick: the candidate cut of engine/sampler.py in one native call per token.
 *
 * The sampler hands llama.cpp's chain only the tokens that can win: every token whose logit reaches
 * the m-th largest, and every token the repeat penalty remembers. In NumPy that is half a dozen
 * calls per token (estimate a cut-off, compare, find the ids, merge the remembered, copy, check),
 * each several times slower right after a decode than in a loop, because the decode left the caches
 * cold. Here it is one pass over the logits that also writes llama.cpp's candidate array
 * (llama_token_data: id, logit, p) and checks it: the engine's own time per token fell from ~170 to
 * ~100 us for SmolLM2 (49,152 tokens) and ~290 to ~180 us for Gemma 3 (262,144), two threads, on a
 * 2-core Xeon (issue 30).
 *
 * How the one pass finds the m best without sorting: it keeps every logit that reaches a threshold,
 * and when it has kept `limit` of them it raises the threshold to the m-th largest kept and drops
 * those below. The threshold is then never above the m-th largest of all the logits, so what is kept
 * at the end is exactly the logits >= the final threshold: the m best, ties all in, and a few more.
 * Most blocks of 16 logits are below the threshold: SSE2 (every x86-64 CPU, nothing chosen for the
 * build machine) tests a block in a few instructions; other CPUs take the plain loop.
 *
 * Owns: candidates(). Must not: keep any pointer past the call, or trust its arguments (sizes and
 * the remembered ids are checked: a bad call raises, it never reads or writes out of bounds).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

/* HEARTH_PICK_SCALAR: the plain loop on x86-64 too (to test it there). */
#if (defined(__SSE2__) || defined(_M_X64) || defined(_M_AMD64)) && !defined(HEARTH_PICK_SCALAR)
#include <emmintrin.h>
#define HEARTH_SSE2 1
#if defined(_MSC_VER)
#include <intrin.h>
static int lowest_bit(unsigned mask) {
    unsigned long at;
    _BitScanForward(&at, mask);
    return (int)at;
}
#else
static int lowest_bit(unsigned mask) { return __builtin_ctz(mask); }
#endif
#endif

typedef struct {
    int32_t id;
    float logit;
    float p;
} token_data; /* llama.h's llama_token_data */

/* The k-th largest (1 <= k <= n) of v[0..n); reorders v (Hoare's selection). */
static float kth_largest(float *v, Py_ssize_t n, Py_ssize_t k) {
    Py_ssize_t lo = 0, hi = n - 1, want = k - 1; /* index in descending order */
    while (lo < hi) {
        float pivot = v[lo + (hi - lo) / 2];
        Py_ssize_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j)
            hi = j;
        else if (want >= i)
            lo = i;
        else
            return v[want];
    }
    return v[want];
}

typedef struct {
    const float *logits;
    token_data *out;
    float *scratch;
    Py_ssize_t m, count, limit;
    float thr;
    int nan_seen;
} cut_state;

static void take(cut_state *s, Py_ssize_t i) {
    float x = s->logits[i];
    if (x != x) {
        s->nan_seen = 1;
        return;
    }
    if (x < s->thr) /* the threshold rose since the block was tested */
        return;
    s->out[s->count].id = (int32_t)i;
    s->out[s->count].logit = x;
    s->count++;
    if (s->count < s->limit)
        return;
    for (Py_ssize_t j = 0; j < s->count; j++)
        s->scratch[j] = s->out[j].logit;
    s->thr = kth_largest(s->scratch, s->count, s->m);
    Py_ssize_t kept = 0;
    for (Py_ssize_t j = 0; j < s->count; j++)
        if (s->out[j].logit >= s->thr)
            s->out[kept++] = s->out[j];
    s->count = kept;
    if (kept * 2 > s->limit) /* ties at the threshold: room to go on */
        s->limit = kept * 2;
}

static void scan(cut_state *s, Py_ssize_t n) {
    Py_ssize_t b = 0;
#ifdef HEARTH_SSE2
    const float *v = s->logits;
    for (; b + 16 <= n; b += 16) {
        __m128 t = _mm_set1_ps(s->thr);
        /* not below: at or above the threshold, or NaN (to be seen and refused) */
        unsigned mask = (unsigned)_mm_movemask_ps(_mm_cmpnlt_ps(_mm_loadu_ps(v + b), t)) |
                        (unsigned)_mm_movemask_ps(_mm_cmpnlt_ps(_mm_loadu_ps(v + b + 4), t)) << 4 |
                        (unsigned)_mm_movemask_ps(_mm_cmpnlt_ps(_mm_loadu_ps(v + b + 8), t)) << 8 |
                        (unsigned)_mm_movemask_ps(_mm_cmpnlt_ps(_mm_loadu_ps(v + b + 12), t)) << 12;
        while (mask) {
            take(s, b + lowest_bit(mask));
            mask &= mask - 1;
        }
    }
#endif
    for (; b < n; b++)
        if (!(s->logits[b] < s->thr))
            take(s, b);
}

/* Sorts the few remembered ids below the threshold, drops repeats, and merges them into out. */
static Py_ssize_t merge_remembered(token_data *out, Py_ssize_t count, token_data *extra, Py_ssize_t ne) {
    for (Py_ssize_t a = 1; a < ne; a++) {
        token_data d = extra[a];
        Py_ssize_t k = a;
        while (k > 0 && extra[k - 1].id > d.id) {
            extra[k] = extra[k - 1];
            k--;
        }
        extra[k] = d;
    }
    Py_ssize_t unique = 1;
    for (Py_ssize_t a = 1; a < ne; a++)
        if (extra[a].id != extra[unique - 1].id)
            extra[unique++] = extra[a];
    Py_ssize_t i = count - 1, j = unique - 1, k = count + unique - 1;
    while (j >= 0) {
        if (i >= 0 && out[i].id > extra[j].id)
            out[k--] = out[i--];
        else
            out[k--] = extra[j--];
    }
    return count + unique;
}

static int get(PyObject *obj, Py_buffer *view, int writable, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) != 0) {
        PyErr_Format(PyExc_TypeError, "candidates(): %s must be a C-contiguous%s buffer", what,
                     writable ? " writable" : "");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(candidates_doc,
             "candidates(logits, m, ring, ring_n, out, extra, scratch) -> int\n\n"
             "Writes to `out` (llama_token_data records) every id whose logit (float32) reaches the m-th\n"
             "largest, and every id among ring[:ring_n] (intp), ascending, with p = 0; returns how many.\n"
             "-1: a logit is NaN. -2: no finite logit is the largest (+infinity, or all -infinity).\n"
             "`extra` holds ring_n records and `scratch` len(logits) float32s, for the work.");

static PyObject *candidates(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "candidates() takes 7 arguments");
        return NULL;
    }
    Py_ssize_t m = PyLong_AsSsize_t(args[1]);
    Py_ssize_t ring_n = PyLong_AsSsize_t(args[3]);
    if ((m == -1 || ring_n == -1) && PyErr_Occurred())
        return NULL;
    /* The five buffers, in argument order; the first `held` are released at the end. */
    static const struct {
        int arg, writable;
        const char *what;
    } wanted[5] = {{0, 0, "logits"}, {2, 0, "ring"}, {4, 1, "out"}, {5, 1, "extra"}, {6, 1, "scratch"}};
    Py_buffer views[5];
    Py_buffer *const lv = &views[0], *const rv = &views[1], *const ov = &views[2], *const ev = &views[3],
                     *const sv = &views[4];
    PyObject *result = NULL;
    int held = 0;
    for (; held < 5; held++)
        if (get(args[wanted[held].arg], &views[held], wanted[held].writable, wanted[held].what) != 0)
            goto done;
    Py_ssize_t n = lv->len / (Py_ssize_t)sizeof(float);
    if (lv->len % (Py_ssize_t)sizeof(float) != 0 || n < 1 || n > INT32_MAX || m < 1 || m > n || ring_n < 0 ||
        ring_n * (Py_ssize_t)sizeof(Py_ssize_t) > rv->len || ov->len < n * (Py_ssize_t)sizeof(token_data) ||
        ev->len < ring_n * (Py_ssize_t)sizeof(token_data) || sv->len < n * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "candidates(): sizes do not fit (see its docstring)");
        goto done;
    }
    const Py_ssize_t *ring = (const Py_ssize_t *)rv->buf;
    for (Py_ssize_t r = 0; r < ring_n; r++) {
        if (ring[r] < 0 || ring[r] >= n) {
            PyErr_Format(PyExc_ValueError, "candidates(): remembered token %zd is not in the vocabulary", ring[r]);
            goto done;
        }
    }
    Py_ssize_t count;
    Py_BEGIN_ALLOW_THREADS;
    cut_state s = {(const float *)lv->buf, (token_data *)ov->buf, (float *)sv->buf, m, 0, 0, -INFINITY, 0};
    s.limit = 4 * m < 256 ? 256 : 4 * m;
    if (s.limit > n)
        s.limit = n;
    scan(&s, n);
    if (s.nan_seen) {
        count = -1;
    } else {
        token_data *extra = (token_data *)ev->buf;
        Py_ssize_t ne = 0;
        for (Py_ssize_t r = 0; r < ring_n; r++) {
            Py_ssize_t t = ring[r]; /* read once, checked again: without the GIL, another thread could write */
            if (t < 0 || t >= n)
                continue;
            float x = s.logits[t];
            if (x < s.thr) {
                extra[ne].id = (int32_t)t;
                extra[ne].logit = x;
                ne++;
            }
        }
        count = ne ? merge_remembered(s.out, s.count, extra, ne) : s.count;
        float best = -INFINITY;
        for (Py_ssize_t j = 0; j < count; j++) {
            s.out[j].p = 0.0f;
            if (s.out[j].logit > best)
                best = s.out[j].logit;
        }
        if (!(best > -INFINITY && best < INFINITY))
            count = -2;
    }
    Py_END_ALLOW_THREADS;
    result = PyLong_FromSsize_t(count);
done:
    while (held > 0)
        PyBuffer_Release(&views[--held]);
    return result;
}

static PyMethodDef methods[] = {
    {"candidates", (PyCFunction)(void (*)(void))candidates, METH_FASTCALL, candidates_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "engine._pick",
    .m_doc = "The sampler's candidate cut in one native call (engine/_pick.c).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__pick(void) { return PyModule_Create(&module); }
