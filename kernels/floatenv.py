"""The floating-point environment of the training kernel: subnormal numbers flushed to zero.

Subnormal floats (below 1.2e-38) cost a microcode assist per operation on x86. Adam makes them:
the m of a weight whose gradient stays 0 decays by (1 - beta1) a step into the subnormal range
and sticks there; on MNIST 6% of the first layer's m are subnormal after 3 epochs, and they
slow the whole update 2x. The training kernels (steps.py) therefore run with flush-to-zero and
denormals-are-zero (MXCSR bits FTZ and DAZ), as TensorFlow and XLA do, in each of their threads,
and restore the register before they return. A value that small only ever adds far below the
last bit of a parameter, so the parameters come out the same. Elsewhere than x86 both
intrinsics do nothing.
"""

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
FLUSH_SUBNORMALS = 0x8040  # MXCSR bits FTZ (15) and DAZ (6)


@intrinsic
def mxcsr(typingctx):
    """The x86 SSE control/status register (0 elsewhere)."""

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not _X86:
            return i32(0)
        slot = cgutils.alloca_once(builder, i32)
        stmxcsr = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]), "llvm.x86.sse.stmxcsr"
        )
        builder.call(stmxcsr, [builder.bitcast(slot, ir.IntType(8).as_pointer())])
        return builder.load(slot)

    return types.uint32(), codegen


@intrinsic
def set_mxcsr(typingctx, value):
    """Load the x86 SSE control/status register (nothing elsewhere)."""

    def codegen(context, builder, signature, args):
        if _X86:
            slot = cgutils.alloca_once_value(builder, args[0])
            ldmxcsr = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()]), "llvm.x86.sse.ldmxcsr"
            )
            builder.call(ldmxcsr, [builder.bitcast(slot, ir.IntType(8).as_pointer())])
        return context.get_dummy_value()

    return types.void(types.uint32), codegen
