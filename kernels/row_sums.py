"""The sparse first layer's two row products (sparse.py) with a row held in vector registers:

    add_row_sums:   out[row, first:last] += sum over p in lo:hi of values[p] * w[indices[p], first:last]
    add_scaled_row: out[indices[p] - first_row, cols] += values[p] * x[i, cols], for p in lo:hi

The columns go as vectors of ``lanes(out)`` elements (the width of the CPU's vector registers: 64
bytes with AVX-512, 32 otherwise), up to MOST_VECTORS of them at once. The forward product loads
each vector of ``out``'s row once, takes every entry's product in turn and stores it once; the
weight gradient loads x's row once and adds it, scaled, to each entry's row of ``out``. A loop
over the columns inside the loop over the entries, as LLVM's vectorizer writes it, loads and
stores the forward's row again for every few entries, and x's row for every entry or two: LLVM
cannot keep a row in registers across the entries, as its length is not known when the kernel
compiles. These are written in LLVM's vector types directly, one unrolled body for each count of
vectors. On MNIST batches a part's block of the forward product took 0.8-0.9 of its time, of the
weight gradient 0.5-0.7 (2-core AMD EPYC, AVX-512).

Each element adds its entries one at a time, in order, a multiply and an add (no fused
multiply-add, so that every CPU rounds alike): the bits of a plain loop over the entries,
whatever the vector width. Where add_row_sums's columns are not a whole number of vectors, its
last vector ends at ``last`` and overlaps the one before it: both load their columns before
either stores, and the columns they share come out the same in both.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

MOST_VECTORS = 9  # a row's vectors held at once (AVX2 has 16 registers, AVX-512 32)
_I32, _I64 = ir.IntType(32), ir.IntType(64)


def _vector_bytes(context) -> int:
    """64 where the compiled code may use AVX-512, 32 otherwise (Numba's target features)."""
    features = getattr(context.codegen(), "_tm_features", "") or ""
    return 64 if "+avx512f" in features.split(",") else 32


def _is_float_array(a) -> bool:
    return isinstance(a, types.Array) and isinstance(a.dtype, types.Float)


@intrinsic
def lanes(typingctx, array):
    """The elements of ``array``'s dtype in one vector (module doc), a constant of the compiled code."""
    if not _is_float_array(array):
        return None

    def codegen(context, builder, signature, args):
        return ir.Constant(_I64, _vector_bytes(context) // (array.dtype.bitwidth // 8))

    return types.int64(array), codegen


def _splat(builder, vector, value):
    one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(_I32, 0))
    mask = ir.Constant(ir.VectorType(_I32, vector.count), [0] * vector.count)
    return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), mask)


def _by_count(builder, count, body):
    """A switch on ``count`` (an i64 in 1 .. MOST_VECTORS): body(c) emits the case of c vectors."""
    done = builder.append_basic_block("vectors.done")
    switch = builder.switch(count, done)
    for c in range(1, MOST_VECTORS + 1):
        case = builder.append_basic_block(f"vectors.{c}")
        switch.add_case(ir.Constant(_I64, c), case)
        builder.position_at_end(case)
        body(c)
        builder.branch(done)
    builder.position_at_end(done)


class _Call:
    """The codegen's view of a call: ``arrays[k]`` for the argument positions given, ``ints[k]``
    (int64) for the integer arguments, and the vector type of the first array's dtype."""

    def __init__(self, context, builder, signature, args, arrays):
        self.builder, kinds = builder, signature.args
        self.arrays = {k: context.make_array(kinds[k])(context, builder, args[k]) for k in arrays}
        self.ints = {k: context.cast(builder, args[k], kinds[k], types.int64)
                     for k in range(len(args)) if isinstance(kinds[k], types.Integer)}
        dtype = kinds[arrays[0]].dtype
        elements = _vector_bytes(context) // (dtype.bitwidth // 8)
        self.vector = ir.VectorType(context.get_data_type(dtype), elements)
        self.width = ir.Constant(_I64, self.vector.count)

    def vector_at(self, k, i, column):
        """A vector pointer to array k's element [i, column]."""
        b, a = self.builder, self.arrays[k]
        at = b.gep(a.data, [b.add(b.mul(i, b.extract_value(a.shape, 1)), column)])
        return b.bitcast(at, self.vector.as_pointer())

    def starts(self, first, count):
        """The first columns of count vectors from ``first`` on."""
        return [self.builder.add(first, ir.Constant(_I64, c * self.vector.count)) for c in range(count)]

    def entry(self, context, p, values, indices, index_type):
        """Entry p's value, spread over a vector, and its index as an int64."""
        b = self.builder
        value = b.load(b.gep(self.arrays[values].data, [p]))
        index = context.cast(b, b.load(b.gep(self.arrays[indices].data, [p])), index_type, types.int64)
        return _splat(b, self.vector, value), index


