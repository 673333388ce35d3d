/* fabctl.mesh._cellpairs: the self-intersection broad phase's inner loop, compiled.
 *
 * One function, cell_pairs(), over a fabctl.mesh.intersect.TriangleGrid: for every occupied cell, every pair
 * of its entries whose float32 boxes (rounded outwards) overlap on all three axes, that is owned by the cell
 * (along every axis the cell is the first cell of one of the two boxes), and whose triangles share no
 * vertex. That is exactly the set the numpy path (TriangleGrid.sweep + chunk_pairs) produces; the tests
 * compare the two. Everything is read through the buffer protocol (_buffers.h), every length is checked
 * against the others before the loop, and the loop runs without the GIL.
 *
 * A second function, plane_keep(), is the first pair filter (fabctl.mesh.intersect._plane_reject) over the
 * pairs found: the triangles' corners against each other's planes.
 *
 * Five more build the grid itself (fabctl.mesh.intersect.TriangleGrid.build): boxes() the triangles' boxes
 * (and boxes32() as float32, rounded outwards),
 * near_hits() which of them share a cell with the boxes a grid will be asked about, grid_count() the entries a
 * cell size gives, then grid_fill() every (cell, box) entry in cell order by a counting sort.
 *
 * Building it is optional (pyproject.toml): without a C compiler fabctl installs and runs the numpy path.
 */
#include "_buffers.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define NBUF 14

typedef struct {
    float x;      /* the box's lower x */
    Py_ssize_t e; /* its grid entry */
} xe_t;

static int by_x(const void *a, const void *b) {
    const xe_t *p = a, *q = b;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->e > q->e) - (p->e < q->e);
}

/* cell_pairs(ustart, tri, first, lo0, lo1, lo2, hi0, hi1, hi2, f0, f1, f2, out_i, out_j, cell, row)
 *     -> (written, next_cell, next_row)
 *
 * ustart : (c + 1,) int64 entry range of each occupied cell; tri : (k,) int64 triangle of each entry;
 * first : (k,) uint8 "first cell of the box" bits per axis; lo*, hi* : (m,) float32 box columns by triangle;
 * f* : (m,) int64 corner vertex columns by triangle; out_i, out_j : (cap,) int64, written from 0.
 * Starts at row ``row`` (an entry, in the cell's x order) of occupied cell ``cell`` and stops before a row
 * that might not fit in the buffers, so the pairs come in chunks of at most ``cap``: call again from
 * (next_cell, next_row) until next_cell is c. ``cap`` must hold the widest cell's entries. */
