/* fabctl.mesh._topology: the topology checks' three whole-mesh passes, compiled.
 *
 * - face_geometry(): each face's corners, cross product, area and longest squared edge, in one pass over the
 *   faces (fabctl.mesh.topology.Geometry; the numpy path makes a dozen passes over (m, 3) columns).
 * - half_edges(): the half-edges grouped by undirected edge (fabctl.mesh.topology.edge_table) with a
 *   counting sort on the edge's lower vertex, then each vertex's few half-edges by the upper vertex and the
 *   half-edge index. The result is exactly the numpy path's single sort of (edge key, half-edge) pairs.
 * - components(): connected components of a graph given as d neighbours per node (the faces across their
 *   edges, the corners' rotation around their vertex), by union-find.
 * - fan_certified(): which vertices' fans of faces are certified free of folds, for the self-intersection
 *   check (fabctl.mesh.intersect._fan_pairs).
 *
 * Everything is read through the buffer protocol (_buffers.h), every length and every index is checked before
 * a loop, and the loops run without the GIL. Building it is optional (pyproject.toml): without a C compiler
 * fabctl installs and runs the numpy paths; the tests compare the two.
 */
#include "_buffers.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* whether every one of the n items of idx lies in [0, bound) */
static int in_range(const int64_t *idx, Py_ssize_t n, int64_t bound) {
    int64_t bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) bad |= (idx[i] < 0) | (idx[i] >= bound);
    return !bad;
}

/* face_geometry(vertices, faces, triangles, cross, area, longest2) -> None
 *
 * vertices : (n, 3) float64; faces : (m, 3) int64 indices into vertices; written: triangles (m, 3, 3)
 * float64 corners, cross (m, 3) float64 (b - a) x (c - a), area (m,) float64 half its length, longest2 (m,)
 * float64 the longest squared edge. The numpy path's formulas in its order (built without fused multiply-adds);
 * numpy's einsum may fuse, so an area can differ from numpy's in the last bit. Coordinates must be finite
 * (intake refuses others). */
static PyObject *face_geometry(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[6];
    buf_t bufs[6];
    memset(bufs, 0, sizeof(bufs));
    if (!PyArg_ParseTuple(args, "OOOOOO", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5])) return NULL;
    static const char *names[] = {"vertices", "faces", "triangles", "cross", "area", "longest2"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 8};
    static const char *codes[] = {"d", "lq", "d", "d", "d", "d"};
    if (get_bufs(obj, bufs, 6, codes, sizes, 2, "face_geometry", names) < 0) return NULL;
    Py_ssize_t nv = items(&bufs[0]), nf = items(&bufs[1]), m = nf / 3;
    if (nv % 3 || nf % 3) return refuse(bufs, 6, "face_geometry", "vertices and faces must be (n, 3) and (m, 3)");
    if (items(&bufs[2]) != 9 * m || items(&bufs[3]) != 3 * m || items(&bufs[4]) != m || items(&bufs[5]) != m)
        return refuse(bufs, 6, "face_geometry", "triangles, cross, area and longest2 must hold (m, 3, 3), "
                                                "(m, 3), (m,) and (m,) items");
    const double *v = bufs[0].b.buf;
    const int64_t *f = bufs[1].b.buf;
    double *t = bufs[2].b.buf, *cr = bufs[3].b.buf, *ar = bufs[4].b.buf, *l2 = bufs[5].b.buf;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = in_range(f, nf, nv / 3);
    if (ok) {
        for (Py_ssize_t i = 0; i < m; i++) {
            double *c = t + 9 * i;
            for (int k = 0; k < 3; k++) memcpy(c + 3 * k, v + 3 * f[3 * i + k], 3 * sizeof(double));
            const double u0 = c[3] - c[0], u1 = c[4] - c[1], u2 = c[5] - c[2];
            const double w0 = c[6] - c[0], w1 = c[7] - c[1], w2 = c[8] - c[2];
            const double x = u1 * w2 - u2 * w1, y = u2 * w0 - u0 * w2, z = u0 * w1 - u1 * w0;
            cr[3 * i] = x;
            cr[3 * i + 1] = y;
            cr[3 * i + 2] = z;
            ar[i] = 0.5 * sqrt(x * x + y * y + z * z);
            double longest = 0.0;
            for (int e = 0; e < 3; e++) { /* edges (1, 0), (2, 1), (0, 2) */
                const double *a = c + 3 * ((e + 1) % 3), *b = c + 3 * e;
                double d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2];
                double s = d0 * d0 + d1 * d1 + d2 * d2;
                longest = e == 0 || s > longest ? s : longest;
            }
            l2[i] = longest;
        }
    }
    Py_END_ALLOW_THREADS
    if (!ok) return refuse(bufs, 6, "face_geometry", "a face index is outside the vertices");
    release(bufs, 6);
    Py_RETURN_NONE;
}

