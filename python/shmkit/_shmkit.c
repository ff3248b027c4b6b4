/* shmkit._shmkit — the CPython extension over libshmkit: segments, blobs, channels and
 * topics as Python objects.
 *
 * Conventions, kept by every method:
 * - Timeouts are seconds (int or float): None waits forever, 0 never blocks. A call
 *   that may block runs with the GIL released, in slices of SLICE_NS, so that another
 *   thread runs meanwhile and Ctrl-C (a pending signal) ends the wait between slices.
 *   A call that cannot block, or one with timeout 0, keeps the GIL: releasing it costs
 *   more than a short copy.
 * - A library error -E becomes OSError(E, shmkit_strerror(-E), name), which Python
 *   turns into its subclass for E: TimeoutError, BrokenPipeError, FileNotFoundError,
 *   BlockingIOError (-EAGAIN, timeout 0), PermissionError, FileExistsError, ...
 * - A handle is used by one thread at a time (the library's contract): a second
 *   thread calling while a call is in progress gets RuntimeError, and close() waits
 *   for nothing: it refuses while a call is in progress or a buffer is exported, so
 *   no memory is unmapped under a running call or a live memoryview.
 * Only what Python 3.9 has is used. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <shmkit/shmkit.h>

/* The longest a blocking call runs with the GIL released before it looks for a
 * pending signal: short enough that Ctrl-C feels immediate, long enough that the
 * extra call (and its spin) costs nothing measurable. */
#define SLICE_NS (50 * SHMKIT_MSEC)

/* Copies of this many bytes or more run with the GIL released: below, handing the GIL
 * over costs more than the copy. */
#define BIG_COPY (16 * 1024)

static PyObject *MessagesLost; /* shmkit.MessagesLost: OSError(EOVERFLOW) + .lost */

/* ---- errors, names, timeouts ---- */

/* Raise OSError for a library error (negative errno), naming the object. */
static PyObject *raise_err(long long err, PyObject *name)
{
	int e = err < 0 ? (int)-err : (int)err;
	PyObject *args = name ? Py_BuildValue("(isO)", e, shmkit_strerror(-e), name)
			      : Py_BuildValue("(is)", e, shmkit_strerror(-e));
	if (args) {
		/* OSError's constructor picks the subclass for the errno; the exception is
		 * set with the instance's own type, as PyErr_SetFromErrno() does, since
		 * before 3.11 an except clause matches the type it was set with. */
		PyObject *exc = PyObject_Call(PyExc_OSError, args, NULL);
		if (exc) {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
			Py_DECREF(exc);
		}
		Py_DECREF(args);
	}
	return NULL;
}

/* Seconds (None: forever) to the library's nanoseconds (-1: forever). */
static int timeout_ns(PyObject *o, int64_t *out)
{
	if (o == NULL || o == Py_None) {
		*out = SHMKIT_FOREVER;
		return 0;
	}
	double s = PyFloat_AsDouble(o);
	if (s == -1.0 && PyErr_Occurred())
		return -1;
	if (!(s >= 0)) { /* negative or NaN */
		PyErr_SetString(PyExc_ValueError, "timeout must be None or >= 0 seconds");
		return -1;
	}
	if (s >= 9.2e9) { /* past int64 nanoseconds: as good as forever */
		*out = SHMKIT_FOREVER;
		return 0;
	}
	int64_t ns = (int64_t)(s * 1e9);
	*out = s > 0 && ns == 0 ? 1 : ns; /* a positive timeout never becomes "no wait" */
	return 0;
}

/* FASTCALL arguments (npos required positionals, then an optional timeout, also by
 * keyword). PyArg_ParseTupleAndKeywords costs more than a 64-byte send. */
static int parse_args(const char *fn, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
		      int npos, PyObject **pos, PyObject **timeout)
{
	*timeout = NULL;
	if (nargs < npos || nargs > npos + 1) {
		PyErr_Format(PyExc_TypeError, "%s() takes %d or %d positional arguments (%zd given)",
			     fn, npos, npos + 1, nargs);
		return -1;
	}
	for (int i = 0; i < npos; i++)
		pos[i] = args[i];
	if (nargs == npos + 1)
		*timeout = args[npos];
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	for (Py_ssize_t i = 0; i < nkw; i++) {
		PyObject *k = PyTuple_GET_ITEM(kwnames, i);
		if (PyUnicode_CompareWithASCIIString(k, "timeout") != 0 || *timeout) {
			PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword "
				     "argument '%U'", fn, k);
			return -1;
		}
		*timeout = args[nargs + i];
	}
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * SHMKIT_SEC + ts.tv_nsec;
}

/* A blocking library call, as op(arg, timeout) returning a count or -errno. */
typedef long long (*blocking_op)(void *arg, int64_t timeout_ns);

/* Returned by run() when a Python exception (a signal's) is set. */
#define RAISED LLONG_MIN

/* Runs op with the GIL released, SLICE_NS at a time, checking for signals between
 * slices; timeout 0 runs once, GIL held. Returns what op returned, or RAISED. */
static long long run(blocking_op op, void *arg, int64_t timeout)
{
	if (timeout == 0)
		return op(arg, 0);
	int64_t deadline = timeout > 0 ? now_ns() + timeout : 0;
	for (;;) {
		int64_t slice = SLICE_NS;
		if (timeout > 0) {
			int64_t left = deadline - now_ns();
			if (left < 1)
				left = 1;
			if (left < slice)
				slice = left;
		}
		long long r;
		Py_BEGIN_ALLOW_THREADS
		r = op(arg, slice);
		Py_END_ALLOW_THREADS
		if (r != -ETIMEDOUT)
			return r;
		if (timeout > 0 && now_ns() >= deadline)
			return r;
		if (PyErr_CheckSignals() < 0)
			return RAISED;
	}
}

/* A name argument as bytes (str is encoded as os.fsencode() does). */
static int name_arg(PyObject *o, PyObject **bytes)
{
	return PyUnicode_FSConverter(o, bytes) ? 0 : -1;
}

/* The handle-in-use guard. */
#define BEGIN(self, h, ret)                                                                  \
	do {                                                                                 \
		if (!(self)->h) {                                                            \
			PyErr_SetString(PyExc_ValueError, "operation on a closed handle");   \
			return ret;                                                          \
		}                                                                            \
		if ((self)->busy) {                                                          \
			PyErr_SetString(PyExc_RuntimeError,                                  \
					"another thread is using this handle (one at a time)"); \
			return ret;                                                          \
		}                                                                            \
		(self)->busy = 1;                                                            \
	} while (0)
#define END(self) ((self)->busy = 0)

static PyObject *info_dict(const struct shmkit_seg_info *in)
{
	PyObject *alive = in->creator_alive < 0 ? Py_None : in->creator_alive ? Py_True : Py_False;
	return Py_BuildValue(
		"{s:O,s:I,s:I,s:K,s:K,s:i,s:O,s:L,s:i,s:i,s:I,s:I,s:I,s:i,s:O,s:N}",
		"sysv", in->sysv ? Py_True : Py_False, "kind", in->kind, "state", in->state,
		"total_size", (unsigned long long)in->total_size, "data_size",
		(unsigned long long)in->data_size, "creator_pid", (int)in->creator_pid,
		"creator_alive", alive, "ctime_ns", (long long)in->ctime_ns, "shmid", in->shmid,
		"key", (int)in->key, "mode", in->mode, "uid", in->uid, "gid", in->gid, "nattch",
		(int)in->nattch, "persistent", in->persistent ? Py_True : Py_False, "name",
		PyUnicode_DecodeFSDefault(in->name));
}

/* ---- Segment ---- */

typedef struct {
	PyObject_HEAD
	shmkit_seg *seg;
	PyObject *name;
	Py_ssize_t exports; /* buffers handed out and not released */
	int readonly;
	int busy;
} SegmentObject;

