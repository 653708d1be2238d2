/* P(up) of float32 rows under a boosted tree ensemble: the sigmoid of the trees' summed leaves
 * plus a base margin, as XGBoost's binary:logistic computes it.
 *
 * Each tree is complete to depth D, in heap order: node i goes to 2i+1 when x < threshold and
 * to 2i+2 otherwise, and its 2^D leaves follow its 2^D - 1 internal nodes (tree_ensemble.py
 * builds these arrays from model.ubj). Every index the walk computes stays inside its tree by
 * construction, and the feature indexes are checked against the row width before a row is
 * read, so no array can make it read out of bounds. Four rows go through each tree together:
 * their walks are independent, and the processor overlaps them. Large batches run without the
 * interpreter lock, so the event loop goes on while a predicting thread walks them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 10
/* Below this many rows the walk takes microseconds: handing the interpreter lock to another
 * thread for that long would let it run for its whole switch interval (5 ms) instead. */
#define RELEASE_GIL_ROWS 256

static int get_buffer(PyObject *obj, Py_buffer *view, const char *format, const char *name,
                      int writable) {
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) != 0)
        return -1;
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, format) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous array of '%s' items", name,
                     format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static inline float sigmoid(float margin) { return 1.0f / (1.0f + expf(-margin)); }

static void walk(const float *x, Py_ssize_t n, int width, const int32_t *feature,
                 const float *threshold, const float *leaf, Py_ssize_t trees, int depth,
                 float base, float *out) {
    const Py_ssize_t internal = ((Py_ssize_t)1 << depth) - 1;
    const Py_ssize_t leaves = internal + 1;
    Py_ssize_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const float *x0 = x + r * width, *x1 = x0 + width, *x2 = x1 + width, *x3 = x2 + width;
        float s0 = base, s1 = base, s2 = base, s3 = base;
        for (Py_ssize_t t = 0; t < trees; t++) {
            const int32_t *f = feature + t * internal;
            const float *v = threshold + t * internal;
            const float *l = leaf + t * leaves - internal;
            Py_ssize_t i0 = 0, i1 = 0, i2 = 0, i3 = 0;
            for (int level = 0; level < depth; level++) {
                i0 = 2 * i0 + 1 + (x0[f[i0]] >= v[i0]);
                i1 = 2 * i1 + 1 + (x1[f[i1]] >= v[i1]);
                i2 = 2 * i2 + 1 + (x2[f[i2]] >= v[i2]);
                i3 = 2 * i3 + 1 + (x3[f[i3]] >= v[i3]);
            }
            s0 += l[i0];
            s1 += l[i1];
            s2 += l[i2];
            s3 += l[i3];
        }
        out[r] = sigmoid(s0);
        out[r + 1] = sigmoid(s1);
        out[r + 2] = sigmoid(s2);
        out[r + 3] = sigmoid(s3);
    }
    for (; r < n; r++) {
        const float *row = x + r * width;
        float sum = base;
        for (Py_ssize_t t = 0; t < trees; t++) {
            const int32_t *f = feature + t * internal;
            const float *v = threshold + t * internal;
            Py_ssize_t i = 0;
            for (int level = 0; level < depth; level++)
                i = 2 * i + 1 + (row[f[i]] >= v[i]);
            sum += leaf[t * leaves + (i - internal)];
        }
        out[r] = sigmoid(sum);
    }
}

static PyObject *probabilities(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *rows_obj, *features_obj, *thresholds_obj, *leaves_obj, *out_obj;
    int width, depth;
    float base;
    PyObject *result = NULL;
    Py_buffer rows, features, thresholds, leaves, out;
    if (!PyArg_ParseTuple(args, "OiOOOifO", &rows_obj, &width, &features_obj, &thresholds_obj,
                          &leaves_obj, &depth, &base, &out_obj))
        return NULL;
    if (depth < 1 || depth > MAX_DEPTH || width < 1) {
        PyErr_SetString(PyExc_ValueError, "depth must be 1 to 10 and width at least 1");
        return NULL;
    }
    if (get_buffer(rows_obj, &rows, "f", "rows", 0) != 0)
        return NULL;
    if (get_buffer(features_obj, &features, "i", "features", 0) != 0)
        goto release_rows;
    if (get_buffer(thresholds_obj, &thresholds, "f", "thresholds", 0) != 0)
        goto release_features;
    if (get_buffer(leaves_obj, &leaves, "f", "leaves", 0) != 0)
        goto release_thresholds;
    if (get_buffer(out_obj, &out, "f", "out", 1) != 0)
        goto release_leaves;

    Py_ssize_t internal = ((Py_ssize_t)1 << depth) - 1;
    Py_ssize_t nodes = features.len / 4;
    Py_ssize_t trees = nodes / internal;
    Py_ssize_t values = rows.len / 4;
    Py_ssize_t n = values / width;
    if (nodes % internal != 0 || thresholds.len != features.len ||
        leaves.len / 4 != trees * (internal + 1) || values % width != 0 || out.len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "the tree arrays, rows and out do not fit together");
        goto release_out;
    }
    const int32_t *feature = (const int32_t *)features.buf;
    for (Py_ssize_t i = 0; i < nodes; i++) {
        if (feature[i] < 0 || feature[i] >= width) {
            PyErr_SetString(PyExc_ValueError, "a tree splits on a feature the rows do not have");
            goto release_out;
        }
    }
    if (n >= RELEASE_GIL_ROWS) {
        Py_BEGIN_ALLOW_THREADS
        walk((const float *)rows.buf, n, width, feature, (const float *)thresholds.buf,
             (const float *)leaves.buf, trees, depth, base, (float *)out.buf);
        Py_END_ALLOW_THREADS
    } else {
        walk((const float *)rows.buf, n, width, feature, (const float *)thresholds.buf,
             (const float *)leaves.buf, trees, depth, base, (float *)out.buf);
    }
    Py_INCREF(Py_None);
    result = Py_None;

release_out:
    PyBuffer_Release(&out);
release_leaves:
    PyBuffer_Release(&leaves);
release_thresholds:
    PyBuffer_Release(&thresholds);
release_features:
    PyBuffer_Release(&features);
release_rows:
    PyBuffer_Release(&rows);
    return result;
}

static PyMethodDef methods[] = {
    {"probabilities", probabilities, METH_VARARGS,
     "probabilities(rows, width, features, thresholds, leaves, depth, base, out): P(up) of "
     "each float32 row, written into out"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_trees",
    .m_doc = "Complete binary trees over float32 rows.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__trees(void) { return PyModule_Create(&module); }
