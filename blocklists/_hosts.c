/* The compiled form of `blocklists.links._link_hosts` for an ASCII reading.
 *
 * link_hosts(reading) answers exactly what the Python function answers (a test holds
 * them equal on generated readings): the host names the links in *reading* go to, or
 * None when some link's host might not be one of them. The character classes it reads
 * are not written here: `configure` takes them from the Python module, which derives
 * them from its own patterns, so the two can only differ in how they walk the text.
 *
 * Every index is checked against the reading's length before it is read; the only
 * memory written is the list of names returned.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

enum {
    RUN = 1,       /* a host character: [A-Za-z0-9.-] */
    ENDS = 2,      /* ends a link's host: a path, a query, a fragment, a delimiter */
    REST = 4,      /* can be in the rest of a link (its path) */
    TRAILING = 8,  /* punctuation that a link ending in it does not hold */
    LABEL = 16,    /* a label character of a bare host: [A-Za-z0-9-] */
    ALPHA = 32,    /* a letter of a bare host's last label: [A-Za-z] */
    CLOSING = 64,  /* may follow a host and end the link there: , ; ! ) */
};

static unsigned char classes[128];
static Py_ssize_t max_host = -1; /* -1 until configured */

static PyObject *
configure(PyObject *module, PyObject *args)
{
    const char *table;
    Py_ssize_t length, longest;
    if (!PyArg_ParseTuple(args, "y#n", &table, &length, &longest)) {
        return NULL;
    }
    if (length != 128 || longest < 1) {
        PyErr_SetString(PyExc_ValueError, "configure needs 128 classes and a positive longest host");
        return NULL;
    }
    memcpy(classes, table, 128);
    max_host = longest;
    Py_RETURN_NONE;
}

static inline int
is(const Py_UCS1 *text, Py_ssize_t at, unsigned char class)
{
    return (classes[text[at] & 0x7f] & class) != 0;
}

/* The length of the bare host at the start of text[start:end] (a run of host characters), as
 * `(?:www\.)?(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}` matches there; 0 when it does not. The
 * optional "www." changes nothing: the labels take it as their first. Labels are taken
 * greedily, as many as there are (each a non-empty run of label characters and its dot), then
 * given back one by one until two letters or more follow the last one kept. */
static Py_ssize_t
bare_host(const Py_UCS1 *text, Py_ssize_t start, Py_ssize_t end)
{
    Py_ssize_t dots[256]; /* where each label's dot is: a run of MAX_HOST (255) holds at most 128 */
    Py_ssize_t count = 0, at = start;
    while (at < end) {
        Py_ssize_t label = at;
        while (at < end && is(text, at, LABEL)) {
            at++;
        }
        if (at == label || at >= end || text[at] != '.') {
            break;
        }
        if (count == 256) {
            return -1; /* a longer run than MAX_HOST: the caller answers None */
        }
        dots[count++] = at++;
    }
    while (count > 0) {
        Py_ssize_t after = dots[--count] + 1, letters = 0;
        while (after + letters < end && is(text, after + letters, ALPHA)) {
            letters++;
        }
        if (letters >= 2) {
            return after + letters - start;
        }
    }
    return 0;
}

static int
append_name(PyObject *hosts, PyObject *reading, Py_ssize_t start, Py_ssize_t end)
{
    PyObject *name = PyUnicode_Substring(reading, start, end);
    if (name == NULL) {
        return -1;
    }
    int failed = PyList_Append(hosts, name);
    Py_DECREF(name);
    return failed;
}

static PyObject *
link_hosts(PyObject *module, PyObject *reading)
{
    if (!PyUnicode_Check(reading) || !PyUnicode_IS_ASCII(reading)) {
        PyErr_SetString(PyExc_TypeError, "link_hosts reads an ASCII str");
        return NULL;
    }
    if (max_host < 0) {
        PyErr_SetString(PyExc_RuntimeError, "link_hosts is not configured");
        return NULL;
    }
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(reading);
    Py_ssize_t size = PyUnicode_GET_LENGTH(reading), schemes = 0;
    for (Py_ssize_t at = 0; at < size; at++) {
        if (text[at] != ':') {
            continue;
        }
        if (at + 2 < size && text[at + 1] == '/' && text[at + 2] == '/') {
            schemes++;
        }
        else if (at + 1 < size && text[at + 1] == '\\') {
            Py_RETURN_NONE;
        }
    }
    PyObject *hosts = PyList_New(0);
    if (hosts == NULL) {
        return NULL;
    }
    const Py_UCS1 *dot = memchr(text, '.', (size_t)size);
    while (dot != NULL) {
        Py_ssize_t at = dot - text;
        if (at + 1 == size || is(text, at + 1, ENDS)) {
            /* A full stop, or a dot ending a run that holds no other. */
            dot = memchr(text + at + 1, '.', (size_t)(size - at - 1));
            continue;
        }
        Py_ssize_t start = at, end = at;
        while (start > 0 && at - start < max_host + 1 && is(text, start - 1, RUN)) {
            start--;
        }
        while (end < size && is(text, end, RUN)) {
            end++;
        }
        if (end - start > max_host) {
            goto unsure;
        }
        if (start > 0 && (text[start - 1] == '_' || text[start - 1] == '\\')) {
            goto unsure;
        }
        if (end < size && !is(text, end, ENDS)) {
            if (!is(text, end, CLOSING)) {
                goto unsure;
            }
            Py_ssize_t stop = end, kept;
            while (stop < size && is(text, stop, REST)) {
                stop++;
            }
            if (stop < size && text[stop] == '[') {
                goto unsure;
            }
            for (kept = stop; kept > end && is(text, kept - 1, TRAILING); kept--) {
            }
            if (kept > end) {
                goto unsure;
            }
        }
        Py_ssize_t bare = bare_host(text, start, end);
        if (bare < 0) {
            goto unsure;
        }
        if (start >= 3 && text[start - 3] == ':' && text[start - 2] == '/' && text[start - 1] == '/') {
            schemes--;
            if (append_name(hosts, reading, start, end) < 0) {
                goto failed;
            }
            if (bare > 0 && bare != end - start && append_name(hosts, reading, start, start + bare) < 0) {
                goto failed;
            }
        }
        else if (bare > 0 && append_name(hosts, reading, start, start + bare) < 0) {
            goto failed;
        }
        dot = end < size ? memchr(text + end, '.', (size_t)(size - end)) : NULL;
    }
    if (schemes != 0) {
        goto unsure;
    }
    return hosts;
unsure:
    Py_DECREF(hosts);
    Py_RETURN_NONE;
failed:
    Py_DECREF(hosts);
    return NULL;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(classes, longest_host): the character classes"},
    {"link_hosts", link_hosts, METH_O, "link_hosts(reading): the hosts of an ASCII reading's links, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hosts_module = {PyModuleDef_HEAD_INIT, "_hosts", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__hosts(void)
{
    return PyModule_Create(&hosts_module);
}