static int seg_init(SegmentObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "size", "create", "excl", "mode", "readonly", "sysv",
				 "raw", "persist", "kind", NULL};
	PyObject *name, *nb = NULL;
	Py_ssize_t size = 0;
	int create = 0, excl = 0, ro = 0, sysv = 0, raw = 0, persist = 0;
	unsigned mode = 0, kind = SHMKIT_KIND_DATA;
	if (self->seg) {
		PyErr_SetString(PyExc_RuntimeError, "Segment is already open");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n$ppIppppI:Segment", kwlist, &name, &size,
					 &create, &excl, &mode, &ro, &sysv, &raw, &persist, &kind))
		return -1;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "size must be >= 0");
		return -1;
	}
	if (name_arg(name, &nb) < 0)
		return -1;
	unsigned flags = (create ? SHMKIT_SEG_CREATE : 0) | (excl ? SHMKIT_SEG_EXCL : 0) |
			 (ro ? SHMKIT_SEG_RDONLY : 0) | (sysv ? SHMKIT_SEG_SYSV : 0) |
			 (raw ? SHMKIT_SEG_RAW : 0) | (persist ? SHMKIT_SEG_PERSIST : 0);
	shmkit_seg *seg = NULL;
	int r;
	/* Opening may wait up to 2 s for a creator to finish. */
	Py_BEGIN_ALLOW_THREADS
	r = shmkit_seg_open(PyBytes_AS_STRING(nb), kind, (size_t)size, mode, flags, &seg);
	Py_END_ALLOW_THREADS
	Py_DECREF(nb);
	if (r < 0) {
		raise_err(r, name);
		return -1;
	}
	self->seg = seg;
	self->readonly = ro;
	Py_INCREF(name);
	Py_XSETREF(self->name, name);
	return 0;
}

static int seg_close_handle(SegmentObject *self)
{
	if (self->exports > 0) {
		PyErr_SetString(PyExc_BufferError,
				"cannot close a segment while a buffer of it is exported "
				"(a memoryview or numpy array is still alive)");
		return -1;
	}
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "cannot close: another thread is using it");
		return -1;
	}
	shmkit_seg_close(self->seg);
	self->seg = NULL;
	return 0;
}

static void seg_dealloc(SegmentObject *self)
{
	/* No export can outlive us: each holds a reference. */
	shmkit_seg_close(self->seg);
	Py_XDECREF(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static int seg_getbuffer(SegmentObject *self, Py_buffer *view, int flags)
{
	if (!self->seg) {
		PyErr_SetString(PyExc_BufferError, "the segment is closed");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)self, shmkit_seg_data(self->seg),
			      (Py_ssize_t)shmkit_seg_size(self->seg), self->readonly, flags) < 0)
		return -1;
	self->exports++;
	return 0;
}

static void seg_releasebuffer(SegmentObject *self, Py_buffer *view)
{
	(void)view;
	self->exports--;
}

static PyBufferProcs seg_as_buffer = {(getbufferproc)seg_getbuffer,
				      (releasebufferproc)seg_releasebuffer};

static PyObject *seg_close(SegmentObject *self, PyObject *unused)
{
	(void)unused;
	if (self->seg && seg_close_handle(self) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *seg_delete(SegmentObject *self, PyObject *unused)
{
	(void)unused;
	BEGIN(self, seg, NULL);
	int r = shmkit_seg_delete(self->seg);
	END(self);
	if (r < 0)
		return raise_err(r, self->name);
	Py_RETURN_NONE;
}

static PyObject *seg_stat(SegmentObject *self, PyObject *unused)
{
	(void)unused;
	struct shmkit_seg_info in;
	BEGIN(self, seg, NULL);
	int r = shmkit_seg_stat(self->seg, &in);
	END(self);
	if (r < 0)
		return raise_err(r, self->name);
	return info_dict(&in);
}

static PyObject *seg_check(SegmentObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->seg) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed handle");
		return NULL;
	}
	int r = shmkit_seg_check(self->seg);
	if (r < 0)
		return raise_err(r, self->name);
	Py_RETURN_NONE;
}

static PyObject *seg_fileno(SegmentObject *self, PyObject *unused)
{
	(void)unused;
	if (!self->seg) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed handle");
		return NULL;
	}
	int r = shmkit_seg_fd(self->seg);
	if (r < 0)
		return raise_err(r, self->name);
	return PyLong_FromLong(r);
}

static PyObject *self_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

/* Leaving a with block by an exception: a refused close must not hide that
 * exception (the handle then closes when it is collected). */
static PyObject *exit_result(PyObject *r, PyObject *args)
{
	if (!r && PyTuple_GET_SIZE(args) > 0 && PyTuple_GET_ITEM(args, 0) != Py_None &&
	    (PyErr_ExceptionMatches(PyExc_BufferError) ||
	     PyErr_ExceptionMatches(PyExc_RuntimeError))) {
		PyErr_Clear();
		Py_RETURN_FALSE;
	}
	return r;
}

static PyObject *seg_exit(SegmentObject *self, PyObject *args)
{
	return exit_result(seg_close(self, NULL), args);
}

static PyObject *seg_get_size(SegmentObject *self, void *c)
{
	(void)c;
	return PyLong_FromSize_t(self->seg ? shmkit_seg_size(self->seg) : 0);
}

static PyObject *seg_get_created(SegmentObject *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->seg && shmkit_seg_created(self->seg) == 1);
}

static PyObject *seg_get_closed(SegmentObject *self, void *c)
{
	(void)c;
	return PyBool_FromLong(!self->seg);
}

static Py_ssize_t seg_len(SegmentObject *self)
{
	return self->seg ? (Py_ssize_t)shmkit_seg_size(self->seg) : 0;
}

static PyMethodDef seg_methods[] = {
	{"close", (PyCFunction)seg_close, METH_NOARGS,
	 "close()\n\nUnmap and close the handle; the segment stays. Refused (BufferError) "
	 "while a memoryview or array of it is alive."},
	{"delete", (PyCFunction)seg_delete, METH_NOARGS,
	 "delete()\n\nRemove the segment's name and mark it deleted: other handles get "
	 "OSError(EIDRM). The handle stays open until close()."},
	{"stat", (PyCFunction)seg_stat, METH_NOARGS,
	 "stat() -> dict\n\nDescribe the segment (shmkit_seg_stat): kind, sizes, creator, "
	 "mode, owner, ..."},
	{"check", (PyCFunction)seg_check, METH_NOARGS,
	 "check()\n\nRaise OSError(EIDRM) once the segment was deleted, OSError(EFAULT) once "
	 "it was truncated under the guard; else return None."},
	{"fileno", (PyCFunction)seg_fileno, METH_NOARGS,
	 "fileno() -> int\n\nThe POSIX descriptor (owned by the handle); OSError(ENOTSUP) "
	 "for System V."},
	{"__enter__", self_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)seg_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}};