static PyObject *cell_pairs(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NBUF];
    buf_t bufs[NBUF];
    memset(bufs, 0, sizeof(bufs));
    Py_ssize_t c_from, row_from;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOnn", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5],
                          &obj[6], &obj[7], &obj[8], &obj[9], &obj[10], &obj[11], &obj[12], &obj[13], &c_from,
                          &row_from)) {
        return NULL;
    }
    static const char *names[] = {"ustart", "tri", "first", "lo0", "lo1", "lo2", "hi0", "hi1", "hi2",
                                  "f0", "f1", "f2", "out_i", "out_j"};
    static const Py_ssize_t sizes[] = {8, 8, 1, 4, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8};
    /* int64, uint8, float32 */
    static const char *codes[] = {"lq", "lq", "B", "f", "f", "f", "f", "f", "f", "lq", "lq", "lq", "lq", "lq"};
    if (get_bufs(obj, bufs, NBUF, codes, sizes, 12, "cell_pairs", names) < 0) return NULL;
    const int64_t *ustart = bufs[0].b.buf;
    const int64_t *tri = bufs[1].b.buf;
    const uint8_t *first = bufs[2].b.buf;
    const float *lo[3] = {bufs[3].b.buf, bufs[4].b.buf, bufs[5].b.buf};
    const float *hi[3] = {bufs[6].b.buf, bufs[7].b.buf, bufs[8].b.buf};
    const int64_t *fv[3] = {bufs[9].b.buf, bufs[10].b.buf, bufs[11].b.buf};
    int64_t *out_i = bufs[12].b.buf;
    int64_t *out_j = bufs[13].b.buf;
    Py_ssize_t nu = bufs[0].b.len / 8, k = bufs[1].b.len / 8, m = bufs[3].b.len / 4;
    Py_ssize_t cap = bufs[12].b.len / 8;
    const char *bad = NULL;
    if (bufs[2].b.len != k) bad = "first and tri differ in length";
    for (int i = 4; i < 9 && !bad; i++) if (bufs[i].b.len / 4 != m) bad = "the box columns differ in length";
    for (int i = 9; i < 12 && !bad; i++) if (bufs[i].b.len / 8 != m) bad = "the corner columns and boxes differ";
    if (!bad && bufs[13].b.len / 8 != cap) bad = "out_i and out_j differ in length";
    if (!bad && nu < 1) bad = "ustart is empty";
    if (!bad && (ustart[0] != 0 || ustart[nu - 1] != k)) bad = "ustart does not span the entries";
    for (Py_ssize_t c = 0; c + 1 < nu && !bad; c++) if (ustart[c + 1] < ustart[c]) bad = "ustart decreases";
    for (Py_ssize_t e = 0; e < k && !bad; e++) if (tri[e] < 0 || tri[e] >= m) bad = "a triangle index is out of range";
    if (!bad && (c_from < 0 || c_from >= nu || row_from < 0 ||
                 (c_from + 1 < nu && row_from >= ustart[c_from + 1] - ustart[c_from] && row_from > 0)))
        bad = "the start cell or row is out of range";
    if (bad) return refuse(bufs, NBUF, "cell_pairs", bad);
    Py_ssize_t widest = 0;
    for (Py_ssize_t c = 0; c + 1 < nu; c++) {
        if (ustart[c + 1] - ustart[c] > widest) widest = ustart[c + 1] - ustart[c];
    }
    if (cap < widest) {
        release(bufs, NBUF);
        PyErr_Format(PyExc_ValueError, "cell_pairs: the buffers hold %zd pairs, fewer than the widest cell's %zd "
                     "entries", cap, widest);
        return NULL;
    }
    /* one cell's entries, gathered: box (6 floats), corners (3), first bits, triangle */
    float *box = malloc(sizeof(float) * 6 * (size_t)(widest ? widest : 1));
    int64_t *cor = malloc(sizeof(int64_t) * 4 * (size_t)(widest ? widest : 1));
    uint8_t *fb = malloc((size_t)(widest ? widest : 1));
    xe_t *ord = malloc(sizeof(xe_t) * (size_t)(widest ? widest : 1));
    if (!box || !cor || !fb || !ord) {
        free(box); free(cor); free(fb); free(ord);
        release(bufs, NBUF);
        return PyErr_NoMemory();
    }
    Py_ssize_t found = 0, c = c_from, row = row_from;
    int full = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; c + 1 < nu && !full; c++, row = 0) {
        Py_ssize_t a0 = ustart[c], n = ustart[c + 1] - a0;
        if (n < 2) continue;
        /* the cell's entries in order of their boxes' lower x, then gathered in that order: insertion sort
         * for the usual tens of entries, qsort for a crowded cell (O(n log n) however many) */
        for (Py_ssize_t a = 0; a < n; a++) {
            float x0 = lo[0][tri[a0 + a]];
            if (n > 48) {
                ord[a].x = x0;
                ord[a].e = a0 + a;
                continue;
            }
            Py_ssize_t s = a;
            while (s > 0 && ord[s - 1].x > x0) {
                ord[s] = ord[s - 1];
                s--;
            }
            ord[s].x = x0;
            ord[s].e = a0 + a;
        }
        if (n > 48) qsort(ord, (size_t)n, sizeof(xe_t), by_x);
        for (Py_ssize_t a = 0; a < n; a++) {
            int64_t t = tri[ord[a].e];
            float *bx = box + 6 * a;
            bx[0] = ord[a].x; bx[1] = hi[0][t]; bx[2] = lo[1][t]; bx[3] = hi[1][t]; bx[4] = lo[2][t]; bx[5] = hi[2][t];
            int64_t *cr = cor + 4 * a;
            cr[0] = fv[0][t]; cr[1] = fv[1][t]; cr[2] = fv[2][t]; cr[3] = t;
            fb[a] = first[ord[a].e];
        }
        for (Py_ssize_t a = row; a + 1 < n; a++) {
            if (found + (n - a - 1) > cap) { /* this row might not fit: the next call starts here */
                row = a;
                full = 1;
                break;
            }
            const float *ba = box + 6 * a;
            const int64_t *ca = cor + 4 * a;
            uint8_t fa = fb[a];
            for (Py_ssize_t b = a + 1; b < n; b++) {
                const float *bb = box + 6 * b;
                if (bb[0] > ba[1]) break; /* sorted by lower x: no later box reaches back to a */
                /* branch-free: these tests fail about half the time, unpredictably */
                if (!((ba[2] <= bb[3]) & (bb[2] <= ba[3]) & (ba[4] <= bb[5]) & (bb[4] <= ba[5]) &
                      ((fa | fb[b]) == 7))) continue;
                const int64_t *cb = cor + 4 * b;
                if (ca[0] == cb[0] || ca[0] == cb[1] || ca[0] == cb[2] || ca[1] == cb[0] || ca[1] == cb[1] ||
                    ca[1] == cb[2] || ca[2] == cb[0] || ca[2] == cb[1] || ca[2] == cb[2]) continue;
                out_i[found] = ca[3];
                out_j[found] = cb[3];
                found++;
            }
        }
        if (full) break;
    }
    Py_END_ALLOW_THREADS
    free(box); free(cor); free(fb); free(ord);
    release(bufs, NBUF);
    if (!full) {
        c = nu - 1;
        row = 0;
    }
    return Py_BuildValue("nnn", found, c, row);
}

