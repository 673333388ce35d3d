/* fabctl.mesh._balls: the wall thickness's shrinking balls against the surface samples, compiled.
 *
 * One function, shrink(), the per-sample loop of fabctl.mesh.thickness._balls: a ball tangent at p (outward
 * normal n, centre p - r n) that holds no facing sample doubles, up to cap_r, until it does; then it shrinks
 * to the ball through the facing sample that gives the smallest one, until it holds none. A sample q faces p
 * when n_q . n <= -facing_cos; it is inside when |c - q| < r (1 - 1e-9). A ball of radius r is tested against
 * the sample level of spacing about r / r_fine (as the numpy path does), and against *every* sample of that
 * level inside it: the samples of each level are bucketed in a grid of cubes of side r_fine x spacing, and
 * the cubes overlapping the ball are scanned. (The numpy path looks at the 8, then 32, nearest samples.)
 *
 * A second function, refine(), is the exact pass of fabctl.mesh.thickness._refine: the same shrinking against
 * the exact closest point of each candidate triangle.
 *
 * Arrays through the buffer protocol (_buffers.h), lengths checked before the loop, no GIL in the loop.
 * Building it is optional (pyproject.toml): without a C compiler fabctl runs the numpy path.
 */
#include "_buffers.h"
#include <math.h>
#include <stdint.h>

#define NBUF 12

static inline double dot3(const double *u, const double *v) { return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]; }

/* the radius of the ball tangent at p (outward normal n, centre p - r n) through x, |p - x|^2 / (2 n . (p - x)),
 * when x lies inside the current ball (centre c, |c - x|^2 < lim2); otherwise INFINITY */
static inline double through(const double *p, const double *n, const double *c, double lim2, const double *x) {
    double e[3] = {c[0] - x[0], c[1] - x[1], c[2] - x[2]}, d[3] = {p[0] - x[0], p[1] - x[1], p[2] - x[2]};
    if (dot3(e, e) >= lim2) return INFINITY;
    double den = 2.0 * dot3(d, n);
    return den > 0 ? dot3(d, d) / den : INFINITY;
}

/* the entries [lo, hi) of cell ``key`` among the sorted keys of one level, or lo == hi */
static void cell_range(const int64_t *keys, const int64_t *start, Py_ssize_t c0, Py_ssize_t c1, int64_t key,
                       Py_ssize_t *lo, Py_ssize_t *hi) {
    Py_ssize_t a = c0, b = c1;
    while (a < b) {
        Py_ssize_t mid = a + (b - a) / 2;
        if (keys[mid] < key) a = mid + 1;
        else b = mid;
    }
    if (a < c1 && keys[a] == key) {
        *lo = start[a];
        *hi = start[a + 1];
    } else {
        *lo = *hi = 0;
    }
}

/* the squared distance from v to the interval [a, a + side] along one axis, less a margin of 1e-9 sides for
 * the rounding of a sample's cube index: short, never long */
static inline double gap(double v, double a, double side) {
    double d = v < a ? a - v : (v > a + side ? v - a - side : 0.0);
    d -= 1e-9 * side;
    return d > 0 ? d * d : 0.0;
}

/* shrink(P, N, r0, SP, SN, keys, cstart, lcells, origin, dims, out_r, out_contact,
 *        base, h_base, r_fine, cap_r, facing_cos, max_iter) -> None
 *
 * P, N : (q, 3) float64 the balls' points and outward unit normals; r0 : (q,) float64 starting radii;
 * SP, SN : (S, 3) float64 the samples of every level (level by level, each level ordered by cell key) and
 * their normals; keys : (C,) int64 each level's occupied cell keys, sorted within the level; cstart : (C + 1,)
 * int64 the sample range [cstart[i], cstart[i + 1]) of each cell; lcells : (L + 1,) int64 the cells of level
 * l are [lcells[l], lcells[l + 1]); origin : (3,) float64 the grids' common origin; dims : (L, 3) int64 cells
 * per axis, for cubes of side cube * h_base * 2**(l - base) at level l >= base;
 * out_r : (q,) float64 final radii; out_contact : (q,) int64 the sample each ball last shrank to (-1: none).
 * base : the level the balls' own samples belong to; h_base : its spacing; levels above base have spacing
 * h_base * 2**(l - base). */