static PyGetSetDef seg_getset[] = {
	{"size", (getter)seg_get_size, NULL, "bytes in the data area", NULL},
	{"created", (getter)seg_get_created, NULL, "True if this handle created the segment",
	 NULL},
	{"closed", (getter)seg_get_closed, NULL, "True once closed", NULL},
	{NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef seg_members[] = {
	{"name", T_OBJECT, offsetof(SegmentObject, name), READONLY, "the name as given"},
	{NULL, 0, 0, 0, NULL}};

static PySequenceMethods seg_as_sequence = {.sq_length = (lenfunc)seg_len};

static PyTypeObject SegmentType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Segment",
	.tp_basicsize = sizeof(SegmentObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Segment(name, size=0, *, create=False, excl=False, mode=0, readonly=False,\n"
		  "        sysv=False, raw=False, persist=False, kind=KIND_DATA)\n\n"
		  "A named shared-memory segment, mapped. It exports its data area through the\n"
		  "buffer protocol: memoryview(seg) and numpy.frombuffer(seg, dtype) map it\n"
		  "with no copy (read-only when opened readonly). size is required when\n"
		  "creating; when opening, 0 accepts any size. mode 0 means 0600. raw maps an\n"
		  "object with no shmkit header (multiprocessing.shared_memory's, say).\n"
		  "A context manager: leaving the block closes the handle.",
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)seg_init,
	.tp_dealloc = (destructor)seg_dealloc,
	.tp_as_buffer = &seg_as_buffer,
	.tp_as_sequence = &seg_as_sequence,
	.tp_methods = seg_methods,
	.tp_getset = seg_getset,
	.tp_members = seg_members,
};

/* ---- Blob ---- */

typedef struct {
	PyObject_HEAD
	shmkit_blob *b;
	PyObject *name;
	unsigned long long last; /* version of the last read or wait */
	int busy;
} BlobObject;

static int blob_init(BlobObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "size", "create", "excl", "mode", "readonly", "sysv",
				 "persist", NULL};
	PyObject *name, *nb = NULL;
	Py_ssize_t size = 0;
	int create = 0, excl = 0, ro = 0, sysv = 0, persist = 0;
	unsigned mode = 0;
	if (self->b) {
		PyErr_SetString(PyExc_RuntimeError, "Blob is already open");
		return -1;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n$ppIppp:Blob", kwlist, &name, &size,
					 &create, &excl, &mode, &ro, &sysv, &persist))
		return -1;
	if (size < 0) {
		PyErr_SetString(PyExc_ValueError, "size must be >= 0");
		return -1;
	}
	if (name_arg(name, &nb) < 0)
		return -1;
	unsigned flags = (create ? SHMKIT_SEG_CREATE : 0) | (excl ? SHMKIT_SEG_EXCL : 0) |
			 (ro ? SHMKIT_SEG_RDONLY : 0) | (sysv ? SHMKIT_SEG_SYSV : 0) |
			 (persist ? SHMKIT_SEG_PERSIST : 0);
	shmkit_blob *b = NULL;
	int r;
	Py_BEGIN_ALLOW_THREADS
	r = shmkit_blob_open(PyBytes_AS_STRING(nb), (size_t)size, mode, flags, &b);
	Py_END_ALLOW_THREADS
	Py_DECREF(nb);
	if (r < 0) {
		raise_err(r, name);
		return -1;
	}
	self->b = b;
	int64_t v = shmkit_blob_version(b);
	self->last = v > 0 ? (unsigned long long)v : 0;
	Py_INCREF(name);
	Py_XSETREF(self->name, name);
	return 0;
}

static void blob_dealloc(BlobObject *self)
{
	shmkit_blob_close(self->b);
	Py_XDECREF(self->name);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *blob_close(BlobObject *self, PyObject *unused)
{
	(void)unused;
	if (self->busy) {
		PyErr_SetString(PyExc_RuntimeError, "cannot close: another thread is using it");
		return NULL;
	}
	shmkit_blob_close(self->b);
	self->b = NULL;
	Py_RETURN_NONE;
}

static PyObject *blob_exit(BlobObject *self, PyObject *args)
{
	return exit_result(blob_close(self, NULL), args);
}

/* Reads into buf; the GIL is released for big copies. Returns bytes or -errno. */
static ssize_t blob_read_raw(BlobObject *self, void *buf, size_t cap, uint64_t *ver)
{
	ssize_t r;
	if (cap < BIG_COPY)
		return shmkit_blob_read(self->b, buf, cap, ver);
	Py_BEGIN_ALLOW_THREADS
	r = shmkit_blob_read(self->b, buf, cap, ver);
	Py_END_ALLOW_THREADS
	return r;
}

static PyObject *blob_read(BlobObject *self, PyObject *unused)
{
	(void)unused;
	BEGIN(self, b, NULL);
	size_t size = shmkit_blob_size(self->b);
	PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
	if (!out) {
		END(self);
		return NULL;
	}
	uint64_t ver = 0;
	ssize_t r = blob_read_raw(self, PyBytes_AS_STRING(out), size, &ver);
	END(self);
	if (r < 0) {
		Py_DECREF(out);
		return raise_err(r, self->name);
	}
	self->last = ver;
	return out;
}

static PyObject *blob_read_into(BlobObject *self, PyObject *arg)
{
	Py_buffer view;
	if (PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE) < 0)
		return NULL;
	BEGIN(self, b, (PyBuffer_Release(&view), NULL));
	uint64_t ver = 0;
	ssize_t r = blob_read_raw(self, view.buf, (size_t)view.len, &ver);
	END(self);
	PyBuffer_Release(&view);
	if (r < 0)
		return raise_err(r, self->name);
	self->last = ver;
	return PyLong_FromSsize_t(r);
}

static PyObject *blob_write(BlobObject *self, PyObject *arg)
{
	Py_buffer view;
	if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	BEGIN(self, b, (PyBuffer_Release(&view), NULL));
	int r;
	/* Writers serialize on the blob's lock: this may wait for another writer. */
	Py_BEGIN_ALLOW_THREADS
	r = shmkit_blob_write(self->b, view.buf, (size_t)view.len);
	Py_END_ALLOW_THREADS
	END(self);
	PyBuffer_Release(&view);
	if (r < 0)
		return raise_err(r, self->name);
	Py_RETURN_NONE;
}

static PyObject *blob_get_version(BlobObject *self, void *c)
{
	(void)c;
	if (!self->b) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed handle");
		return NULL;
	}
	int64_t v = shmkit_blob_version(self->b);
	if (v < 0)
		return raise_err(v, self->name);
	return PyLong_FromLongLong(v);
}

struct blob_wait_args {
	shmkit_blob *b;
	uint64_t last;
};

static long long blob_wait_op(void *arg, int64_t t)
{
	struct blob_wait_args *a = arg;
	return shmkit_blob_wait(a->b, a->last, t);
}

static PyObject *blob_wait(BlobObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"last", "timeout", NULL};
	PyObject *last = Py_None, *to = Py_None;
	int64_t t;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:wait", kwlist, &last, &to))
		return NULL;
	if (timeout_ns(to, &t) < 0)
		return NULL;
	struct blob_wait_args a = {NULL, self->last};
	if (last != Py_None) {
		a.last = PyLong_AsUnsignedLongLong(last);
		if (PyErr_Occurred())
			return NULL;
	}
	BEGIN(self, b, NULL);
	a.b = self->b;
	long long r = run(blob_wait_op, &a, t);
	END(self);
	if (r == RAISED)
		return NULL;
	if (r < 0)
		return raise_err(r, self->name);
	self->last = (unsigned long long)r;
	return PyLong_FromLongLong(r);
}

static PyObject *blob_fileno(BlobObject *self, PyObject *unused)
{
	(void)unused;
	BEGIN(self, b, NULL);
	int r = shmkit_blob_fd(self->b);
	END(self);
	if (r < 0)
		return raise_err(r, self->name);
	return PyLong_FromLong(r);
}

static PyObject *blob_delete(BlobObject *self, PyObject *unused)
{
	(void)unused;
	BEGIN(self, b, NULL);
	int r = shmkit_blob_delete(self->b);
	END(self);
	if (r < 0)
		return raise_err(r, self->name);
	Py_RETURN_NONE;
}

static PyObject *blob_stat(BlobObject *self, PyObject *unused)
{
	(void)unused;
	struct shmkit_seg_info in;
	BEGIN(self, b, NULL);
	int r = shmkit_seg_stat(shmkit_blob_seg(self->b), &in);
	END(self);
	if (r < 0)
		return raise_err(r, self->name);
	return info_dict(&in);
}

static PyObject *blob_get_size(BlobObject *self, void *c)
{
	(void)c;
	return PyLong_FromSize_t(self->b ? shmkit_blob_size(self->b) : 0);
}

static PyObject *blob_get_closed(BlobObject *self, void *c)
{
	(void)c;
	return PyBool_FromLong(!self->b);
}

static PyMethodDef blob_methods[] = {
	{"read", (PyCFunction)blob_read, METH_NOARGS,
	 "read() -> bytes\n\nOne consistent snapshot, whole (never torn, even while writers "
	 "write). Remembers its version (last_version) for wait() and the descriptor."},
	{"read_into", (PyCFunction)blob_read_into, METH_O,
	 "read_into(buffer) -> int\n\nCopy a snapshot into a writable buffer (a bytearray, "
	 "a numpy array); min(len(buffer), size) bytes. Returns the count."},
	{"write", (PyCFunction)blob_write, METH_O,
	 "write(data)\n\nReplace the first len(data) bytes; readers see all of this write or "
	 "none of it. Waits while another writer writes (GIL released)."},
	{"wait", (PyCFunction)(void (*)(void))blob_wait, METH_VARARGS | METH_KEYWORDS,
	 "wait(last=None, timeout=None) -> int\n\nWait until the version differs from last "
	 "(default: the version of this handle's last read or wait) and return it. "
	 "TimeoutError when the timeout ends first; BlockingIOError for timeout 0."},
	{"fileno", (PyCFunction)blob_fileno, METH_NOARGS,
	 "fileno() -> int\n\nA level-triggered descriptor, readable while the version differs "
	 "from the last one read or waited for (for select, selectors, asyncio)."},
	{"delete", (PyCFunction)blob_delete, METH_NOARGS,
	 "delete()\n\nDelete the blob's segment; waiters elsewhere wake with OSError(EIDRM)."},
	{"stat", (PyCFunction)blob_stat, METH_NOARGS, "stat() -> dict\n\nAs Segment.stat()."},
	{"close", (PyCFunction)blob_close, METH_NOARGS, "close()\n\nClose the handle."},
	{"__enter__", self_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)blob_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}};