/* Triangle b's corners against triangle a's plane, as fabctl.mesh.intersect._sides: bit 0 strictly on one
 * side, bit 1 crosses the plane, bit 2 lies in it. */
static int sides(const double *unit_a, double off_a, const double *tb, double lo_lim, double hi_lim) {
    int above = 0, below = 0, all_above = 1, all_below = 1, flat = 1;
    for (int k = 0; k < 3; k++) {
        const double *c = tb + 3 * k;
        double d = (c[0] * unit_a[0] + c[1] * unit_a[1]) + c[2] * unit_a[2] - off_a;
        above |= d > lo_lim;
        below |= d < -lo_lim;
        all_above &= d > hi_lim;
        all_below &= d < -hi_lim;
        flat &= fabs(d) <= hi_lim;
    }
    return (all_above | all_below) | ((above & below) << 1) | (flat << 2);
}

#define NPLANE 6

/* plane_keep(i, j, unit, off, T, keep, tol) -> int
 *
 * fabctl.mesh.intersect._plane_reject over face pairs (i, j) : (k,) int64 sharing no vertex: keep[p] (uint8,
 * written) is 1 when neither triangle lies strictly on one side of the other's plane and one crosses the
 * other's plane, or both lie in one plane. unit : (m, 3) float64 unit normals; off : (m,) float64 unit .
 * first corner; T : (m, 3, 3) float64 corners; tol : the contact tolerance (mm). Returns how many are kept. */