typedef struct {
    int64_t hi; /* the edge's upper vertex */
    int64_t h;  /* the half-edge */
} hh_t;

#define NHE 6

static int by_hi(const void *a, const void *b) {
    const hh_t *p = a, *q = b;
    if (p->hi != q->hi) return p->hi < q->hi ? -1 : 1;
    return (p->h > q->h) - (p->h < q->h);
}

/* the half-edge's end vertex: faces[3 f + (k + 1) % 3] for h = 3 f + k */
static inline int64_t dst_of(const int64_t *f, Py_ssize_t h) { return f[h % 3 == 2 ? h - 2 : h + 1]; }

/* half_edges(faces, n, order, edge_of_half, first, counts, edges) -> e
 *
 * faces : (m, 3) int64 indices below n; written: order (3m,) int64 the half-edges by (edge key, half-edge),
 * edge_of_half (3m,) int64 each half-edge's edge, and of first (3m,), counts (3m,) and edges (3m, 2) int64
 * the first e items: each edge's first position in order, its number of half-edges and its (lower, upper)
 * vertices. An edge's key is (lower vertex, upper vertex). */
static PyObject *half_edges(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NHE];
    buf_t bufs[NHE];
    memset(bufs, 0, sizeof(bufs));
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OnOOOOO", &obj[0], &n, &obj[1], &obj[2], &obj[3], &obj[4], &obj[5])) return NULL;
    static const char *names[] = {"faces", "order", "edge_of_half", "first", "counts", "edges"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 8};
    static const char *codes[] = {"lq", "lq", "lq", "lq", "lq", "lq"};
    if (get_bufs(obj, bufs, NHE, codes, sizes, 1, "half_edges", names) < 0) return NULL;
    Py_ssize_t nh = items(&bufs[0]);
    if (nh % 3) return refuse(bufs, NHE, "half_edges", "faces must be (m, 3)");
    if (items(&bufs[1]) != nh || items(&bufs[2]) != nh || items(&bufs[3]) != nh || items(&bufs[4]) != nh ||
        items(&bufs[5]) != 2 * nh)
        return refuse(bufs, NHE, "half_edges", "order, edge_of_half, first and counts must hold 3m items, edges 6m");
    if (n < 0) return refuse(bufs, NHE, "half_edges", "n must not be negative");
    const int64_t *f = bufs[0].b.buf;
    int64_t *order = bufs[1].b.buf, *eoh = bufs[2].b.buf, *first = bufs[3].b.buf, *counts = bufs[4].b.buf;
    int64_t *edges = bufs[5].b.buf;
    int64_t *start = calloc((size_t)n + 1, sizeof(int64_t));
    hh_t *tmp = NULL;
    Py_ssize_t tmp_cap = 0, e = 0;
    int ok = start != NULL, big_ok = 1;
    Py_BEGIN_ALLOW_THREADS
    if (ok) ok = in_range(f, nh, n);
    if (ok) {
        /* counting sort by the lower vertex; half-edges go in in index order, so each bucket is by index */
        for (Py_ssize_t h = 0; h < nh; h++) {
            int64_t a = f[h], b = dst_of(f, h);
            start[(a < b ? a : b) + 1]++;
        }
        for (Py_ssize_t v = 0; v < n; v++) start[v + 1] += start[v];
        for (Py_ssize_t h = 0; h < nh; h++) {
            int64_t a = f[h], b = dst_of(f, h);
            order[start[a < b ? a : b]++] = h;
        }
        /* start[v] is now the end of v's bucket; each bucket by (upper vertex, index), then the edges */
        Py_ssize_t lo = 0;
        for (Py_ssize_t v = 0; v < n && big_ok; v++) {
            Py_ssize_t hi_end = start[v], k = hi_end - lo;
            int64_t *run = order + lo;
            if (k > 24) { /* a vertex with many edges (a fan's tip): a real sort */
                if (k > tmp_cap) {
                    free(tmp);
                    tmp_cap = 2 * k;
                    tmp = malloc((size_t)tmp_cap * sizeof(hh_t));
                    if (!tmp) {
                        big_ok = 0;
                        break;
                    }
                }
                for (Py_ssize_t i = 0; i < k; i++) {
                    int64_t a = f[run[i]], b = dst_of(f, run[i]);
                    tmp[i].hi = a > b ? a : b;
                    tmp[i].h = run[i];
                }
                qsort(tmp, (size_t)k, sizeof(hh_t), by_hi);
                for (Py_ssize_t i = 0; i < k; i++) run[i] = tmp[i].h;
            } else { /* insertion sort: stable, so ties keep index order */
                for (Py_ssize_t i = 1; i < k; i++) {
                    int64_t h = run[i], a = f[h], b = dst_of(f, h), hi = a > b ? a : b;
                    Py_ssize_t j = i;
                    while (j > 0) {
                        int64_t g = run[j - 1], c = f[g], d = dst_of(f, g);
                        if ((c > d ? c : d) <= hi) break;
                        run[j] = g;
                        j--;
                    }
                    run[j] = h;
                }
            }
            int64_t prev = -1;
            for (Py_ssize_t i = 0; i < k; i++) {
                int64_t h = run[i], a = f[h], b = dst_of(f, h), hi = a > b ? a : b;
                if (hi != prev) {
                    first[e] = lo + i;
                    counts[e] = 0;
                    edges[2 * e] = v;
                    edges[2 * e + 1] = hi;
                    e++;
                    prev = hi;
                }
                counts[e - 1]++;
                eoh[h] = e - 1;
            }
            lo = hi_end;
        }
    }
    Py_END_ALLOW_THREADS
    int allocated = start != NULL;
    free(start);
    free(tmp);
    if (!ok && allocated) return refuse(bufs, NHE, "half_edges", "a face index is outside [0, n)");
    if (!ok || !big_ok) {
        release(bufs, NHE);
        return PyErr_NoMemory();
    }
    release(bufs, NHE);
    return PyLong_FromSsize_t(e);
}