static PyGetSetDef blob_getset[] = {
	{"version", (getter)blob_get_version, NULL, "completed writes so far", NULL},
	{"size", (getter)blob_get_size, NULL, "bytes in the snapshot", NULL},
	{"closed", (getter)blob_get_closed, NULL, "True once closed", NULL},
	{NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef blob_members[] = {
	{"name", T_OBJECT, offsetof(BlobObject, name), READONLY, "the name as given"},
	{"last_version", T_ULONGLONG, offsetof(BlobObject, last), READONLY,
	 "version of this handle's last read or wait"},
	{NULL, 0, 0, 0, NULL}};

static PyTypeObject BlobType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Blob",
	.tp_basicsize = sizeof(BlobObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Blob(name, size=0, *, create=False, excl=False, mode=0, readonly=False,\n"
		  "     sysv=False, persist=False)\n\n"
		  "A shared snapshot of size bytes that many processes read and write whole:\n"
		  "writers serialize on a robust lock, readers take none and never see a torn\n"
		  "write. A context manager: leaving the block closes the handle.",
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)blob_init,
	.tp_dealloc = (destructor)blob_dealloc,
	.tp_methods = blob_methods,
	.tp_getset = blob_getset,
	.tp_members = blob_members,
};

/* ---- Message: a peeked message, in place ---- */

struct QueueObject;

typedef struct {
	PyObject_HEAD
	struct QueueObject *owner; /* strong reference */
	const char *ptr;
	Py_ssize_t len;
	Py_ssize_t exports;
	int live;       /* peeked and not yet released (or given up) */
	PyObject *view; /* the memoryview __enter__ handed out */
} MessageObject;

/* A channel or a topic end: the two share the peek machinery. */
typedef struct QueueObject {
	PyObject_HEAD
	void *h;             /* shmkit_chan * or shmkit_topic * */
	PyObject *name;
	int role;
	int busy;
	int topic;           /* 1: h is a topic */
	MessageObject *peeked; /* borrowed: the live Message, cleared when it dies */
	char *scratch;       /* topic receive(): max_msg bytes */
	size_t max_msg;
} QueueObject;

static PyTypeObject MessageType;
static PyObject *queue_error(QueueObject *q, long long r);

/* Gives up the Python side of a live message without releasing it in the library
 * (the next peek or receive gets it, or has consumed it). Fails while viewed. */
static int msg_abandon(MessageObject *m)
{
	if (m->exports > 0) {
		PyErr_SetString(PyExc_BufferError,
				"a view of the peeked message is still alive (a memoryview or "
				"numpy array of it): release it first");
		return -1;
	}
	m->live = 0;
	if (m->owner->peeked == m)
		m->owner->peeked = NULL;
	return 0;
}

static int msg_release_lib(MessageObject *m)
{
	QueueObject *q = m->owner;
	if (q->topic)
		return shmkit_topic_release(q->h);
	return shmkit_chan_release(q->h);
}

/* release(): frees the message in the ring. Returns 0 or -1 with an exception. */
static int msg_release(MessageObject *m)
{
	if (!m->live)
		return 0;
	if (m->view) {
		/* Ours: release it (fails if something, e.g. numpy, holds its buffer). */
		PyObject *r = PyObject_CallMethod(m->view, "release", NULL);
		if (!r) {
			PyErr_Clear();
		} else {
			Py_DECREF(r);
			Py_CLEAR(m->view);
		}
	}
	if (msg_abandon(m) < 0)
		return -1;
	if (!m->owner->h)
		return 0;
	int r = msg_release_lib(m);
	if (r < 0) {
		raise_err(r, m->owner->name);
		return -1;
	}
	return 0;
}

static void msg_dealloc(MessageObject *m)
{
	/* Dropped without release(): free it all the same (a topic's -ESTALE cannot be
	 * reported from here). No export exists: each holds a reference to us. */
	if (m->live && m->owner->h && !m->owner->busy)
		msg_release_lib(m);
	if (m->owner->peeked == m)
		m->owner->peeked = NULL;
	Py_XDECREF(m->view);
	Py_DECREF(m->owner);
	Py_TYPE(m)->tp_free((PyObject *)m);
}

static int msg_getbuffer(MessageObject *m, Py_buffer *view, int flags)
{
	if (!m->live && m->len > 0) {
		PyErr_SetString(PyExc_BufferError, "the message was released");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, (PyObject *)m, (void *)m->ptr, m->len, 1, flags) < 0)
		return -1;
	m->exports++;
	return 0;
}

static void msg_releasebuffer(MessageObject *m, Py_buffer *view)
{
	(void)view;
	m->exports--;
}

static PyBufferProcs msg_as_buffer = {(getbufferproc)msg_getbuffer,
				      (releasebufferproc)msg_releasebuffer};

static PyObject *msg_enter(MessageObject *m, PyObject *unused)
{
	(void)unused;
	if (!m->view) {
		m->view = PyMemoryView_FromObject((PyObject *)m);
		if (!m->view)
			return NULL;
	}
	Py_INCREF(m->view);
	return m->view;
}

static PyObject *msg_exit(MessageObject *m, PyObject *args)
{
	if (msg_release(m) < 0)
		return exit_result(NULL, args);
	Py_RETURN_FALSE;
}

static PyObject *msg_release_py(MessageObject *m, PyObject *unused)
{
	(void)unused;
	if (msg_release(m) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *msg_tobytes(MessageObject *m, PyObject *unused)
{
	(void)unused;
	if (!m->live && m->len > 0) {
		PyErr_SetString(PyExc_ValueError, "the message was released");
		return NULL;
	}
	return PyBytes_FromStringAndSize(m->ptr, m->len);
}

static Py_ssize_t msg_len(MessageObject *m)
{
	return m->len;
}

static PyObject *msg_get_released(MessageObject *m, void *c)
{
	(void)c;
	return PyBool_FromLong(!m->live);
}

static PyMethodDef msg_methods[] = {
	{"release", (PyCFunction)msg_release_py, METH_NOARGS,
	 "release()\n\nFree the message in the ring (leaving the with block does it). "
	 "BufferError while a view of it is alive. Topic: OSError(ESTALE) if a publisher "
	 "overwrote it while it was held (discard what was read)."},
	{"tobytes", (PyCFunction)msg_tobytes, METH_NOARGS, "tobytes() -> bytes\n\nA copy."},
	{"__enter__", (PyCFunction)msg_enter, METH_NOARGS,
	 "A read-only memoryview of the message in place (no copy)."},
	{"__exit__", (PyCFunction)msg_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}};

static PyGetSetDef msg_getset[] = {
	{"released", (getter)msg_get_released, NULL, "True once released", NULL},
	{NULL, NULL, NULL, NULL, NULL}};

static PySequenceMethods msg_as_sequence = {.sq_length = (lenfunc)msg_len};

static PyTypeObject MessageType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Message",
	.tp_basicsize = sizeof(MessageObject),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A message held in place by peek(): use it as a context manager,\n"
		  "    with ch.peek() as view:   # a read-only memoryview, no copy\n"
		  "        use(view)\n"
		  "and leaving the block releases it. Empty at end-of-stream.",
	.tp_dealloc = (destructor)msg_dealloc,
	.tp_as_buffer = &msg_as_buffer,
	.tp_as_sequence = &msg_as_sequence,
	.tp_methods = msg_methods,
	.tp_getset = msg_getset,
};

/* ---- Channel and Topic ---- */

static int role_arg(PyObject *o, int topic, int *role)
{
	if (PyLong_Check(o)) {
		long v = PyLong_AsLong(o);
		if (v >= 0 && v <= 2) {
			*role = (int)v;
			return 0;
		}
	} else if (PyUnicode_Check(o)) {
		static const char *const chan[] = {"observer", "producer", "consumer"};
		static const char *const top[] = {"observer", "publisher", "subscriber"};
		for (int i = 0; i < 3; i++)
			if (!PyUnicode_CompareWithASCIIString(o, topic ? top[i] : chan[i])) {
				*role = i;
				return 0;
			}
	}
	PyErr_Format(PyExc_ValueError, "role must be %s", topic ?
		     "'publisher', 'subscriber' or 'observer'" : "'producer', 'consumer' or 'observer'");
	return -1;
}

static void queue_close_lib(QueueObject *q)
{
	if (q->topic)
		shmkit_topic_close(q->h);
	else
		shmkit_chan_close(q->h);
	q->h = NULL;
}

static int queue_close_handle(QueueObject *q)
{
	if (q->busy) {
		PyErr_SetString(PyExc_RuntimeError, "cannot close: another thread is using it");
		return -1;
	}
	/* A peeked, unreleased message stays queued (the library's close keeps it). */
	if (q->peeked && msg_abandon(q->peeked) < 0)
		return -1;
	queue_close_lib(q);
	return 0;
}

static void queue_dealloc(QueueObject *q)
{
	/* A live Message holds a reference to us: none is left here. */
	if (q->h)
		queue_close_lib(q);
	PyMem_Free(q->scratch);
	Py_XDECREF(q->name);
	Py_TYPE(q)->tp_free((PyObject *)q);
}

static PyObject *queue_close(QueueObject *q, PyObject *unused)
{
	(void)unused;
	if (q->h && queue_close_handle(q) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *queue_exit(QueueObject *q, PyObject *args)
{
	return exit_result(queue_close(q, NULL), args);
}

static shmkit_seg *queue_seg(const QueueObject *q)
{
	return q->topic ? shmkit_topic_seg(q->h) : shmkit_chan_seg(q->h);
}

static PyObject *queue_delete(QueueObject *q, PyObject *unused)
{
	(void)unused;
	BEGIN(q, h, NULL);
	int r = shmkit_seg_delete(queue_seg(q));
	END(q);
	if (r < 0)
		return raise_err(r, q->name);
	Py_RETURN_NONE;
}

static PyObject *queue_fileno(QueueObject *q, PyObject *unused)
{
	(void)unused;
	BEGIN(q, h, NULL);
	int r = q->topic ? shmkit_topic_fd(q->h) : shmkit_chan_fd(q->h);
	END(q);
	if (r < 0)
		return raise_err(r, q->name);
	return PyLong_FromLong(r);
}

static PyObject *queue_set_spin(QueueObject *q, PyObject *arg)
{
	double s = PyFloat_AsDouble(arg);
	if (s == -1.0 && PyErr_Occurred())
		return NULL;
	if (!q->h) {
		PyErr_SetString(PyExc_ValueError, "operation on a closed handle");
		return NULL;
	}
	int64_t ns = s <= 0 ? 0 : s >= 1 ? SHMKIT_SEC : (int64_t)(s * 1e9);
	if (q->topic)
		shmkit_topic_set_spin(q->h, ns);
	else
		shmkit_chan_set_spin(q->h, ns);
	Py_RETURN_NONE;
}

static PyObject *queue_stat(QueueObject *q, PyObject *unused)
{
	(void)unused;
	struct shmkit_seg_info in;
	BEGIN(q, h, NULL);
	int r = shmkit_seg_stat(queue_seg(q), &in);
	END(q);
	if (r < 0)
		return raise_err(r, q->name);
	return info_dict(&in);
}

static PyObject *queue_get_closed(QueueObject *q, void *c)
{
	(void)c;
	return PyBool_FromLong(!q->h);
}

static PyObject *queue_get_role(QueueObject *q, void *c)
{
	(void)c;
	static const char *const chan[] = {"observer", "producer", "consumer"};
	static const char *const top[] = {"observer", "publisher", "subscriber"};
	return PyUnicode_FromString(q->topic ? top[q->role] : chan[q->role]);
}

/* The message the library just peeked, as a Message (the same object while it is
 * held, since the library gives the same message again). */
static PyObject *queue_message(QueueObject *q, const void *ptr, ssize_t len)
{
	if (q->peeked) {
		Py_INCREF(q->peeked);
		return (PyObject *)q->peeked;
	}
	MessageObject *m = PyObject_New(MessageObject, &MessageType);
	if (!m)
		return NULL; /* the message stays peeked: the next peek gets it */
	Py_INCREF(q);
	m->owner = q;
	m->ptr = ptr;
	m->len = len;
	m->exports = 0;
	m->view = NULL;
	m->live = len > 0;
	if (m->live)
		q->peeked = m;
	return (PyObject *)m;
}

struct peek_args {
	void *h;
	const void *ptr;
	size_t len;
};

static long long chan_peek_op(void *arg, int64_t t)
{
	struct peek_args *a = arg;
	return shmkit_chan_peek(a->h, &a->ptr, &a->len, t);
}

static long long topic_peek_op(void *arg, int64_t t)
{
	struct peek_args *a = arg;
	return shmkit_topic_peek(a->h, &a->ptr, &a->len, t);
}

static PyObject *queue_peek(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	PyObject *to;
	int64_t t;
	if (parse_args("peek", args, nargs, kwnames, 0, NULL, &to) < 0 || timeout_ns(to, &t) < 0)
		return NULL;
	BEGIN(q, h, NULL);
	struct peek_args a = {q->h, NULL, 0};
	long long r = run(q->topic ? topic_peek_op : chan_peek_op, &a, t);
	END(q);
	if (r < 0)
		return queue_error(q, r);
	return queue_message(q, a.ptr, (ssize_t)r);
}

/* Before a call that consumes the next message: a Message still held is consumed
 * with it, so it must not be viewed any more. */
static int queue_drop_peeked(QueueObject *q)
{
	return q->peeked ? msg_abandon(q->peeked) : 0;
}

static PyObject *raise_lost(QueueObject *q)
{
	PyObject *e = PyObject_CallFunction(MessagesLost, "isO", EOVERFLOW,
					    shmkit_strerror(-EOVERFLOW), q->name);
	if (e) {
		PyObject *n = PyLong_FromUnsignedLongLong(shmkit_topic_lost(q->h));
		if (n && PyObject_SetAttrString(e, "lost", n) == 0)
			PyErr_SetObject(MessagesLost, e);
		Py_XDECREF(n);
		Py_DECREF(e);
	}
	return NULL;
}

static PyObject *queue_error(QueueObject *q, long long r)
{
	if (r == RAISED)
		return NULL;
	if (r == -EOVERFLOW && q->topic)
		return raise_lost(q);
	return raise_err(r, q->name);
}

/* Channel.recv(): peek, copy into a bytes of the exact length, release. */
static PyObject *chan_recv(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
			   PyObject *kwnames)
{
	PyObject *to;
	int64_t t;
	if (parse_args("recv", args, nargs, kwnames, 0, NULL, &to) < 0 || timeout_ns(to, &t) < 0)
		return NULL;
	BEGIN(q, h, NULL);
	if (queue_drop_peeked(q) < 0) {
		END(q);
		return NULL;
	}
	struct peek_args a = {q->h, NULL, 0};
	/* A message already queued is taken with the GIL held; only a wait releases it. */
	long long r = shmkit_chan_peek(q->h, &a.ptr, &a.len, 0);
	if (r == -EAGAIN && t != 0)
		r = run(chan_peek_op, &a, t);
	PyObject *out = NULL;
	if (r < 0) {
		queue_error(q, r);
	} else if ((out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)r)) != NULL) {
		if (r >= BIG_COPY) {
			Py_BEGIN_ALLOW_THREADS
			memcpy(PyBytes_AS_STRING(out), a.ptr, (size_t)r);
			Py_END_ALLOW_THREADS
		} else if (r > 0) {
			memcpy(PyBytes_AS_STRING(out), a.ptr, (size_t)r);
		}
		if (r > 0)
			shmkit_chan_release(q->h);
	}
	/* On MemoryError the message stays peeked: the next call gets it again. */
	END(q);
	return out;
}

struct recv_args {
	void *h;
	void *buf;
	size_t cap;
};

static long long chan_recv_op(void *arg, int64_t t)
{
	struct recv_args *a = arg;
	return shmkit_chan_recv(a->h, a->buf, a->cap, t);
}

static long long topic_recv_op(void *arg, int64_t t)
{
	struct recv_args *a = arg;
	return shmkit_topic_receive(a->h, a->buf, a->cap, t);
}

/* A receive into buf; the GIL is held for a first try unless the copy may be big. */
static long long queue_recv_raw(QueueObject *q, void *buf, size_t cap, int64_t t)
{
	blocking_op op = q->topic ? topic_recv_op : chan_recv_op;
	struct recv_args a = {q->h, buf, cap};
	long long r = -EAGAIN;
	if (cap < BIG_COPY || t == 0)
		r = op(&a, 0);
	if (r == -EAGAIN && t != 0)
		r = run(op, &a, t);
	return r;
}

static PyObject *queue_recv_into(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
				 PyObject *kwnames)
{
	PyObject *pos[1], *to;
	int64_t t;
	Py_buffer view;
	if (parse_args("recv_into", args, nargs, kwnames, 1, pos, &to) < 0 ||
	    timeout_ns(to, &t) < 0)
		return NULL;
	if (PyObject_GetBuffer(pos[0], &view, PyBUF_WRITABLE) < 0)
		return NULL;
	BEGIN(q, h, (PyBuffer_Release(&view), NULL));
	if (queue_drop_peeked(q) < 0) {
		END(q);
		PyBuffer_Release(&view);
		return NULL;
	}
	long long r = queue_recv_raw(q, view.buf, (size_t)view.len, t);
	END(q);
	PyBuffer_Release(&view);
	if (r < 0)
		return queue_error(q, r);
	return PyLong_FromLongLong(r);
}

struct send_args {
	void *h;
	const void *buf;
	size_t len;
};

static long long chan_send_op(void *arg, int64_t t)
{
	struct send_args *a = arg;
	return shmkit_chan_send(a->h, a->buf, a->len, t);
}

static long long topic_send_op(void *arg, int64_t t)
{
	struct send_args *a = arg;
	return shmkit_topic_publish(a->h, a->buf, a->len, t);
}

static PyObject *queue_send(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
			    PyObject *kwnames)
{
	PyObject *pos[1], *to;
	int64_t t;
	Py_buffer view;
	if (parse_args(q->topic ? "publish" : "send", args, nargs, kwnames, 1, pos, &to) < 0 ||
	    timeout_ns(to, &t) < 0)
		return NULL;
	if (PyObject_GetBuffer(pos[0], &view, PyBUF_SIMPLE) < 0)
		return NULL;
	BEGIN(q, h, (PyBuffer_Release(&view), NULL));
	blocking_op op = q->topic ? topic_send_op : chan_send_op;
	struct send_args a = {q->h, view.buf, (size_t)view.len};
	long long r = -EAGAIN;
	if (view.len < BIG_COPY || t == 0)
		r = op(&a, 0);
	if (r == -EAGAIN && t != 0)
		r = run(op, &a, t);
	END(q);
	PyBuffer_Release(&view);
	if (r < 0)
		return queue_error(q, r);
	Py_RETURN_NONE;
}

/* Topic.receive(): into the handle's scratch buffer (the library checks the copy was
 * not overtaken by a publisher), then a bytes of the exact length. */
static PyObject *topic_receive(QueueObject *q, PyObject *const *args, Py_ssize_t nargs,
			       PyObject *kwnames)
{
	PyObject *to;
	int64_t t;
	if (parse_args("receive", args, nargs, kwnames, 0, NULL, &to) < 0 ||
	    timeout_ns(to, &t) < 0)
		return NULL;
	BEGIN(q, h, NULL);
	if (queue_drop_peeked(q) < 0) {
		END(q);
		return NULL;
	}
	if (!q->scratch) {
		struct shmkit_topic_stats st;
		int e = shmkit_topic_stats(q->h, &st);
		if (e < 0) {
			END(q);
			return raise_err(e, q->name);
		}
		q->max_msg = (size_t)st.max_msg;
		q->scratch = PyMem_Malloc(q->max_msg ? q->max_msg : 1);
		if (!q->scratch) {
			END(q);
			return PyErr_NoMemory();
		}
	}
	long long r = queue_recv_raw(q, q->scratch, q->max_msg, t);
	END(q);
	if (r < 0)
		return queue_error(q, r);
	return PyBytes_FromStringAndSize(q->scratch, (Py_ssize_t)r);
}

static PyObject *chan_stats(QueueObject *q, PyObject *unused)
{
	(void)unused;
	struct shmkit_chan_stats st;
	BEGIN(q, h, NULL);
	int r = shmkit_chan_stats(q->h, &st);
	END(q);
	if (r < 0)
		return raise_err(r, q->name);
	return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:i,s:i,s:O,s:i,s:i}",
			     "capacity", st.capacity, "used", st.used, "max_msg", st.max_msg,
			     "msgs_sent", st.msgs_sent, "bytes_sent", st.bytes_sent, "msgs_recv",
			     st.msgs_recv, "bytes_recv", st.bytes_recv, "producer_sleeps",
			     st.producer_sleeps, "consumer_sleeps", st.consumer_sleeps, "wakes",
			     st.wakes, "producer_pid", (int)st.producer_pid, "consumer_pid",
			     (int)st.consumer_pid, "producer_closed",
			     st.producer_closed ? Py_True : Py_False, "producer_alive",
			     (int)st.producer_alive, "consumer_alive", (int)st.consumer_alive);
}