static PyObject *plane_keep(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NPLANE];
    buf_t bufs[NPLANE];
    memset(bufs, 0, sizeof(bufs));
    double tol;
    if (!PyArg_ParseTuple(args, "OOOOOOd", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &tol)) {
        return NULL;
    }
    static const char *names[] = {"i", "j", "unit", "off", "T", "keep"};
    static const char *codes[] = {"lq", "lq", "d", "d", "d", "B?"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 1};
    if (get_bufs(obj, bufs, NPLANE, codes, sizes, 5, "plane_keep", names) < 0) return NULL;
    const int64_t *I = bufs[0].b.buf, *J = bufs[1].b.buf;
    const double *unit = bufs[2].b.buf, *off = bufs[3].b.buf, *T = bufs[4].b.buf;
    uint8_t *keep = bufs[5].b.buf;
    Py_ssize_t k = items(&bufs[0]), m = items(&bufs[3]);
    const char *bad = NULL;
    if (items(&bufs[1]) != k || items(&bufs[5]) != k) bad = "i, j and keep differ in length";
    else if (items(&bufs[2]) != 3 * m || items(&bufs[4]) != 9 * m) bad = "unit, off and T describe different faces";
    else if (!(tol >= 0)) bad = "tol must be >= 0";
    for (Py_ssize_t p = 0; p < k && !bad; p++)
        if (I[p] < 0 || I[p] >= m || J[p] < 0 || J[p] >= m) bad = "a face index is out of range";
    if (bad) return refuse(bufs, NPLANE, "plane_keep", bad);
    Py_ssize_t kept = 0;
    Py_BEGIN_ALLOW_THREADS
    double lo_lim = tol * (1.0 - 1e-6), hi_lim = tol * (1.0 + 1e-6);
    for (Py_ssize_t p = 0; p < k; p++) {
        int64_t a = I[p], b = J[p];
        int sj = sides(unit + 3 * a, off[a], T + 9 * b, lo_lim, hi_lim);
        int ok = 0;
        if (!(sj & 1)) {
            int si = sides(unit + 3 * b, off[b], T + 9 * a, lo_lim, hi_lim);
            ok = (!(si & 1) && ((si | sj) & 2)) || ((si & 4) && (sj & 4));
        }
        keep[p] = (uint8_t)ok;
        kept += ok;
    }
    Py_END_ALLOW_THREADS
    release(bufs, NPLANE);
    return PyLong_FromSsize_t(kept);
}

/* a coordinate's cell along one axis, as numpy's floor((x - origin) / g) cast to int64 */
static inline int64_t cell_of(double x, double origin, double g) { return (int64_t)floor((x - origin) / g); }

/* box i's first (c0) and last (c1) cells along each axis, from per-axis box columns lo, hi */
static inline void box_cells(const double *const *lo, const double *const *hi, Py_ssize_t i, const double *o,
                             double g, int64_t *c0, int64_t *c1) {
    for (int a = 0; a < 3; a++) {
        c0[a] = cell_of(lo[a][i], o[a], g);
        c1[a] = cell_of(hi[a][i], o[a], g);
    }
}

#define NGRID 6

/* d0 d1 d2 cells (each >= 1), or -1 when the product does not fit */
static Py_ssize_t cells_of(const int64_t *dims) {
    int64_t n = 1;
    for (int a = 0; a < 3; a++)
        if (__builtin_mul_overflow(n, dims[a], &n) || n > PY_SSIZE_T_MAX) return -1;
    return (Py_ssize_t)n;
}

/* the box columns of grid_count, grid_fill, near_hits and boxes32: lo0, lo1, lo2, hi0, hi1, hi2, all (s,) float64 */
static int get_boxes(PyObject **obj, buf_t *bufs, const char *fn, Py_ssize_t *s) {
    static const char *names[] = {"lo0", "lo1", "lo2", "hi0", "hi1", "hi2"};
    static const char *codes[] = {"d", "d", "d", "d", "d", "d"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 8};
    if (get_bufs(obj, bufs, NGRID, codes, sizes, NGRID, fn, names) < 0) return -1;
    *s = items(&bufs[0]);
    for (int i = 1; i < NGRID; i++)
        if (items(&bufs[i]) != *s) {
            refuse(bufs, NGRID, fn, "the box columns differ in length");
            return -1;
        }
    return 0;
}

/* grid_count(lo0, lo1, lo2, hi0, hi1, hi2, o0, o1, o2, g) -> entries
 *
 * How many (cell, box) entries a grid of cubic cells of size g from origin (o0, o1, o2) holds for the boxes:
 * the sum over the boxes of the cells each spans (fabctl.mesh.intersect.TriangleGrid.build's cell choice). */