static inline int64_t root_of(int64_t *parent, int64_t x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]]; /* path halving */
        x = parent[x];
    }
    return x;
}

/* components(nbr, d, labels) -> k
 *
 * nbr : (n, d) int64 node indices, the graph's edges i - nbr[i, j] taken as undirected; written: labels (n,)
 * int64 each node's component, numbered 0..k-1 in the order of each component's lowest node. For the graphs
 * of fabctl.mesh.topology (symmetric, or a permutation) these are the strong components too. */
static PyObject *components(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[2];
    buf_t bufs[2];
    memset(bufs, 0, sizeof(bufs));
    Py_ssize_t d;
    if (!PyArg_ParseTuple(args, "OnO", &obj[0], &d, &obj[1])) return NULL;
    static const char *names[] = {"nbr", "labels"};
    static const Py_ssize_t sizes[] = {8, 8};
    static const char *codes[] = {"lq", "lq"};
    if (get_bufs(obj, bufs, 2, codes, sizes, 1, "components", names) < 0) return NULL;
    Py_ssize_t n = items(&bufs[1]);
    Py_ssize_t nd = items(&bufs[0]); /* n * d, checked by division (the product could overflow) */
    if (d < 1 || (n > 0 ? nd % n != 0 || nd / n != d : nd != 0))
        return refuse(bufs, 2, "components", "nbr must be (n, d) with d >= 1");
    const int64_t *nbr = bufs[0].b.buf;
    int64_t *labels = bufs[1].b.buf; /* the parents first, then the labels */
    int64_t k = 0;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = in_range(nbr, nd, n);
    if (ok) {
        for (Py_ssize_t i = 0; i < n; i++) labels[i] = i;
        for (Py_ssize_t i = 0; i < n; i++) {
            for (Py_ssize_t j = 0; j < d; j++) {
                int64_t a = root_of(labels, i), b = root_of(labels, nbr[i * d + j]);
                if (a < b) labels[b] = a; /* the lower root stays: a root is its component's lowest node */
                else if (b < a) labels[a] = b;
            }
        }
        /* a root is below every other node of its component, so one pass in order numbers the roots first */
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t p = labels[i];
            labels[i] = p == i ? -(++k) : labels[p]; /* roots: -(label + 1); the others copy their root's */
        }
        for (Py_ssize_t i = 0; i < n; i++) labels[i] = labels[i] < 0 ? -labels[i] - 1 : labels[i];
    }
    Py_END_ALLOW_THREADS
    if (!ok) return refuse(bufs, 2, "components", "a neighbour index is outside [0, n)");
    release(bufs, 2);
    return PyLong_FromSsize_t((Py_ssize_t)k);
}