static PyObject *topic_stats(QueueObject *q, PyObject *unused)
{
	(void)unused;
	struct shmkit_topic_stats st;
	BEGIN(q, h, NULL);
	int r = shmkit_topic_stats(q->h, &st);
	END(q);
	if (r < 0)
		return raise_err(r, q->name);
	return Py_BuildValue("{s:K,s:K,s:O,s:I,s:I,s:I,s:I,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}",
			     "capacity", st.capacity, "max_msg", st.max_msg, "reliable",
			     st.reliable ? Py_True : Py_False, "max_subscribers",
			     st.max_subscribers, "max_publishers", st.max_publishers,
			     "publishers", st.publishers, "subscribers", st.subscribers,
			     "published", st.published, "bytes_published", st.bytes_published,
			     "next_seq", st.next_seq, "evicted", st.evicted, "abandoned",
			     st.abandoned, "received", st.received, "lost", st.lost, "lag",
			     st.lag);
}

static PyObject *topic_subscribers(QueueObject *q, PyObject *unused)
{
	(void)unused;
	BEGIN(q, h, NULL);
	struct shmkit_topic_sub_info *in = NULL;
	int n = shmkit_topic_subscribers(q->h, NULL, 0);
	/* Subscribers may join between the two calls: ask again with room to spare. */
	for (int tries = 0; n >= 0 && tries < 4; tries++) {
		size_t cap = (size_t)n + 16;
		PyMem_Free(in);
		in = PyMem_Malloc(cap * sizeof *in);
		if (!in) {
			END(q);
			return PyErr_NoMemory();
		}
		n = shmkit_topic_subscribers(q->h, in, cap);
		if (n >= 0 && (size_t)n <= cap)
			break;
	}
	END(q);
	if (n < 0) {
		PyMem_Free(in);
		return raise_err(n, q->name);
	}
	PyObject *list = PyList_New(0);
	for (int i = 0; list && i < n; i++) {
		PyObject *alive = in[i].alive < 0 ? Py_None : in[i].alive ? Py_True : Py_False;
		PyObject *d = Py_BuildValue("{s:i,s:O,s:K,s:K,s:K}", "pid", (int)in[i].pid, "alive",
					    alive, "received", in[i].received, "lost", in[i].lost,
					    "lag", in[i].lag);
		if (!d || PyList_Append(list, d) < 0)
			Py_CLEAR(list);
		Py_XDECREF(d);
	}
	PyMem_Free(in);
	return list;
}

