/* fabctl.mesh's compiled kernels: reading arrays through the buffer protocol (no numpy headers at build time).
 *
 * get_buf() takes one C-contiguous array of a given item code ("lq": int64, "B": uint8, "f": float32, "d":
 * float64) and item size, read-only or writable; every array is then used as a flat run of items, and each
 * kernel checks the lengths against each other before its loop. release() gives back what was taken. */
#ifndef FABCTL_MESH_BUFFERS_H
#define FABCTL_MESH_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    Py_buffer b;
    int held;
} buf_t;

/* the item's struct code, without a byte-order prefix (native order only) */
static inline const char *code_of(const char *fmt) {
    if (!fmt) return "B";
    if (*fmt == '@' || *fmt == '=' || (*fmt == '<' && PY_LITTLE_ENDIAN) || (*fmt == '>' && PY_BIG_ENDIAN)) fmt++;
    return fmt;
}

static inline int get_buf(PyObject *obj, buf_t *out, const char *codes, Py_ssize_t itemsize, int writable,
                   const char *fn, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    out->held = 0;
    if (PyObject_GetBuffer(obj, &out->b, flags) < 0) {
        return -1;
    }
    out->held = 1;
    const char *code = code_of(out->b.format);
    if (out->b.itemsize != itemsize || strlen(code) != 1 || !strchr(codes, code[0])) {
        PyErr_Format(PyExc_TypeError, "%s: %s must be a C-contiguous array of %zd-byte '%s' items", fn, what,
                     itemsize, codes);
        return -1;
    }
    return 0;
}

/* the number of items */
static inline Py_ssize_t items(const buf_t *b) { return b->b.len / b->b.itemsize; }

static inline void release(buf_t *bufs, int n) {
    for (int i = 0; i < n; i++) {
        if (bufs[i].held) {
            PyBuffer_Release(&bufs[i].b);
            bufs[i].held = 0;
        }
    }
}

/* get_buf for arrays 0..n-1 (writable from index first_writable on); on a failure all are released */
static inline int get_bufs(PyObject **obj, buf_t *bufs, int n, const char **codes, const Py_ssize_t *sizes,
                           int first_writable, const char *fn, const char **names) {
    for (int i = 0; i < n; i++) {
        if (get_buf(obj[i], &bufs[i], codes[i], sizes[i], i >= first_writable, fn, names[i]) < 0) {
            release(bufs, n);
            return -1;
        }
    }
    return 0;
}

/* a refused call: release the arrays, raise ValueError("fn: why"), return NULL */
static inline PyObject *refuse(buf_t *bufs, int n, const char *fn, const char *why) {
    release(bufs, n);
    PyErr_Format(PyExc_ValueError, "%s: %s", fn, why);
    return NULL;
}

#endif
