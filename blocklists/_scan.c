/* The share scan's compiled readers, for ASCII text: each answers exactly what its Python
 * function in `blocklists.links` answers (tests hold them equal on generated texts).
 *
 * link_hosts(reading), `_link_hosts`: the host names the links in *reading* go to, or None
 * when some link's host might not be one of them. The character classes it reads are not
 * written here: `configure` takes them from the Python module, which derives them from its
 * own patterns, so the two can only differ in how they walk the text.
 *
 * form_fields(text, max_fields), `_form_fields`: a form body's decoded values and names, and
 * the text after its first max_fields fields.
 *
 * Every index is checked against the text's length before it is read; the only memory
 * written is the objects returned and a buffer of the text's length.
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
    if (length != 128 || longest < 1 || longest > 511) {
        /* bare_host keeps the dots of a run no longer than longest: at most 255 of them */
        PyErr_SetString(PyExc_ValueError, "configure needs 128 classes and a longest host of 1 to 511");
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
    Py_ssize_t dots[256]; /* where each label's dot is: a run of MAX_HOST (255) holds at most 127 */
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

/* Append *item*, a new reference (NULL: the call that made it failed), to *list*, and drop it. */
static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
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
            if (append_new(hosts, PyUnicode_Substring(reading, start, end)) < 0) {
                goto failed;
            }
            if (bare > 0 && bare != end - start
                && append_new(hosts, PyUnicode_Substring(reading, start, start + bare)) < 0) {
                goto failed;
            }
        }
        else if (bare > 0 && append_new(hosts, PyUnicode_Substring(reading, start, start + bare)) < 0) {
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

static int
hex_value(Py_UCS1 c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* text[start:end] with "+" read as a space and each "%XX" as its byte, decoded as UTF-8
 * (invalid bytes replaced), as `percent_decoded(text.replace("+", " "))`; a "%" that begins
 * no escape stays. *buffer* holds at least end - start bytes. */
static PyObject *
decoded(const Py_UCS1 *text, Py_ssize_t start, Py_ssize_t end, char *buffer)
{
    Py_ssize_t length = 0;
    for (Py_ssize_t at = start; at < end; at++) {
        Py_UCS1 c = text[at];
        if (c == '%' && at + 2 < end) {
            int high = hex_value(text[at + 1]), low = hex_value(text[at + 2]);
            if (high >= 0 && low >= 0) {
                buffer[length++] = (char)(high * 16 + low);
                at += 2;
                continue;
            }
        }
        buffer[length++] = c == '+' ? ' ' : (char)c;
    }
    return PyUnicode_DecodeUTF8(buffer, length, "replace");
}

static PyObject *
form_fields(PyObject *module, PyObject *args)
{
    PyObject *form;
    Py_ssize_t max_fields;
    if (!PyArg_ParseTuple(args, "Un", &form, &max_fields)) {
        return NULL;
    }
    if (max_fields < 1) {
        PyErr_SetString(PyExc_ValueError, "form_fields needs a positive max_fields");
        return NULL;
    }
    if (!PyUnicode_IS_ASCII(form)) {
        PyErr_SetString(PyExc_TypeError, "form_fields reads an ASCII str");
        return NULL;
    }
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(form);
    Py_ssize_t size = PyUnicode_GET_LENGTH(form);
    char *buffer = PyMem_Malloc(size > 0 ? (size_t)size : 1);
    PyObject *values = PyList_New(0), *names = PyList_New(0), *rest = NULL, *result = NULL;
    if (buffer == NULL || values == NULL || names == NULL) {
        if (buffer == NULL) {
            PyErr_NoMemory();
        }
        goto done;
    }
    Py_ssize_t start = 0, field;
    for (field = 0; field < max_fields && start <= size; field++) {
        const Py_UCS1 *amp = memchr(text + start, '&', (size_t)(size - start));
        Py_ssize_t end = amp == NULL ? size : amp - text;
        const Py_UCS1 *equals = memchr(text + start, '=', (size_t)(end - start));
        Py_ssize_t name_end = equals == NULL ? end : equals - text;
        if (equals != NULL && end > name_end + 1
            && append_new(values, decoded(text, name_end + 1, end, buffer)) < 0) {
            goto done;
        }
        if (name_end > start && append_new(names, decoded(text, start, name_end, buffer)) < 0) {
            goto done;
        }
        if (amp == NULL) {
            start = size + 1; /* every field read: no rest */
            break;
        }
        start = end + 1;
    }
    /* The text after the first max_fields fields, "+" read as a space and nothing decoded. */
    Py_ssize_t length = start <= size ? size - start : 0;
    for (Py_ssize_t at = 0; at < length; at++) {
        buffer[at] = text[start + at] == '+' ? ' ' : (char)text[start + at];
    }
    rest = PyUnicode_DecodeASCII(buffer, length, "strict");
    if (rest != NULL) {
        result = PyTuple_Pack(3, values, names, rest);
    }
done:
    PyMem_Free(buffer);
    Py_XDECREF(values);
    Py_XDECREF(names);
    Py_XDECREF(rest);
    return result;
}

static PyMethodDef methods[] = {
    {"configure", configure, METH_VARARGS, "configure(classes, longest_host): the character classes"},
    {"link_hosts", link_hosts, METH_O, "link_hosts(reading): the hosts of an ASCII reading's links, or None"},
    {"form_fields", form_fields, METH_VARARGS, "form_fields(text, max_fields): a form's values, names, rest"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef scan_module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__scan(void)
{
    return PyModule_Create(&scan_module);
}