static PyObject *topic_get_lost(QueueObject *q, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(q->h ? shmkit_topic_lost(q->h) : 0);
}

static int queue_init(QueueObject *q, PyObject *args, PyObject *kw, int topic)
{
	static char *chan_kw[] = {"name", "role", "capacity", "create", "excl", "mode", "sysv",
				  NULL};
	static char *topic_kw[] = {"name", "role", "capacity", "create", "excl", "mode", "sysv",
				   "reliable", "oldest", "max_subscribers", "max_publishers",
				   NULL};
	PyObject *name, *role, *nb = NULL;
	Py_ssize_t cap = 0;
	int create = 0, excl = 0, sysv = 0, reliable = 0, oldest = 0;
	unsigned mode = 0, max_subs = 0, max_pubs = 0;
	if (q->h) {
		PyErr_SetString(PyExc_RuntimeError, "already open");
		return -1;
	}
	if (topic) {
		if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|n$ppIppppII:Topic", topic_kw, &name,
						 &role, &cap, &create, &excl, &mode, &sysv,
						 &reliable, &oldest, &max_subs, &max_pubs))
			return -1;
	} else if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|n$ppIp:Channel", chan_kw, &name,
						&role, &cap, &create, &excl, &mode, &sysv)) {
		return -1;
	}
	if (cap < 0) {
		PyErr_SetString(PyExc_ValueError, "capacity must be >= 0");
		return -1;
	}
	int r = 0;
	if (role_arg(role, topic, &q->role) < 0 || name_arg(name, &nb) < 0)
		return -1;
	unsigned flags = (create ? SHMKIT_SEG_CREATE : 0) | (excl ? SHMKIT_SEG_EXCL : 0) |
			 (sysv ? SHMKIT_SEG_SYSV : 0);
	void *h = NULL;
	if (topic) {
		struct shmkit_topic_opts o;
		memset(&o, 0, sizeof o);
		o.capacity = (size_t)cap;
		o.mode = mode;
		o.flags = flags | (reliable ? SHMKIT_TOPIC_RELIABLE : 0) |
			  (oldest ? SHMKIT_TOPIC_OLDEST : 0);
		o.max_subscribers = max_subs;
		o.max_publishers = max_pubs;
		shmkit_topic *t = NULL;
		Py_BEGIN_ALLOW_THREADS
		r = shmkit_topic_open_opts(PyBytes_AS_STRING(nb), (unsigned)q->role, &o, &t);
		Py_END_ALLOW_THREADS
		h = t;
	} else {
		shmkit_chan *c = NULL;
		Py_BEGIN_ALLOW_THREADS
		r = shmkit_chan_open(PyBytes_AS_STRING(nb), (unsigned)q->role, (size_t)cap, mode,
				     flags, &c);
		Py_END_ALLOW_THREADS
		h = c;
	}
	Py_DECREF(nb);
	if (r < 0) {
		raise_err(r, name);
		return -1;
	}
	q->h = h;
	q->topic = topic;
	Py_INCREF(name);
	Py_XSETREF(q->name, name);
	return 0;
}

