using Coldmind.Quantization;

namespace Coldmind.Kernels;

/// <summary>
/// The CPU's side of a ggml type, as ggml's type_traits_cpu beside the format-only type_traits: the dot kernel
/// of a row packed in the type, and the type the other operand (the activations) is packed in first.
/// </summary>
public sealed record CpuTraits(TypeTraits Format, VecDot Dot, TypeTraits DotFormat);

public static unsafe class CpuTypeTraits
{
    private static readonly Dictionary<GgmlType, CpuTraits> Table = new (GgmlType Type, VecDot Dot, GgmlType DotType)[]
    {
        (GgmlType.F32, VecDots.F32, GgmlType.F32),
        (GgmlType.F16, VecDots.F16, GgmlType.F32),
        (GgmlType.BF16, VecDots.BF16, GgmlType.F32),
        (GgmlType.Q8_0, VecDots.Q8_0, GgmlType.Q8_0),
        (GgmlType.Q4_0, VecDots.Q4_0, GgmlType.Q8_0),
        (GgmlType.TQ1_0, VecDots.TQ1_0, GgmlType.Q8_K),
        (GgmlType.TQ2_0, VecDots.TQ2_0, GgmlType.Q8_K),
        (GgmlType.Q6_K, VecDots.Q6_K, GgmlType.Q8_K),
    }.ToDictionary(t => t.Type, t => new CpuTraits(GgmlTypes.Traits(t.Type), t.Dot, GgmlTypes.Traits(t.DotType)));

    /// <summary>The types with a dot kernel.</summary>
    public static IReadOnlyList<CpuTraits> All { get; } = Table.Values.ToArray();

    public static CpuTraits Of(GgmlType type) => Table.TryGetValue(type, out var traits) ? traits
        : throw new ColdmindException(
            $"No {GgmlTypes.Traits(type).Name} dot kernel yet; matrices can be {string.Join(", ", All.Select(t => t.Format.Name))}.");
}