static PyObject *shrink(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NBUF];
    buf_t bufs[NBUF];
    memset(bufs, 0, sizeof(bufs));
    Py_ssize_t base, max_iter;
    double h_base, r_fine, cube, cap_r, facing_cos;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOndddddn", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5],
                          &obj[6], &obj[7], &obj[8], &obj[9], &obj[10], &obj[11], &base, &h_base, &r_fine, &cube,
                          &cap_r, &facing_cos, &max_iter)) {
        return NULL;
    }
    static const char *names[] = {"P", "N", "r0", "SP", "SN", "keys", "cstart", "lcells", "origin", "dims",
                                  "out_r", "out_contact"};
    static const char *codes[] = {"d", "d", "d", "d", "d", "lq", "lq", "lq", "d", "lq", "d", "lq"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
    if (get_bufs(obj, bufs, NBUF, codes, sizes, 10, "shrink", names) < 0) return NULL;
    const double *P = bufs[0].b.buf, *N = bufs[1].b.buf, *r0 = bufs[2].b.buf;
    const double *SP = bufs[3].b.buf, *SN = bufs[4].b.buf;
    const int64_t *keys = bufs[5].b.buf, *cstart = bufs[6].b.buf, *lcells = bufs[7].b.buf;
    const double *origin = bufs[8].b.buf;
    const int64_t *dims = bufs[9].b.buf;
    double *out_r = bufs[10].b.buf;
    int64_t *out_c = bufs[11].b.buf;
    Py_ssize_t q = items(&bufs[2]), S = items(&bufs[3]) / 3, C = items(&bufs[5]), L = items(&bufs[7]) - 1;
    const char *bad = NULL;
    if (items(&bufs[0]) != 3 * q || items(&bufs[1]) != 3 * q) bad = "P and N must be (q, 3) for q radii";
    else if (items(&bufs[3]) != 3 * S || items(&bufs[4]) != 3 * S) bad = "SP and SN must both be (S, 3)";
    else if (items(&bufs[6]) != C + 1) bad = "cstart must have one more entry than keys";
    else if (L < 1 || items(&bufs[9]) != 3 * L) bad = "lcells and dims must describe the same levels";
    else if (items(&bufs[8]) != 3) bad = "origin must have 3 entries";
    else if (items(&bufs[10]) != q || items(&bufs[11]) != q) bad = "out_r and out_contact must have q entries";
    else if (base < 0 || base >= L) bad = "the base level is out of range";
    else if (!(h_base > 0) || !(r_fine > 0) || !(cube > 0) || !(cap_r > 0) || max_iter < 0)
        bad = "a parameter is out of range";
    else if (lcells[0] != 0 || lcells[L] != C) bad = "lcells does not span the cells";
    else if (C > 0 && (cstart[0] < 0 || cstart[C] > S)) bad = "cstart is out of the samples' range";
    for (Py_ssize_t l = 0; l < L && !bad; l++) {
        if (lcells[l + 1] < lcells[l]) bad = "lcells decreases";
        for (int k = 0; k < 3 && !bad; k++) if (dims[3 * l + k] < 1) bad = "dims must be positive";
    }
    for (Py_ssize_t c = 0; c < C && !bad; c++) if (cstart[c + 1] < cstart[c]) bad = "cstart decreases";
    for (Py_ssize_t i = 0; i < q && !bad; i++) if (!(r0[i] > 0)) bad = "a starting radius is not positive";
    if (bad) return refuse(bufs, NBUF, "shrink", bad);
    Py_BEGIN_ALLOW_THREADS
    const double keep = 1.0 - 1e-9;
    for (Py_ssize_t i = 0; i < q; i++) {
        const double *p = P + 3 * i, *n = N + 3 * i;
        double r = r0[i];
        int growing = 1;
        int64_t contact = -1;
        for (Py_ssize_t it = 0; it < max_iter; it++) {
            /* the level of spacing about r / r_fine: base + ceil(log2(r / (r_fine h_base))), within the levels */
            Py_ssize_t lv = base;
            double serves = r_fine * h_base, side = cube * h_base;
            while (lv + 1 < L && r > serves) {
                lv++;
                serves *= 2.0;
                side *= 2.0;
            }
            double c[3] = {p[0] - r * n[0], p[1] - r * n[1], p[2] - r * n[2]};
            double lim = r * keep, lim2 = lim * lim;
            const int64_t *dm = dims + 3 * lv;
            int64_t i0[3], i1[3];
            int empty = 0;
            for (int k = 0; k < 3; k++) {
                double a = floor((c[k] - r - origin[k]) / side), b = floor((c[k] + r - origin[k]) / side);
                if (b < 0 || a > (double)(dm[k] - 1)) empty = 1;
                i0[k] = a < 0 ? 0 : (int64_t)a;
                i1[k] = b > (double)(dm[k] - 1) ? dm[k] - 1 : (int64_t)b;
            }
            double best = INFINITY;
            int64_t best_s = -1;
            for (int64_t x = i0[0]; x <= i1[0] && !empty; x++) {
                double gx = gap(c[0], origin[0] + (double)x * side, side);
                for (int64_t y = i0[1]; y <= i1[1]; y++) {
                    double gxy = gx + gap(c[1], origin[1] + (double)y * side, side);
                    if (gxy >= lim2) continue;
                    for (int64_t z = i0[2]; z <= i1[2]; z++) {
                        /* a cube wholly outside the ball holds nothing inside it */
                        if (gxy + gap(c[2], origin[2] + (double)z * side, side) >= lim2) continue;
                        Py_ssize_t s0, s1;
                        cell_range(keys, cstart, lcells[lv], lcells[lv + 1], (x * dm[1] + y) * dm[2] + z, &s0, &s1);
                        for (Py_ssize_t s = s0; s < s1; s++) {
                            if (dot3(SN + 3 * s, n) > -facing_cos) continue; /* not facing p */
                            double rn = through(p, n, c, lim2, SP + 3 * s);
                            if (rn < best) {
                                best = rn;
                                best_s = s;
                            }
                        }
                    }
                }
            }
            if (best < lim) {
                r = best;
                contact = best_s;
                growing = 0;
                /* every facing sample of this level in the old ball was seen, and one inside a ball tangent at
                 * p gives a smaller ball than it: the new ball holds none of them. Only a finer level can
                 * still hold one. */
                if (lv == base || r > serves / 2.0) break;
            } else if (growing && r < cap_r) {
                r = 2.0 * r < cap_r ? 2.0 * r : cap_r;
            } else {
                break;
            }
        }
        out_r[i] = r;
        out_c[i] = contact;
    }
    Py_END_ALLOW_THREADS
    release(bufs, NBUF);
    Py_RETURN_NONE;
}