static PyObject *grid_count(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NGRID];
    buf_t bufs[NGRID];
    memset(bufs, 0, sizeof(bufs));
    double o[3], g;
    if (!PyArg_ParseTuple(args, "OOOOOOdddd", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &o[0], &o[1],
                          &o[2], &g))
        return NULL;
    Py_ssize_t s;
    if (get_boxes(obj, bufs, "grid_count", &s) < 0) return NULL;
    if (!(g > 0)) return refuse(bufs, NGRID, "grid_count", "the cell size must be > 0");
    const double *lo[3] = {bufs[0].b.buf, bufs[1].b.buf, bufs[2].b.buf};
    const double *hi[3] = {bufs[3].b.buf, bufs[4].b.buf, bufs[5].b.buf};
    double total = 0.0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s; i++) {
        int64_t c0[3], c1[3];
        box_cells(lo, hi, i, o, g, c0, c1);
        total += (double)(c1[0] - c0[0] + 1) * (double)(c1[1] - c0[1] + 1) * (double)(c1[2] - c0[2] + 1);
    }
    Py_END_ALLOW_THREADS
    release(bufs, NGRID);
    return PyFloat_FromDouble(total);
}

/* grid_fill(lo0, lo1, lo2, hi0, hi1, hi2, ids, o0, o1, o2, g, d0, d1, d2, keys, tri, first, counts) -> k
 *
 * Every (cell, box) entry of the grid, by cell key (x slowest) and then box: keys, tri (k,) int64 and first
 * (k,) uint8 (bit ax set when the cell is the box's first along axis ax), as TriangleGrid.build's sort of
 * _expand's entries gives them. ids : (s,) int64 the triangle of each box, increasing, or empty for 0..s-1
 * (the counting sort keeps the boxes' order within a cell, the sort orders by triangle); dims (d0, d1,
 * d2) cells per axis, every box inside them; counts : (d0 d1 d2,) int64 scratch, zeroed here. A counting sort
 * over the cells: call it when the cells are not many more than the entries. Returns the number of entries,
 * which must be len(keys). */
static PyObject *grid_fill(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NGRID + 5];
    buf_t bufs[NGRID + 5];
    memset(bufs, 0, sizeof(bufs));
    double o[3], g;
    int64_t dims[3];
    if (!PyArg_ParseTuple(args, "OOOOOOOddddLLLOOOO", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5],
                          &obj[6], &o[0], &o[1], &o[2], &g, &dims[0], &dims[1], &dims[2], &obj[7], &obj[8],
                          &obj[9], &obj[10]))
        return NULL;
    Py_ssize_t s;
    if (get_boxes(obj, bufs, "grid_fill", &s) < 0) return NULL;
    static const char *names[] = {"ids", "keys", "tri", "first", "counts"};
    static const char *codes[] = {"lq", "lq", "lq", "B", "lq"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 1, 8};
    if (get_bufs(obj + NGRID, bufs + NGRID, 5, codes, sizes, 1, "grid_fill", names) < 0) {
        release(bufs, NGRID);
        return NULL;
    }
    const int NB = NGRID + 5;
    const double *lo[3] = {bufs[0].b.buf, bufs[1].b.buf, bufs[2].b.buf};
    const double *hi[3] = {bufs[3].b.buf, bufs[4].b.buf, bufs[5].b.buf};
    const int64_t *ids = bufs[6].b.buf;
    int64_t *keys = bufs[7].b.buf, *tri = bufs[8].b.buf, *pos = bufs[10].b.buf;
    uint8_t *first = bufs[9].b.buf;
    Py_ssize_t k = items(&bufs[7]), has_ids = items(&bufs[6]) > 0;
    if (has_ids && items(&bufs[6]) != s) return refuse(bufs, NB, "grid_fill", "ids and the boxes differ in length");
    if (items(&bufs[8]) != k || items(&bufs[9]) != k) return refuse(bufs, NB, "grid_fill", "keys, tri and first differ in length");
    if (!(g > 0) || dims[0] < 1 || dims[1] < 1 || dims[2] < 1)
        return refuse(bufs, NB, "grid_fill", "the cell size and the dimensions must be > 0");
    if (cells_of(dims) != items(&bufs[10])) return refuse(bufs, NB, "grid_fill", "counts must hold one item per cell");
    for (Py_ssize_t i = 1; has_ids && i < s; i++)
        if (ids[i] <= ids[i - 1]) return refuse(bufs, NB, "grid_fill", "ids must increase");
    Py_ssize_t ncell = items(&bufs[10]), total = 0;
    const char *bad = NULL;
    Py_BEGIN_ALLOW_THREADS
    memset(pos, 0, (size_t)ncell * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < s && !bad; i++) { /* count, checking every cell is inside the grid */
        int64_t c0[3], c1[3];
        box_cells(lo, hi, i, o, g, c0, c1);
        for (int a = 0; a < 3; a++)
            if (c0[a] < 0 || c1[a] < c0[a] || c1[a] >= dims[a]) bad = "a box lies outside the grid";
        if (bad) break;
        for (int64_t x = c0[0]; x <= c1[0]; x++)
            for (int64_t y = c0[1]; y <= c1[1]; y++)
                for (int64_t z = c0[2]; z <= c1[2]; z++) pos[(x * dims[1] + y) * dims[2] + z]++;
        total += (c1[0] - c0[0] + 1) * (c1[1] - c0[1] + 1) * (c1[2] - c0[2] + 1);
    }
    if (!bad && total != k) bad = "keys must hold exactly one item per entry";
    if (!bad) {
        int64_t run = 0;
        for (Py_ssize_t c = 0; c < ncell; c++) {
            int64_t n = pos[c];
            pos[c] = run;
            run += n;
        }
        for (Py_ssize_t i = 0; i < s; i++) {
            int64_t c0[3], c1[3], t = has_ids ? ids[i] : (int64_t)i;
            box_cells(lo, hi, i, o, g, c0, c1);
            for (int64_t x = c0[0]; x <= c1[0]; x++)
                for (int64_t y = c0[1]; y <= c1[1]; y++)
                    for (int64_t z = c0[2]; z <= c1[2]; z++) {
                        int64_t key = (x * dims[1] + y) * dims[2] + z, e = pos[key]++;
                        keys[e] = key;
                        tri[e] = t;
                        first[e] = (uint8_t)((x == c0[0]) | ((y == c0[1]) << 1) | ((z == c0[2]) << 2));
                    }
        }
    }
    Py_END_ALLOW_THREADS
    if (bad) return refuse(bufs, NB, "grid_fill", bad);
    release(bufs, NB);
    return PyLong_FromSsize_t(total);
}