static int chan_init(QueueObject *q, PyObject *args, PyObject *kw)
{
	return queue_init(q, args, kw, 0);
}

static int topic_init(QueueObject *q, PyObject *args, PyObject *kw)
{
	return queue_init(q, args, kw, 1);
}

#define FASTCALL(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS

static PyMethodDef chan_methods[] = {
	{"send", FASTCALL(queue_send),
	 "send(data, timeout=None)\n\nCopy one message (any bytes-like object, 1 byte to "
	 "max_msg) in. Waits while the ring is full: TimeoutError when the timeout ends, "
	 "BlockingIOError for timeout 0, BrokenPipeError once the consumer closed or died "
	 "and the ring is full."},
	{"recv", FASTCALL(chan_recv),
	 "recv(timeout=None) -> bytes\n\nThe next message; b'' at end-of-stream (the "
	 "producer closed and everything was received). BrokenPipeError when the producer "
	 "died and everything it sent was received; TimeoutError; BlockingIOError for "
	 "timeout 0."},
	{"recv_into", FASTCALL(queue_recv_into),
	 "recv_into(buffer, timeout=None) -> int\n\nCopy the next message into a writable "
	 "buffer (bytearray, numpy array, ...) and return its length (0: end-of-stream). "
	 "OSError(EMSGSIZE) if it does not fit (it stays queued)."},
	{"peek", FASTCALL(queue_peek),
	 "peek(timeout=None) -> Message\n\nThe next message in place, with no copy:\n"
	 "    with ch.peek() as view:   # read-only memoryview\n        ...\n"
	 "releases it when the block ends. Errors as recv()."},
	{"fileno", (PyCFunction)queue_fileno, METH_NOARGS,
	 "fileno() -> int\n\nThe level-triggered descriptor for select/epoll/asyncio: the "
	 "consumer's is readable while a message (or end-of-stream, or a dead producer) "
	 "waits; the producer's when there is room. Call recv/send with timeout 0 until "
	 "BlockingIOError."},
	{"stats", (PyCFunction)chan_stats, METH_NOARGS, "stats() -> dict\n\nThe counters."},
	{"stat", (PyCFunction)queue_stat, METH_NOARGS, "stat() -> dict\n\nAs Segment.stat()."},
	{"set_spin", (PyCFunction)queue_set_spin, METH_O,
	 "set_spin(seconds)\n\nHow long a wait spins before it sleeps (0: sleep at once). "
	 "Until set it is measured: three times the wake-up cost this process saw, 5-200 µs."},
	{"delete", (PyCFunction)queue_delete, METH_NOARGS,
	 "delete()\n\nDelete the channel's segment (the handle stays to be closed)."},
	{"close", (PyCFunction)queue_close, METH_NOARGS,
	 "close()\n\nRelease the role and close. A producer's close is end-of-stream."},
	{"__enter__", self_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)queue_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}};

static PyMethodDef topic_methods[] = {
	{"publish", FASTCALL(queue_send),
	 "publish(data, timeout=None)\n\nCopy one message in. Lossy topics never wait for "
	 "subscribers; reliable ones wait for the slowest live one."},
	{"receive", FASTCALL(topic_receive),
	 "receive(timeout=None) -> bytes\n\nThe next message; b'' at end-of-stream. "
	 "MessagesLost (errno EOVERFLOW, .lost = how many) once per gap when a lossy "
	 "subscriber fell behind; the next call continues with the oldest intact message."},
	{"receive_into", FASTCALL(queue_recv_into),
	 "receive_into(buffer, timeout=None) -> int\n\nAs receive(), into a writable buffer."},
	{"peek", FASTCALL(queue_peek),
	 "peek(timeout=None) -> Message\n\nThe next message in place (see Channel.peek). "
	 "Releasing it raises OSError(ESTALE) if a publisher overwrote it meanwhile."},
	{"fileno", (PyCFunction)queue_fileno, METH_NOARGS,
	 "fileno() -> int\n\nThe subscriber's level-triggered descriptor."},
	{"stats", (PyCFunction)topic_stats, METH_NOARGS,
	 "stats() -> dict\n\nTopic counters; a subscriber's own received, lost and lag."},
	{"subscribers", (PyCFunction)topic_subscribers, METH_NOARGS,
	 "subscribers() -> list of dict\n\nThe listed subscribers, with liveness."},
	{"stat", (PyCFunction)queue_stat, METH_NOARGS, "stat() -> dict\n\nAs Segment.stat()."},
	{"set_spin", (PyCFunction)queue_set_spin, METH_O,
	 "set_spin(seconds)\n\nHow long a wait spins before it sleeps."},
	{"delete", (PyCFunction)queue_delete, METH_NOARGS, "delete()\n\nDelete the segment."},
	{"close", (PyCFunction)queue_close, METH_NOARGS,
	 "close()\n\nRelease the slot and close."},
	{"__enter__", self_enter, METH_NOARGS, NULL},
	{"__exit__", (PyCFunction)queue_exit, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL}};

static PyGetSetDef chan_getset[] = {
	{"closed", (getter)queue_get_closed, NULL, "True once closed", NULL},
	{"role", (getter)queue_get_role, NULL, "'producer', 'consumer' or 'observer'", NULL},
	{NULL, NULL, NULL, NULL, NULL}};

