/*
 * txws._speedups: C implementation of RFC 6455 section 5.3 payload masking.
 *
 * mask(data, key, /) -> bytes
 *
 * XORs every octet i of data with key[i % 4].  The key is widened to a
 * uint64 (the 4 key bytes twice, in memory order, so the result does not
 * depend on host endianness) and the payload is processed 32 and then 8
 * bytes at a time through memcpy, which compilers lower to plain unaligned
 * loads/stores without the undefined behaviour of casting char pointers.
 * Every 8-byte chunk starts at a multiple of 4, so the tail, handled bytewise,
 * starts at key phase 0.
 *
 * The result is allocated uninitialised with PyBytes_FromStringAndSize(NULL, n)
 * and written in place: exactly one pass over the input, one allocation.
 * Inputs of GIL_RELEASE_THRESHOLD bytes or more are masked with the GIL
 * released; this is safe because the input stays pinned by its Py_buffer
 * export (a bytearray cannot be resized while exported) and the output
 * object is not yet visible to any other thread.
 *
 * The module holds no state, so it declares support for per-interpreter
 * GILs (3.12+) and for running without the GIL (3.13+ free-threaded builds).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define GIL_RELEASE_THRESHOLD ((Py_ssize_t)64 * 1024)
#define KEY_LENGTH 4


static void
maskInto(unsigned char *out, const unsigned char *in, Py_ssize_t n,
         const unsigned char key[KEY_LENGTH])
{
    unsigned char wide[8];
    uint64_t k;
    Py_ssize_t i = 0;

    memcpy(wide, key, KEY_LENGTH);
    memcpy(wide + KEY_LENGTH, key, KEY_LENGTH);
    memcpy(&k, wide, sizeof(k));

    for (; i + 32 <= n; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, in + i, 8);
        memcpy(&b, in + i + 8, 8);
        memcpy(&c, in + i + 16, 8);
        memcpy(&d, in + i + 24, 8);
        a ^= k;
        b ^= k;
        c ^= k;
        d ^= k;
        memcpy(out + i, &a, 8);
        memcpy(out + i + 8, &b, 8);
        memcpy(out + i + 16, &c, 8);
        memcpy(out + i + 24, &d, 8);
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, in + i, 8);
        w ^= k;
        memcpy(out + i, &w, 8);
    }
    /* i is a multiple of 8 here, so the key phase restarts at 0. */
    for (; i < n; i++) {
        out[i] = (unsigned char)(in[i] ^ key[i & 3]);
    }
}


/*
 * Acquire a read-only buffer from obj and insist that it is C-contiguous
 * (any item format and dimensionality is accepted: masking works on the raw
 * octets).  On success returns 0 and the caller owns view; on failure
 * returns -1 with an exception set and nothing to release.
 */
static int
getContiguousBuffer(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_FULL_RO) < 0) {
        return -1;
    }
    if (!PyBuffer_IsContiguous(view, 'C')) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_TypeError,
                     "mask() %s must be a C-contiguous buffer", what);
        return -1;
    }
    return 0;
}


PyDoc_STRVAR(mask_doc,
"mask(data, key, /)\n"
"--\n"
"\n"
"Mask or unmask a WebSocket payload (RFC 6455 section 5.3).\n"
"\n"
"Octet i of the result is data[i] XOR key[i % 4].  Masking is an\n"
"involution: applying it twice with the same key gives back the input.\n"
"\n"
"@param data: the payload; any C-contiguous object supporting the buffer\n"
"    protocol (bytes, bytearray, memoryview, ...).\n"
"@param key: the 4-octet masking key, as a C-contiguous buffer.\n"
"@return: the masked payload, as new L{bytes} of the same length.\n"
"@raise TypeError: if either argument does not support the buffer protocol\n"
"    or is not C-contiguous.\n"
"@raise ValueError: if C{key} is not exactly 4 octets long.\n");

static PyObject *
speedups_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, keyView;
    unsigned char key[KEY_LENGTH];
    PyObject *result;
    Py_ssize_t n;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "mask() takes exactly 2 positional arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (getContiguousBuffer(args[0], &data, "data") < 0) {
        return NULL;
    }
    if (getContiguousBuffer(args[1], &keyView, "key") < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (keyView.len != KEY_LENGTH) {
        PyErr_Format(PyExc_ValueError,
                     "mask() key must be exactly %d bytes, not %zd",
                     KEY_LENGTH, keyView.len);
        PyBuffer_Release(&keyView);
        PyBuffer_Release(&data);
        return NULL;
    }
    memcpy(key, keyView.buf, KEY_LENGTH);
    PyBuffer_Release(&keyView);

    n = data.len;
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    if (n >= GIL_RELEASE_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        maskInto((unsigned char *)PyBytes_AS_STRING(result),
                 (const unsigned char *)data.buf, n, key);
        Py_END_ALLOW_THREADS
    }
    else {
        maskInto((unsigned char *)PyBytes_AS_STRING(result),
                 (const unsigned char *)data.buf, n, key);
    }
    PyBuffer_Release(&data);
    return result;
}


static PyMethodDef speedups_methods[] = {
    {"mask", (PyCFunction)(void (*)(void))speedups_mask, METH_FASTCALL,
     mask_doc},
    {NULL, NULL, 0, NULL}
};

static PyModuleDef_Slot speedups_slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL}
};

PyDoc_STRVAR(module_doc,
"C implementation of RFC 6455 section 5.3 masking; use L{txws._mask}.");

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "txws._speedups",       /* m_name */
    module_doc,             /* m_doc */
    0,                      /* m_size: no module state */
    speedups_methods,       /* m_methods */
    speedups_slots,         /* m_slots */
    NULL,                   /* m_traverse */
    NULL,                   /* m_clear */
    NULL,                   /* m_free */
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