/* fan_certified(vertices, faces, cross, ok) -> None
 *
 * vertices : (n, 3) float64; faces : (m, 3) int64; cross : (m, 3) float64 the faces' cross products; written:
 * ok (n,) uint8, 1 where the vertex's fan is certified (fabctl.mesh.intersect._fan_pairs): projected on the
 * plane across the vertex normal (the sum of its faces' cross products), every corner at the vertex turns the
 * same way and the corners add up to one full turn. The numpy path's formulas, summed corner by corner as
 * numpy's bincount adds them (its einsum dot products may differ in the last bit). */
static PyObject *fan_certified(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[4];
    buf_t bufs[4];
    memset(bufs, 0, sizeof(bufs));
    if (!PyArg_ParseTuple(args, "OOOO", &obj[0], &obj[1], &obj[2], &obj[3])) return NULL;
    static const char *names[] = {"vertices", "faces", "cross", "ok"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 1};
    static const char *codes[] = {"d", "lq", "d", "B?"};
    if (get_bufs(obj, bufs, 4, codes, sizes, 3, "fan_certified", names) < 0) return NULL;
    Py_ssize_t n = items(&bufs[0]) / 3, m = items(&bufs[1]) / 3;
    if (items(&bufs[0]) % 3 || items(&bufs[1]) % 3 || items(&bufs[2]) != 3 * m || items(&bufs[3]) != n)
        return refuse(bufs, 4, "fan_certified", "vertices, faces and cross must be (n, 3), (m, 3) and (m, 3), "
                                               "ok (n,)");
    const double *v = bufs[0].b.buf, *cr = bufs[2].b.buf;
    const int64_t *f = bufs[1].b.buf;
    uint8_t *ok = bufs[3].b.buf;
    double *nv = calloc((size_t)(4 * n) + 1, sizeof(double)); /* (n, 3) normals, then (n,) angle totals */
    int good = nv != NULL, in = 1;
    Py_BEGIN_ALLOW_THREADS
    if (good) in = in_range(f, 3 * m, n);
    if (good && in) {
        double *total = nv + 3 * n;
        memset(ok, 1, (size_t)n);
        for (Py_ssize_t i = 0; i < 3 * m; i++)
            for (int k = 0; k < 3; k++) nv[3 * f[i] + k] += cr[3 * (i / 3) + k];
        for (Py_ssize_t u = 0; u < n; u++) {
            double *q = nv + 3 * u, ln = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
            if (ln > 0) {
                q[0] /= ln;
                q[1] /= ln;
                q[2] /= ln;
            } else {
                ok[u] = 0;
            }
        }
        for (Py_ssize_t i = 0; i < m; i++) {
            const double *c[3] = {v + 3 * f[3 * i], v + 3 * f[3 * i + 1], v + 3 * f[3 * i + 2]};
            const double *N = cr + 3 * i;
            double e[3][3];
            for (int k = 0; k < 3; k++)
                for (int x = 0; x < 3; x++) e[k][x] = c[(k + 1) % 3][x] - c[k][x];
            for (int k = 0; k < 3; k++) {
                const double *a = e[k], *mb = e[(k + 2) % 3], *q = nv + 3 * f[3 * i + k];
                double Nn = N[0] * q[0] + N[1] * q[1] + N[2] * q[2];
                double an = a[0] * q[0] + a[1] * q[1] + a[2] * q[2];
                double bn = mb[0] * q[0] + mb[1] * q[1] + mb[2] * q[2];
                double ab = a[0] * mb[0] + a[1] * mb[1] + a[2] * mb[2];
                double ang = atan2(Nn, an * bn - ab);
                total[f[3 * i + k]] += ang;
                if (ang <= 1e-12) ok[f[3 * i + k]] = 0;
            }
        }
        for (Py_ssize_t u = 0; u < n; u++)
            if (!(fabs(total[u] - 2.0 * M_PI) < 1e-6)) ok[u] = 0;
    }
    Py_END_ALLOW_THREADS
    free(nv);
    if (!good) {
        release(bufs, 4);
        return PyErr_NoMemory();
    }
    if (!in) return refuse(bufs, 4, "fan_certified", "a face index is outside the vertices");
    release(bufs, 4);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"fan_certified", fan_certified, METH_VARARGS, "Which vertex fans are certified free of folds."},
    {"face_geometry", face_geometry, METH_VARARGS, "Corners, cross products, areas, longest squared edges."},
    {"half_edges", half_edges, METH_VARARGS, "Half-edges grouped by undirected edge."},
    {"components", components, METH_VARARGS, "Connected components of a fixed-degree graph."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_topology", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__topology(void) { return PyModule_Create(&module); }
