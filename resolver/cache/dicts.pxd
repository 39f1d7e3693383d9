# A dict read without a method call, for every Cython reader of the caches' dicts.
from cpython.dict cimport PyDict_GetItemWithError
from cpython.object cimport PyObject


cdef inline object dict_get(object data, object key):
    """``data.get(key)`` for a dict or a dict subclass (the caches' dicts, the metrics'
    Counters), read through the dict API without a method call; writes still go through
    the subclass's own methods."""
    cdef PyObject* p = PyDict_GetItemWithError(data, key)
    return None if p == NULL else <object>p