/* out = a + s (b - a) */
static inline void lerp3(const double *a, const double *b, double s, double *out) {
    for (int k = 0; k < 3; k++) out[k] = a[k] + s * (b[k] - a[k]);
}

/* the point of triangle (a, b, c) closest to p, into out: by the Voronoi region of the triangle (a corner, an
 * edge or the face) that p lies in, from the dot products of the edges from a with p's offsets from each
 * corner */
static void closest_on_triangle(const double *a, const double *b, const double *c, const double *p, double *out) {
    double ab[3], ac[3], pa[3], pb[3], pc[3];
    for (int k = 0; k < 3; k++) {
        ab[k] = b[k] - a[k];
        ac[k] = c[k] - a[k];
        pa[k] = p[k] - a[k];
        pb[k] = p[k] - b[k];
        pc[k] = p[k] - c[k];
    }
    double d1 = dot3(ab, pa), d2 = dot3(ac, pa), d3 = dot3(ab, pb), d4 = dot3(ac, pb), d5 = dot3(ab, pc),
           d6 = dot3(ac, pc);
    double va = d3 * d6 - d5 * d4, vb = d5 * d2 - d1 * d6, vc = d1 * d4 - d3 * d2;
    const double *corner = NULL;
    if (d1 <= 0 && d2 <= 0) corner = a;
    else if (d3 >= 0 && d4 <= d3) corner = b;
    else if (d6 >= 0 && d5 <= d6) corner = c;
    if (corner) {
        memcpy(out, corner, 3 * sizeof(double));
    } else if (vc <= 0 && d1 >= 0 && d3 <= 0) {
        lerp3(a, b, d1 / (d1 - d3), out); /* edge ab */
    } else if (vb <= 0 && d2 >= 0 && d6 <= 0) {
        lerp3(a, c, d2 / (d2 - d6), out); /* edge ac */
    } else if (va <= 0 && d4 - d3 >= 0 && d5 - d6 >= 0) {
        lerp3(b, c, (d4 - d3) / ((d4 - d3) + (d5 - d6)), out); /* edge bc */
    } else if (!(va + vb + vc != 0)) {
        memcpy(out, a, 3 * sizeof(double)); /* degenerate: its first corner (the facing test excludes them) */
    } else { /* the face */
        double v = vb / (va + vb + vc), w = vc / (va + vb + vc);
        for (int k = 0; k < 3; k++) out[k] = a[k] + ab[k] * v + ac[k] * w;
    }
}

#define NREF 8

