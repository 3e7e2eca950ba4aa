using System.Runtime.InteropServices;

namespace Heddle;

/// <summary>
/// A tensor passed to the engine: a dtype, a shape and row-major little-endian bytes (a copy
/// owned by this object). Used where a call takes more than plain f32 samples: training data,
/// loss targets (class indices), weights by name, integer ids.
/// </summary>
public sealed class Tensor
{
    private readonly byte[] _data;

    private Tensor(DType dtype, long[] shape, byte[] data)
    {
        DType = dtype;
        Shape = shape;
        _data = data;
        long n = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(", ", shape)}]", nameof(shape));
            n *= d;
        }
        Count = n;
        if (n * ElementSize(dtype) != data.LongLength)
            throw new ArgumentException($"shape [{string.Join(", ", shape)}] holds {n} values, the data has {data.LongLength / Math.Max(1, ElementSize(dtype))}");
    }

    public DType DType { get; }

    /// <summary>The dimensions (row-major).</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Number of elements (the product of the shape).</summary>
    public long Count { get; }

    /// <summary>The raw little-endian bytes.</summary>
    public ReadOnlySpan<byte> Bytes => _data;

    internal byte[] Data => _data;

    internal long[] ShapeArray => (long[])Shape;

    public static int ElementSize(DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.I64 => 8,
        DType.F16 or DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>An f32 tensor; with no shape, a vector of the values.</summary>
    public static Tensor FromFloats(ReadOnlySpan<float> values, params long[] shape) =>
        new(DType.F32, shape.Length == 0 ? [values.Length] : (long[])shape.Clone(), LittleEndian(values));

    /// <summary>An i32 tensor (class indices, token ids); with no shape, a vector of the values.</summary>
    public static Tensor FromInts(ReadOnlySpan<int> values, params long[] shape) =>
        new(DType.I32, shape.Length == 0 ? [values.Length] : (long[])shape.Clone(), LittleEndian(values));

    /// <summary>An i64 tensor; with no shape, a vector of the values.</summary>
    public static Tensor FromLongs(ReadOnlySpan<long> values, params long[] shape) =>
        new(DType.I64, shape.Length == 0 ? [values.Length] : (long[])shape.Clone(), LittleEndian(values));

    /// <summary>A tensor from raw little-endian bytes.</summary>
    public static Tensor FromBytes(DType dtype, ReadOnlySpan<byte> bytes, params long[] shape) =>
        new(dtype, (long[])shape.Clone(), bytes.ToArray());

    /// <summary>The values of an f32 tensor.</summary>
    public float[] ToFloats()
    {
        if (DType != DType.F32) throw new InvalidOperationException($"the tensor is {DType}, not F32");
        return MemoryMarshal.Cast<byte, float>(_data).ToArray();
    }

    /// <summary>The values of an i32 tensor.</summary>
    public int[] ToInts()
    {
        if (DType != DType.I32) throw new InvalidOperationException($"the tensor is {DType}, not I32");
        return MemoryMarshal.Cast<byte, int>(_data).ToArray();
    }

    // linux-x64 (the one platform libheddle ships for) is little-endian: the bytes as they are.
    private static byte[] LittleEndian<T>(ReadOnlySpan<T> values) where T : unmanaged => MemoryMarshal.AsBytes(values).ToArray();

    public override string ToString() => $"Tensor({DType}, [{string.Join(", ", Shape)}])";
}
