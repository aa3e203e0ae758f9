"""A hint to the CPU: ``prefetch(a, i)`` asks for the cache line that holds ``a[i]`` (LLVM's
``llvm.prefetch``: a read, kept in every cache level), and goes on without waiting for it.

A batch of the sparse first layer is a set of random rows of the training set's CSR arrays
(sparse.py), tens of megabytes, more than the last-level cache holds: each row's entries come
from memory, and a kernel that reads them as it goes waits for each row in turn (on MNIST the
forward pass of 128 random rows took 1.2-1.4x as long as that of 128 consecutive ones). Asked for a
few rows ahead, they arrive while the rows before are computed. A prefetch changes no value and
never faults, wherever it points; where the CPU has no such instruction it does nothing.
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_I32 = ir.IntType(32)
_READ, _KEEP_EVERYWHERE, _DATA = 0, 3, 1  # llvm.prefetch's rw, locality and cache type


@intrinsic
def prefetch(typingctx, array, index):
    """Ask for the cache line of ``array[index]`` (a contiguous 1-d array, an integer index)."""
    if not (isinstance(array, types.Array) and array.ndim == 1 and array.layout in "CF"
            and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        address = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        function = builder.module.declare_intrinsic(
            "llvm.prefetch", [address.type], ir.FunctionType(ir.VoidType(), [address.type, _I32, _I32, _I32]))
        builder.call(function, [address, ir.Constant(_I32, _READ), ir.Constant(_I32, _KEEP_EVERYWHERE),
                                ir.Constant(_I32, _DATA)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