/* refine(P, N, r, start, tri, T, out_r, out_contact, max_iter) -> None
 *
 * The exact pass of fabctl.mesh.thickness._refine for q balls: P, N : (q, 3) float64 points and outward unit
 * normals; r : (q,) float64 radii from the sample pass; start : (q + 1,) int64 and tri : (k,) int64 the
 * candidate triangles of ball i, tri[start[i]:start[i + 1]]; T : (m, 3, 3) float64 the triangles; out_r :
 * (q,) float64 and out_contact : (q, 3) float64, written for the balls that shrink (left alone otherwise).
 * While the exact closest point of a candidate lies inside the ball, the ball shrinks to the smallest ball
 * tangent at p through such a point. */
static PyObject *refine(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NREF];
    buf_t bufs[NREF];
    memset(bufs, 0, sizeof(bufs));
    Py_ssize_t max_iter;
    if (!PyArg_ParseTuple(args, "OOOOOOOOn", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &obj[6],
                          &obj[7], &max_iter)) {
        return NULL;
    }
    static const char *names[] = {"P", "N", "r", "start", "tri", "T", "out_r", "out_contact"};
    static const char *codes[] = {"d", "d", "d", "lq", "lq", "d", "d", "d"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 8, 8, 8};
    if (get_bufs(obj, bufs, NREF, codes, sizes, 6, "refine", names) < 0) return NULL;
    const double *P = bufs[0].b.buf, *N = bufs[1].b.buf, *R = bufs[2].b.buf, *T = bufs[5].b.buf;
    const int64_t *start = bufs[3].b.buf, *tri = bufs[4].b.buf;
    double *out_r = bufs[6].b.buf, *out_c = bufs[7].b.buf;
    Py_ssize_t q = items(&bufs[2]), k = items(&bufs[4]), m = items(&bufs[5]) / 9;
    const char *bad = NULL;
    if (items(&bufs[0]) != 3 * q || items(&bufs[1]) != 3 * q) bad = "P and N must be (q, 3) for q radii";
    else if (items(&bufs[3]) != q + 1) bad = "start must have q + 1 entries";
    else if (items(&bufs[5]) != 9 * m) bad = "T must be (m, 3, 3)";
    else if (items(&bufs[6]) != q || items(&bufs[7]) != 3 * q) bad = "out_r must be (q,) and out_contact (q, 3)";
    else if (start[0] != 0 || start[q] != k) bad = "start does not span the candidates";
    else if (max_iter < 0) bad = "max_iter is negative";
    for (Py_ssize_t i = 0; i < q && !bad; i++) if (start[i + 1] < start[i]) bad = "start decreases";
    for (Py_ssize_t j = 0; j < k && !bad; j++) if (tri[j] < 0 || tri[j] >= m) bad = "a triangle index is out of range";
    if (bad) return refuse(bufs, NREF, "refine", bad);
    Py_BEGIN_ALLOW_THREADS
    const double keep = 1.0 - 1e-9;
    for (Py_ssize_t i = 0; i < q; i++) {
        const double *p = P + 3 * i, *n = N + 3 * i;
        double r = R[i];
        for (Py_ssize_t it = 0; it < max_iter; it++) {
            double c[3] = {p[0] - r * n[0], p[1] - r * n[1], p[2] - r * n[2]};
            double lim = r * keep, lim2 = lim * lim, best = INFINITY, bx[3] = {0, 0, 0}, x[3];
            for (Py_ssize_t j = start[i]; j < start[i + 1]; j++) {
                const double *t = T + 9 * tri[j];
                closest_on_triangle(t, t + 3, t + 6, c, x);
                double rn = through(p, n, c, lim2, x);
                if (rn < best) {
                    best = rn;
                    memcpy(bx, x, sizeof(bx));
                }
            }
            if (!(best < lim)) break;
            r = best;
            out_r[i] = r;
            memcpy(out_c + 3 * i, bx, sizeof(bx));
        }
    }
    Py_END_ALLOW_THREADS
    release(bufs, NREF);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"refine", refine, METH_VARARGS,
     "refine(P, N, r, start, tri, T, out_r, out_contact, max_iter) -> None\n\n"
     "The exact pass: balls at P (normals N, radii r) shrunk against their candidate triangles."},
    {"shrink", shrink, METH_VARARGS,
     "shrink(P, N, r0, SP, SN, keys, cstart, lcells, origin, dims, out_r, out_contact,\n"
     "       base, h_base, r_fine, cap_r, facing_cos, max_iter) -> None\n\n"
     "Shrinking balls at points P (normals N) from radii r0 against every facing sample inside them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_balls", "The wall thickness's shrinking balls (fabctl.mesh.thickness).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__balls(void) { return PyModule_Create(&module); }