/* boxes(T, lo, hi, lo0, lo1, lo2, hi0, hi1, hi2) -> None
 *
 * T : (m, 3, 3) float64 triangles; written: lo, hi (m, 3) float64 each triangle's bounding box, and the same
 * as per-axis (m,) columns lo0..hi2 (TriangleGrid.build's boxes, in one pass). */
static PyObject *boxes(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[9];
    buf_t bufs[9];
    memset(bufs, 0, sizeof(bufs));
    if (!PyArg_ParseTuple(args, "OOOOOOOOO", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &obj[6],
                          &obj[7], &obj[8]))
        return NULL;
    static const char *names[] = {"T", "lo", "hi", "lo0", "lo1", "lo2", "hi0", "hi1", "hi2"};
    static const char *codes[] = {"d", "d", "d", "d", "d", "d", "d", "d", "d"};
    static const Py_ssize_t sizes[] = {8, 8, 8, 8, 8, 8, 8, 8, 8};
    if (get_bufs(obj, bufs, 9, codes, sizes, 1, "boxes", names) < 0) return NULL;
    Py_ssize_t m = items(&bufs[0]) / 9;
    int ok = items(&bufs[0]) == 9 * m && items(&bufs[1]) == 3 * m && items(&bufs[2]) == 3 * m;
    for (int i = 3; i < 9; i++) ok &= items(&bufs[i]) == m;
    if (!ok) return refuse(bufs, 9, "boxes", "T must be (m, 3, 3), lo and hi (m, 3), the columns (m,)");
    const double *T = bufs[0].b.buf;
    double *lo = bufs[1].b.buf, *hi = bufs[2].b.buf;
    double *lc[3] = {bufs[3].b.buf, bufs[4].b.buf, bufs[5].b.buf}, *hc[3] = {bufs[6].b.buf, bufs[7].b.buf, bufs[8].b.buf};
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < m; i++) {
        const double *t = T + 9 * i;
        for (int a = 0; a < 3; a++) { /* numpy's minimum(minimum(t0, t1), t2): the same values */
            double l = t[a] < t[3 + a] ? t[a] : t[3 + a], h = t[a] > t[3 + a] ? t[a] : t[3 + a];
            l = l < t[6 + a] ? l : t[6 + a];
            h = h > t[6 + a] ? h : t[6 + a];
            lo[3 * i + a] = lc[a][i] = l;
            hi[3 * i + a] = hc[a][i] = h;
        }
    }
    Py_END_ALLOW_THREADS
    release(bufs, 9);
    Py_RETURN_NONE;
}

