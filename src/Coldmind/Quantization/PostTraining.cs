using System.Globalization;

namespace Coldmind.Quantization;

/// <summary>How weights are rounded after training.</summary>
public enum PtqMethod
{
    /// <summary>q in −127..127, d = max|x| / 127 (as Q8_0).</summary>
    Int8,
    /// <summary>q in −8..7, d = (the value of largest magnitude) / −8 (as Q4_0).</summary>
    Int4,
    /// <summary>q in −2..1, d = (the value of largest magnitude) / −2: Q4_0's rule with 2 bits.</summary>
    Int2,
    /// <summary>BitNet b1.58's absmean: t = clamp(round(x / mean|x|), −1, 1), x ≈ mean|x| · t.</summary>
    Ternary,
    /// <summary>XNOR-Net's sign · mean|x|: the scale that minimises the squared error of a sign code.</summary>
    Binary,
}

/// <summary>
/// A post-training quantization scheme: a rounding method and a granularity, one scale per group of
/// <see cref="GroupSize"/> consecutive weights of a row (0: one scale for the whole tensor). Groups do not
/// cross rows; a row that is not a multiple of the group size ends with a shorter group.
/// <see cref="Apply"/> returns the weights as the quantized model computes with them (dequantized), so any
/// model can be evaluated under the scheme before choosing a packed format.
/// </summary>
public sealed record PtqScheme(PtqMethod Method, int GroupSize)
{
    /// <summary>Bits of the codes (ternary packs 5 trits a byte, as TQ1_0).</summary>
    public double CodeBits => Method switch
    {
        PtqMethod.Int8 => 8, PtqMethod.Int4 => 4, PtqMethod.Int2 => 2, PtqMethod.Ternary => 1.6, _ => 1,
    };

    /// <summary>Storage per weight with one f16 scale per group (per tensor: the codes alone).</summary>
    public double BitsPerWeight => CodeBits + (GroupSize > 0 ? 16.0 / GroupSize : 0);

    public string Name => $"{Method.ToString().ToLowerInvariant()}/{(GroupSize > 0 ? $"g{GroupSize}" : "tensor")}";

    /// <summary>Parses e.g. "int4/g32", "ternary/tensor", "binary/g64".</summary>
    public static PtqScheme Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !Enum.TryParse<PtqMethod>(parts[0], ignoreCase: true, out var method) || !Enum.IsDefined(method))
            throw new ColdmindException($"Unknown scheme '{text}'; write METHOD/GROUP with METHOD one of {string.Join(", ", Enum.GetNames<PtqMethod>().Select(n => n.ToLowerInvariant()))} and GROUP 'tensor' or gN (e.g. int4/g32).");
        if (parts[1] == "tensor") return new PtqScheme(method, 0);
        if (parts[1].Length > 1 && parts[1][0] == 'g' && int.TryParse(parts[1].AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out int g) && g > 0)
            return new PtqScheme(method, g);
        throw new ColdmindException($"Group '{parts[1]}' in '{text}' is neither 'tensor' nor gN with N > 0.");
    }

    /// <summary>The weights of a tensor whose rows hold <paramref name="rowLength"/> values, quantized and dequantized.</summary>
    public float[] Apply(ReadOnlySpan<float> weights, int rowLength)
    {
        var (codes, scales) = Quantize(weights, rowLength);
        var result = new float[weights.Length];
        int groups = GroupsPerRow(rowLength);
        for (int i = 0; i < result.Length; i++) result[i] = scales[ScaleIndex(i / rowLength, i % rowLength, groups)] * codes[i];
        return result;
    }

    /// <summary>
    /// The codes (in <see cref="CodeRange"/>) and scales of a tensor whose rows hold <paramref name="rowLength"/>
    /// values: weight i of row r ≈ scales[<see cref="ScaleIndex"/>(r, i % rowLength, groups)] · codes[i].
    /// Per tensor there is one scale; per group, <see cref="GroupsPerRow"/> a row.
    /// </summary>
    public (sbyte[] Codes, float[] Scales) Quantize(ReadOnlySpan<float> weights, int rowLength)
    {
        if (rowLength <= 0 || weights.Length % rowLength != 0)
            throw new ColdmindException($"{weights.Length} weights do not form rows of {rowLength}.");
        var codes = new sbyte[weights.Length];
        if (GroupSize == 0) return (codes, [Round(weights, codes)]);
        int groups = GroupsPerRow(rowLength);
        var scales = new float[weights.Length / rowLength * groups];
        for (int row = 0, k = 0; row < weights.Length; row += rowLength)
            for (int g = 0; g < rowLength; g += GroupSize)
            {
                int len = Math.Min(GroupSize, rowLength - g);
                scales[k++] = Round(weights.Slice(row + g, len), codes.AsSpan(row + g, len));
            }
        return (codes, scales);
    }

    /// <summary>Scales a row has: one per group (the last may be shorter), or 0 for a per-tensor scale.</summary>
    public int GroupsPerRow(int rowLength) => GroupSize > 0 ? (rowLength + GroupSize - 1) / GroupSize : 0;

    /// <summary>Where the scale of column <paramref name="column"/> of row <paramref name="row"/> is, given <see cref="GroupsPerRow"/>.</summary>
    public int ScaleIndex(int row, int column, int groups) => GroupSize > 0 ? row * groups + column / GroupSize : 0;

    /// <summary>The codes a method writes: the smallest and the largest.</summary>
    public static (int Min, int Max) CodeRange(PtqMethod method) => method switch
    {
        PtqMethod.Int8 => (-127, 127), PtqMethod.Int4 => (-8, 7), PtqMethod.Int2 => (-2, 1), _ => (-1, 1),
    };

    /// <summary>One group: codes q with x ≈ d · q under the method's scale rule; returns d.</summary>
    private float Round(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        float amax = 0, max = 0;
        double absSum = 0;
        foreach (float f in x)
        {
            absSum += MathF.Abs(f);
            if (MathF.Abs(f) > amax) { amax = MathF.Abs(f); max = f; }
        }
        float mean = (float)(absSum / x.Length);
        switch (Method)
        {
            case PtqMethod.Int8: return Uniform(x, q, amax / 127, -127, 127);
            case PtqMethod.Int4: return Uniform(x, q, max / -8, -8, 7);
            case PtqMethod.Int2: return Uniform(x, q, max / -2, -2, 1);
            case PtqMethod.Ternary: return Uniform(x, q, mean, -1, 1);
            default:
                for (int i = 0; i < x.Length; i++) q[i] = (sbyte)(x[i] >= 0 ? 1 : -1);
                return mean;
        }
    }

    private static float Uniform(ReadOnlySpan<float> x, Span<sbyte> q, float d, int lo, int hi)
    {
        float id = d != 0 ? 1 / d : 0;
        for (int i = 0; i < x.Length; i++) q[i] = (sbyte)Math.Clamp((int)MathF.Round(x[i] * id, MidpointRounding.AwayFromZero), lo, hi);
        return d;
    }
}