static PyGetSetDef topic_getset[] = {
	{"closed", (getter)queue_get_closed, NULL, "True once closed", NULL},
	{"role", (getter)queue_get_role, NULL, "'publisher', 'subscriber' or 'observer'", NULL},
	{"lost", (getter)topic_get_lost, NULL,
	 "messages lost in the gap the last MessagesLost reported", NULL},
	{NULL, NULL, NULL, NULL, NULL}};

static PyMemberDef queue_members[] = {
	{"name", T_OBJECT, offsetof(QueueObject, name), READONLY, "the name as given"},
	{NULL, 0, 0, 0, NULL}};

static PyTypeObject ChannelType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Channel",
	.tp_basicsize = sizeof(QueueObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Channel(name, role, capacity=0, *, create=False, excl=False, mode=0, sysv=False)\n\n"
		  "One end of a single-producer single-consumer message channel. role is\n"
		  "'producer', 'consumer' or 'observer'. capacity: ring bytes when creating\n"
		  "(0: the default); the largest message is capacity/2. A context manager.",
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)chan_init,
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_methods = chan_methods,
	.tp_getset = chan_getset,
	.tp_members = queue_members,
};

static PyTypeObject TopicType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Topic",
	.tp_basicsize = sizeof(QueueObject),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "Topic(name, role, capacity=0, *, create=False, excl=False, mode=0, sysv=False,\n"
		  "      reliable=False, oldest=False, max_subscribers=0, max_publishers=0)\n\n"
		  "A publish-subscribe topic handle. role is 'publisher', 'subscriber' or\n"
		  "'observer'. Lossy by default (publishers never wait; a lagging subscriber\n"
		  "gets MessagesLost); reliable=True when creating makes publishers wait for\n"
		  "the slowest live subscriber. oldest: a subscriber starts with the oldest\n"
		  "message still retained. A context manager.",
	.tp_new = PyType_GenericNew,
	.tp_init = (initproc)topic_init,
	.tp_dealloc = (destructor)queue_dealloc,
	.tp_methods = topic_methods,
	.tp_getset = topic_getset,
	.tp_members = queue_members,
};

/* ---- module functions ---- */

static PyObject *mod_unlink(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = {"name", "sysv", NULL};
	PyObject *name, *nb;
	int sysv = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$p:unlink", kwlist, &name, &sysv))
		return NULL;
	if (name_arg(name, &nb) < 0)
		return NULL;
	int r;
	Py_BEGIN_ALLOW_THREADS
	r = shmkit_seg_unlink(PyBytes_AS_STRING(nb), sysv ? SHMKIT_SEG_SYSV : 0);
	Py_END_ALLOW_THREADS
	Py_DECREF(nb);
	if (r < 0)
		return raise_err(r, name);
	Py_RETURN_NONE;
}

static PyObject *mod_inspect(PyObject *mod, PyObject *args, PyObject *kw)
{
	(void)mod;
	static char *kwlist[] = {"name", "sysv", NULL};
	PyObject *name, *nb;
	int sysv = 0;
	struct shmkit_seg_info in;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$p:inspect", kwlist, &name, &sysv))
		return NULL;
	if (name_arg(name, &nb) < 0)
		return NULL;
	int r;
	Py_BEGIN_ALLOW_THREADS
	r = shmkit_seg_inspect(PyBytes_AS_STRING(nb), sysv ? SHMKIT_SEG_SYSV : 0, &in);
	Py_END_ALLOW_THREADS
	Py_DECREF(nb);
	if (r < 0)
		return raise_err(r, name);
	return info_dict(&in);
}

static PyObject *mod_strerror(PyObject *mod, PyObject *arg)
{
	(void)mod;
	long e = PyLong_AsLong(arg);
	if (e == -1 && PyErr_Occurred())
		return NULL;
	if (e < -INT_MAX || e > INT_MAX)
		e = INT_MAX; /* no such error: the library names it as unknown */
	return PyUnicode_FromString(shmkit_strerror((int)e));
}

static PyObject *mod_live_sweep(PyObject *mod, PyObject *unused)
{
	(void)mod, (void)unused;
	int r = shmkit_live_sweep();
	if (r < 0)
		return raise_err(r, NULL);
	return PyLong_FromLong(r);
}

static PyObject *mod_guard_sigbus(PyObject *mod, PyObject *unused)
{
	(void)mod, (void)unused;
	int r = shmkit_guard_sigbus();
	if (r < 0)
		return raise_err(r, NULL);
	Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
	{"unlink", (PyCFunction)(void (*)(void))mod_unlink, METH_VARARGS | METH_KEYWORDS,
	 "unlink(name, *, sysv=False)\n\nDelete a segment by name (shmkit_seg_unlink): "
	 "FileNotFoundError if there is none."},
	{"inspect", (PyCFunction)(void (*)(void))mod_inspect, METH_VARARGS | METH_KEYWORDS,
	 "inspect(name, *, sysv=False) -> dict\n\nDescribe a segment without opening it for "
	 "use (shmkit_seg_inspect); with sysv, 'id:N' names any System V segment."},
	{"strerror", (PyCFunction)mod_strerror, METH_O,
	 "strerror(err) -> str\n\nshmkit_strerror(): the text of an errno (either sign)."},
	{"live_sweep", (PyCFunction)mod_live_sweep, METH_NOARGS,
	 "live_sweep() -> int\n\nRemove the liveness tokens of dead processes; returns how "
	 "many."},
	{"guard_sigbus", (PyCFunction)mod_guard_sigbus, METH_NOARGS,
	 "guard_sigbus()\n\nTurn a segment truncated under a shmkit call into "
	 "OSError(EFAULT) instead of SIGBUS (shmkit_guard_sigbus)."},
	{NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
	PyModuleDef_HEAD_INIT, "shmkit._shmkit",
	"The C extension over libshmkit; import shmkit instead.", -1, mod_methods,
	NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__shmkit(void);

PyMODINIT_FUNC PyInit__shmkit(void)
{
	PyTypeObject *types[] = {&SegmentType, &BlobType, &MessageType, &ChannelType, &TopicType};
	const char *names[] = {"Segment", "Blob", "Message", "Channel", "Topic"};
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (PyType_Ready(types[i]) < 0)
			return NULL;
	PyObject *m = PyModule_Create(&moddef);
	if (!m)
		return NULL;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		Py_INCREF(types[i]);
		if (PyModule_AddObject(m, names[i], (PyObject *)types[i]) < 0) {
			Py_DECREF(types[i]);
			goto fail;
		}
	}
	MessagesLost = PyErr_NewExceptionWithDoc(
		"shmkit.MessagesLost",
		"A lossy topic's subscriber fell more than the ring behind: .lost messages were "
		"overwritten unread (errno EOVERFLOW). The next receive continues.",
		PyExc_OSError, NULL);
	if (!MessagesLost)
		goto fail;
	Py_INCREF(MessagesLost);
	if (PyModule_AddObject(m, "MessagesLost", MessagesLost) < 0) {
		Py_DECREF(MessagesLost);
		goto fail;
	}
	struct {
		const char *name;
		long v;
	} consts[] = {
		{"KIND_ANY", SHMKIT_KIND_ANY}, {"KIND_DATA", SHMKIT_KIND_DATA},
		{"KIND_BLOB", SHMKIT_KIND_BLOB}, {"KIND_CHAN", SHMKIT_KIND_CHAN},
		{"KIND_TOPIC", SHMKIT_KIND_TOPIC}, {"KIND_RAW", SHMKIT_KIND_RAW},
		{"STATE_INIT", SHMKIT_STATE_INIT}, {"STATE_READY", SHMKIT_STATE_READY},
		{"STATE_DELETED", SHMKIT_STATE_DELETED}, {"NAME_MAX", SHMKIT_NAME_MAX},
		{"LIBRARY_VERSION_NUM", (long)shmkit_version()},
		{"HEADER_VERSION_NUM", (long)SHMKIT_VERSION},
	};
	for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
		if (PyModule_AddIntConstant(m, consts[i].name, consts[i].v) < 0)
			goto fail;
	if (PyModule_AddStringConstant(m, "library_version", shmkit_version_string()) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
