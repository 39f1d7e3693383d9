# The entry points of response.pyx the resolution driver (resolution.pyx) calls as C
# functions, without a Python call per miss.

from resolver.state cimport ResolverCore
from resolver.iterator.events cimport Result

cpdef object hit_or_begin(ResolverCore r, bytes q)
cpdef object begin(ResolverCore r, bytes q, bytes key=*)
cpdef bytes finish(ResolverCore r, bytes q, tuple miss, Result res)