def _floats(*arrays) -> bool:
    return all(_is_float_array(a) and a.dtype == arrays[0].dtype for a in arrays)


@intrinsic
def add_row_sums(typingctx, out, row, first, last, values, indices, lo, hi, w):
    """(module doc) out (r, m) and w (d, m) C-contiguous of one float dtype, values (nnz,) of that
    dtype, indices (nnz,) integers < d; lanes(out) <= last - first <= MOST_VECTORS * lanes(out)."""
    if not (_floats(out, w, values) and out.layout == w.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        call = _Call(context, builder, signature, args, (0, 4, 5, 8))
        row, first, last, lo, hi = (call.ints[k] for k in (1, 2, 3, 6, 7))
        sums = [cgutils.alloca_once(builder, call.vector) for _ in range(MOST_VECTORS)]
        one = ir.Constant(_I64, 1)

        def body(count):
            starts = []
            for start in call.starts(first, count):  # the last vector ends at last (module doc)
                past = builder.icmp_signed(">", builder.add(start, call.width), last)
                starts.append(builder.select(past, builder.sub(last, call.width), start))
            for total, start in zip(sums, starts):
                builder.store(builder.load(call.vector_at(0, row, start), align=1), total)
            with cgutils.for_range_slice(builder, lo, hi, one) as (p, _):
                scale, k = call.entry(context, p, 4, 5, indices.dtype)
                for total, start in zip(sums, starts):
                    product = builder.fmul(scale, builder.load(call.vector_at(8, k, start), align=1))
                    builder.store(builder.fadd(builder.load(total), product), total)
            for total, start in zip(sums, starts):
                builder.store(builder.load(total), call.vector_at(0, row, start), align=1)

        columns = builder.sub(last, first)
        _by_count(builder, builder.sdiv(builder.add(columns, builder.sub(call.width, one)), call.width), body)
        return context.get_dummy_value()

    return types.void(out, row, first, last, values, indices, lo, hi, w), codegen


@intrinsic
def add_scaled_row(typingctx, out, first_row, values, indices, lo, hi, x, i, first, vectors):
    """out[indices[p] - first_row, cols] += values[p] * x[i, cols] for p in lo:hi, in that order,
    where cols = first .. first + vectors * lanes(out) - 1 and 1 <= vectors <= MOST_VECTORS: row i
    of x is loaded once and held in registers. out (c, m) and x (r, m) C-contiguous of one float
    dtype, values (nnz,) of that dtype, indices (nnz,) integers in first_row .. first_row + c - 1."""
    if not (_floats(out, x, values) and out.layout == x.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        call = _Call(context, builder, signature, args, (0, 2, 3, 6))
        first_row, lo, hi, i, first, vectors = (call.ints[k] for k in (1, 4, 5, 7, 8, 9))

        def body(count):
            starts = call.starts(first, count)
            held = [builder.load(call.vector_at(6, i, start), align=1) for start in starts]
            with cgutils.for_range_slice(builder, lo, hi, ir.Constant(_I64, 1)) as (p, _):
                scale, k = call.entry(context, p, 2, 3, indices.dtype)
                for g, start in zip(held, starts):
                    at = call.vector_at(0, builder.sub(k, first_row), start)
                    total = builder.fadd(builder.load(at, align=1), builder.fmul(scale, g))
                    builder.store(total, at, align=1)

        _by_count(builder, vectors, body)
        return context.get_dummy_value()

    return types.void(out, first_row, values, indices, lo, hi, x, i, first, vectors), codegen