/* near_hits(lo0, lo1, lo2, hi0, hi1, hi2, o0, o1, o2, g, d0, d1, d2, occupied, hit) -> count
 *
 * For the boxes (TriangleGrid.build(near=...)'s _near): hit[i] = 1 when box i, its cells clipped to the
 * grid (d0, d1, d2) of cell size g from (o0, o1, o2), shares a cell with occupied (d0 d1 d2,) uint8. */
static PyObject *near_hits(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[NGRID + 2];
    buf_t bufs[NGRID + 2];
    memset(bufs, 0, sizeof(bufs));
    double o[3], g;
    int64_t dims[3];
    if (!PyArg_ParseTuple(args, "OOOOOOddddLLLOO", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &o[0],
                          &o[1], &o[2], &g, &dims[0], &dims[1], &dims[2], &obj[6], &obj[7]))
        return NULL;
    Py_ssize_t s;
    if (get_boxes(obj, bufs, "near_hits", &s) < 0) return NULL;
    static const char *names[] = {"occupied", "hit"};
    static const char *codes[] = {"B?", "B?"};
    static const Py_ssize_t sizes[] = {1, 1};
    if (get_bufs(obj + NGRID, bufs + NGRID, 2, codes, sizes, 1, "near_hits", names) < 0) {
        release(bufs, NGRID);
        return NULL;
    }
    const int NB = NGRID + 2;
    if (!(g > 0) || dims[0] < 1 || dims[1] < 1 || dims[2] < 1)
        return refuse(bufs, NB, "near_hits", "the cell size and the dimensions must be > 0");
    if (cells_of(dims) != items(&bufs[6])) return refuse(bufs, NB, "near_hits", "occupied must hold one item per cell");
    if (items(&bufs[7]) != s) return refuse(bufs, NB, "near_hits", "hit and the boxes differ in length");
    const double *lo[3] = {bufs[0].b.buf, bufs[1].b.buf, bufs[2].b.buf};
    const double *hi[3] = {bufs[3].b.buf, bufs[4].b.buf, bufs[5].b.buf};
    const uint8_t *occ = bufs[6].b.buf;
    uint8_t *hit = bufs[7].b.buf;
    Py_ssize_t count = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < s; i++) {
        int64_t c0[3], c1[3];
        box_cells(lo, hi, i, o, g, c0, c1);
        for (int a = 0; a < 3; a++) { /* numpy's clip(..., 0, d - 1) */
            c0[a] = c0[a] < 0 ? 0 : (c0[a] > dims[a] - 1 ? dims[a] - 1 : c0[a]);
            c1[a] = c1[a] < 0 ? 0 : (c1[a] > dims[a] - 1 ? dims[a] - 1 : c1[a]);
        }
        uint8_t h = 0;
        for (int64_t x = c0[0]; x <= c1[0] && !h; x++)
            for (int64_t y = c0[1]; y <= c1[1] && !h; y++)
                for (int64_t z = c0[2]; z <= c1[2] && !h; z++) h = occ[(x * dims[1] + y) * dims[2] + z] != 0;
        hit[i] = h;
        count += h;
    }
    Py_END_ALLOW_THREADS
    release(bufs, NB);
    return PyLong_FromSsize_t(count);
}

/* boxes32(lo0, lo1, lo2, hi0, hi1, hi2, l0, l1, l2, h0, h1, h2) -> None
 *
 * The (m,) float64 box columns as float32 columns l*, h* (written), rounded outwards: a lower end that
 * rounded up steps one float32 down, an upper end that rounded down one up (TriangleGrid.boxes32). */
static PyObject *boxes32(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *obj[2 * NGRID];
    buf_t bufs[2 * NGRID];
    memset(bufs, 0, sizeof(bufs));
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOO", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4], &obj[5], &obj[6],
                          &obj[7], &obj[8], &obj[9], &obj[10], &obj[11]))
        return NULL;
    Py_ssize_t m;
    if (get_boxes(obj, bufs, "boxes32", &m) < 0) return NULL;
    static const char *names[] = {"l0", "l1", "l2", "h0", "h1", "h2"};
    static const char *codes[] = {"f", "f", "f", "f", "f", "f"};
    static const Py_ssize_t sizes[] = {4, 4, 4, 4, 4, 4};
    if (get_bufs(obj + NGRID, bufs + NGRID, NGRID, codes, sizes, 0, "boxes32", names) < 0) {
        release(bufs, NGRID);
        return NULL;
    }
    for (int i = NGRID; i < 2 * NGRID; i++)
        if (items(&bufs[i]) != m) return refuse(bufs, 2 * NGRID, "boxes32", "the float32 columns and the boxes differ in length");
    Py_BEGIN_ALLOW_THREADS
    for (int a = 0; a < 3; a++) {
        const double *lo = bufs[a].b.buf, *hi = bufs[3 + a].b.buf;
        float *l = bufs[NGRID + a].b.buf, *h = bufs[NGRID + 3 + a].b.buf;
        for (Py_ssize_t i = 0; i < m; i++) {
            float x = (float)lo[i], y = (float)hi[i];
            l[i] = (double)x > lo[i] ? nextafterf(x, -INFINITY) : x;
            h[i] = (double)y < hi[i] ? nextafterf(y, INFINITY) : y;
        }
    }
    Py_END_ALLOW_THREADS
    release(bufs, 2 * NGRID);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"boxes32", boxes32, METH_VARARGS,
     "boxes32(lo0, lo1, lo2, hi0, hi1, hi2, l0, l1, l2, h0, h1, h2) -> None\n\n"
     "The box columns as float32, rounded outwards."},
    {"boxes", boxes, METH_VARARGS,
     "boxes(T, lo, hi, lo0, lo1, lo2, hi0, hi1, hi2) -> None\n\nThe triangles' boxes, as rows and as columns."},
    {"near_hits", near_hits, METH_VARARGS,
     "near_hits(lo0, lo1, lo2, hi0, hi1, hi2, o0, o1, o2, g, d0, d1, d2, occupied, hit) -> count\n\n"
     "Which boxes share a cell with the occupied ones."},
    {"grid_count", grid_count, METH_VARARGS,
     "grid_count(lo0, lo1, lo2, hi0, hi1, hi2, o0, o1, o2, g) -> entries\n\n"
     "How many (cell, box) entries a grid of cell size g holds for the boxes."},
    {"grid_fill", grid_fill, METH_VARARGS,
     "grid_fill(lo0, lo1, lo2, hi0, hi1, hi2, ids, o0, o1, o2, g, d0, d1, d2, keys, tri, first, counts) -> k\n\n"
     "Every (cell, box) entry, by cell and then box, by a counting sort over the cells."},
    {"plane_keep", plane_keep, METH_VARARGS,
     "plane_keep(i, j, unit, off, T, keep, tol) -> kept\n\n"
     "The pairs _plane_reject keeps (keep[p] = 1), over face pairs sharing no vertex."},
    {"cell_pairs", cell_pairs, METH_VARARGS,
     "cell_pairs(ustart, tri, first, lo0, lo1, lo2, hi0, hi1, hi2, f0, f1, f2, out_i, out_j, cell, row)\n"
     "    -> (written, next_cell, next_row)\n\n"
     "Non-neighbour triangle pairs of a TriangleGrid whose float32 boxes overlap, each in its owning cell,\n"
     "in chunks of at most len(out_i), from (cell, row) on."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cellpairs", "The self-intersection broad phase's inner loop (fabctl.mesh.intersect).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cellpairs(void) { return PyModule_Create(&module); }
