"""`prefetch(array, index)`: inside a numba kernel, ask the CPU to start loading the cache line
of array[index] now (LLVM's `llvm.prefetch`: read, high locality), so that a look-up a few steps
later finds it there. A hint: it never faults and changes no result.

Why: the kernels that look words up in tables larger than the CPU caches (the unigram encoder's
memo of 64 MB) waited on memory for each word in turn, since what a word does next depends on
what it finds; the loads of independent words ahead of time overlap instead (perf: 41% of the
encoder's samples sat on its slot load).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):
    """array: a numba array (any dtype, records too); index: an integer within it."""
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, ary, [args[1]])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch.p0")
        # (address, 0: a read, 3: keep in every cache level, 1: the data cache)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 0),
                                ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen
