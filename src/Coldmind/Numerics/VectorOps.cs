using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Coldmind.Numerics;

/// <summary>
/// The few vector operations our float kernels need, over one vector width. Kernels are generic over
/// an implementation (a struct), so the JIT compiles one specialised copy per width with every call
/// inlined: one kernel text, four machine paths (512, 256 and 128-bit vectors, and plain scalar code).
/// </summary>
internal unsafe interface IVectorOps<TV> where TV : struct
{
    static abstract int Lanes { get; }
    static abstract TV Zero { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    static abstract TV Broadcast(float x);
    /// <summary>a·b + c</summary>
    static abstract TV MultiplyAdd(TV a, TV b, TV c);
    static abstract TV Add(TV a, TV b);
}

internal unsafe struct Ops512 : IVectorOps<Vector512<float>>
{
    public static int Lanes => 16;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
}

internal unsafe struct Ops256 : IVectorOps<Vector256<float>>
{
    public static int Lanes => 8;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float x) => Vector256.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
}

internal unsafe struct Ops128 : IVectorOps<Vector128<float>>
{
    public static int Lanes => 4;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float x) => Vector128.Create(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;
}

/// <summary>Plain scalar arithmetic, 4 lanes at a time: the path when hardware intrinsics are off.</summary>
internal unsafe struct OpsScalar : IVectorOps<OpsScalar.Quad>
{
    public struct Quad { public float X0, X1, X2, X3; }
    public static int Lanes => 4;
    public static Quad Zero => default;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Quad Load(float* p) => new() { X0 = p[0], X1 = p[1], X2 = p[2], X3 = p[3] };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Quad v) { p[0] = v.X0; p[1] = v.X1; p[2] = v.X2; p[3] = v.X3; }
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Quad Broadcast(float x) => new() { X0 = x, X1 = x, X2 = x, X3 = x };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Quad MultiplyAdd(Quad a, Quad b, Quad c) => new() { X0 = a.X0 * b.X0 + c.X0, X1 = a.X1 * b.X1 + c.X1, X2 = a.X2 * b.X2 + c.X2, X3 = a.X3 * b.X3 + c.X3 };
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Quad Add(Quad a, Quad b) => new() { X0 = a.X0 + b.X0, X1 = a.X1 + b.X1, X2 = a.X2 + b.X2, X3 = a.X3 + b.X3 };
}

/// <summary>Which vector width a kernel runs with; <see cref="Simd.Best"/> is chosen at start-up from the hardware.</summary>
public enum SimdPath { Scalar, Vector128, Vector256, Vector512 }

public static class Simd
{
    public static SimdPath Best { get; } =
        Vector512.IsHardwareAccelerated ? SimdPath.Vector512 :
        Vector256.IsHardwareAccelerated ? SimdPath.Vector256 :
        Vector128.IsHardwareAccelerated ? SimdPath.Vector128 : SimdPath.Scalar;

    /// <summary>Every path this machine can run, narrowest first (tests compare each with the reference).</summary>
    public static IReadOnlyList<SimdPath> Available { get; } =
        Enum.GetValues<SimdPath>().Where(p => p <= Best).ToArray();
}
