using System.Buffers.Binary;
using System.Globalization;

namespace Coldmind.Swarm;

/// <summary>A message that is not a valid swarm message: the receiver rejects it with this reason.</summary>
public sealed class SwarmMessageException(string message) : ColdmindException(message);

/// <summary>
/// What a node sends of a vector (a model's difference from a reference both sides hold):
/// <list type="bullet">
/// <item><c>f32</c>: every value, 32 bits.</item>
/// <item><c>int8</c>: blocks of 128 values, each with an f32 scale absmax/127 and one signed byte a value (8.25 bits).</item>
/// <item><c>ternary</c>: blocks of 128 values, each with an f32 scale and values in {−1, 0, 1}·scale, five trits a
/// byte as in TQ1_0 (1.88 bits); the encoder picks the scale and the zeros that fit the block best.</item>
/// <item><c>sign</c>: blocks of 128 values, each with an f32 scale mean|v| and one bit a value, ±scale (1.25 bits;
/// 1-bit SGD's code, Seide et al. 2014).</item>
/// <item><c>topk:F</c>: the fraction F of values largest in magnitude, as varint gaps between their indices and f32 values.</item>
/// <item><c>entropy:B</c>: every value rounded to a multiple of one step, the multiples range-coded in B bits a value (<see cref="EntropyCode"/>).</item>
/// </list>
/// The lossy codecs are meant to run with <see cref="ErrorFeedback"/>, which carries what was not sent into the next message.
/// <see cref="Parameter"/> is top-k's fraction F and the entropy code's bits a value B (a sender's choice: a receiver reads
/// what it needs from the message).
/// </summary>
public sealed record ExchangeCodec(ExchangeCodec.Kind Type, float Parameter = 1f)
{
    public enum Kind : byte { F32 = 0, Int8 = 1, Ternary = 2, TopK = 3, Sign = 4, Entropy = 5 }

    public const int Block = 128;
    public static readonly ExchangeCodec Float32 = new(Kind.F32);

    public static ExchangeCodec Parse(string spec)
    {
        string s = spec.Trim().ToLowerInvariant();
        if (s is "f32" or "none" or "float") return Float32;
        if (s == "int8") return new(Kind.Int8);
        if (s == "ternary") return new(Kind.Ternary);
        if (s == "sign") return new(Kind.Sign);
        if (s.StartsWith("topk:", StringComparison.Ordinal)
            && float.TryParse(s.AsSpan(5), NumberStyles.Float, CultureInfo.InvariantCulture, out float f) && f is > 0 and <= 1)
            return new(Kind.TopK, f);
        if (s.StartsWith("entropy:", StringComparison.Ordinal)
            && float.TryParse(s.AsSpan(8), NumberStyles.Float, CultureInfo.InvariantCulture, out float b) && b is >= 0.1f and <= 16)
            return new(Kind.Entropy, b);
        throw new ColdmindException($"--compress takes f32, int8, ternary, sign, topk:F with 0 < F ≤ 1 (e.g. topk:0.1) or entropy:B with 0.1 ≤ B ≤ 16 bits a value (e.g. entropy:1.88), got '{spec}'.");
    }

    public bool Lossy => Type != Kind.F32;

    /// <summary>Whether a message carries every value (all codecs but top-k).</summary>
    public bool Dense => Type != Kind.TopK;

    public override string ToString() => Type switch
    {
        Kind.F32 => "f32",
        Kind.Int8 => "int8",
        Kind.Ternary => "ternary",
        Kind.Sign => "sign",
        Kind.Entropy => string.Create(CultureInfo.InvariantCulture, $"entropy:{Parameter:G4}"),
        _ => string.Create(CultureInfo.InvariantCulture, $"topk:{Parameter:G3}"),
    };

    /// <summary>
    /// Appends the encoding of <paramref name="v"/> to <paramref name="output"/>. Top-k keeps the values at the
    /// positions largest in magnitude in <paramref name="rank"/> (<paramref name="v"/> itself when empty).
    /// </summary>
    public void Encode(ReadOnlySpan<float> v, List<byte> output, ReadOnlySpan<float> rank = default)
    {
        if (!rank.IsEmpty && rank.Length != v.Length) throw new ArgumentException($"A rank of {rank.Length} values for a vector of {v.Length}.");
        Span<byte> f = stackalloc byte[4];
        switch (Type)
        {
            case Kind.F32:
                foreach (float x in v) { BinaryPrimitives.WriteSingleLittleEndian(f, x); output.AddRange(f); }
                break;
            case Kind.Int8:
                for (int start = 0; start < v.Length; start += Block)
                {
                    var block = v.Slice(start, Math.Min(Block, v.Length - start));
                    float scale = MathF.Abs(TensorPrimitives.MaxMagnitude(block)) / 127f;
                    BinaryPrimitives.WriteSingleLittleEndian(f, scale);
                    output.AddRange(f);
                    foreach (float x in block) output.Add(unchecked((byte)(sbyte)(scale > 0 ? Math.Clamp(MathF.Round(x / scale), -127, 127) : 0)));
                }
                break;
            case Kind.Ternary:
                for (int start = 0; start < v.Length; start += Block)
                {
                    var block = v.Slice(start, Math.Min(Block, v.Length - start));
                    float scale = TernaryFit(block, out float threshold);
                    BinaryPrimitives.WriteSingleLittleEndian(f, scale);
                    output.AddRange(f);
                    for (int i = 0; i < block.Length; i += 5)
                    {
                        int packed = 0;
                        for (int j = Math.Min(i + 5, block.Length) - 1; j >= i; j--)
                            packed = packed * 3 + (MathF.Abs(block[j]) >= threshold ? (block[j] < 0 ? 0 : 2) : 1);
                        output.Add((byte)packed);
                    }
                }
                break;
            case Kind.Sign:
                for (int start = 0; start < v.Length; start += Block)
                {
                    var block = v.Slice(start, Math.Min(Block, v.Length - start));
                    BinaryPrimitives.WriteSingleLittleEndian(f, TensorPrimitives.SumOfMagnitudes(block) / block.Length);
                    output.AddRange(f);
                    for (int i = 0; i < block.Length; i += 8)
                    {
                        int bits = 0;
                        for (int j = i; j < Math.Min(i + 8, block.Length); j++) bits |= (block[j] < 0 ? 1 : 0) << (j - i);
                        output.Add((byte)bits);
                    }
                }
                break;
            case Kind.Entropy:
                EntropyCode.Encode(v, Parameter, output);
                break;
            case Kind.TopK:
                var kept = Largest(rank.IsEmpty ? v : rank, KeptCount(v.Length));
                BinaryPrimitives.WriteInt32LittleEndian(f, kept.Length);
                output.AddRange(f);
                int previous = -1;
                foreach (int i in kept) { WriteVarint(output, (uint)(i - previous - 1)); previous = i; }
                foreach (int i in kept) { BinaryPrimitives.WriteSingleLittleEndian(f, v[i]); output.AddRange(f); }
                break;
        }
    }

    /// <summary>
    /// Decodes a vector of <paramref name="length"/> values from the start of <paramref name="data"/>, validating
    /// every field; <paramref name="indices"/> is null when all values were sent, otherwise the positions of
    /// <paramref name="values"/>. Returns the bytes read.
    /// </summary>
    public int Decode(ReadOnlySpan<byte> data, int length, out float[] values, out int[]? indices)
    {
        indices = null;
        int at = 0;
        switch (Type)
        {
            case Kind.F32:
                Need(data, (long)length * 4);
                values = new float[length];
                for (int i = 0; i < length; i++) values[i] = Finite(BinaryPrimitives.ReadSingleLittleEndian(data.Slice(4 * i)));
                return length * 4;
            case Kind.Int8:
            case Kind.Ternary:
            case Kind.Sign:
                values = new float[length];
                for (int start = 0; start < length; start += Block)
                {
                    int n = Math.Min(Block, length - start);
                    Need(data.Slice(at), 4);
                    float scale = BinaryPrimitives.ReadSingleLittleEndian(data.Slice(at));
                    if (!float.IsFinite(scale) || scale < 0) throw new SwarmMessageException($"a block scale is {scale}; scales are finite and non-negative");
                    at += 4;
                    if (Type == Kind.Int8)
                    {
                        Need(data.Slice(at), n);
                        for (int i = 0; i < n; i++) values[start + i] = (sbyte)data[at + i] * scale;
                        at += n;
                    }
                    else if (Type == Kind.Sign)
                    {
                        int bytes = (n + 7) / 8;
                        Need(data.Slice(at), bytes);
                        for (int i = 0; i < n; i++) values[start + i] = (data[at + i / 8] >> (i % 8) & 1) == 1 ? -scale : scale;
                        at += bytes;
                    }
                    else
                    {
                        int bytes = (n + 4) / 5;
                        Need(data.Slice(at), bytes);
                        for (int i = 0; i < n; i += 5)
                        {
                            int packed = data[at + i / 5];
                            if (packed >= 243) throw new SwarmMessageException($"a ternary byte is {packed}; five trits fit in 0..242");
                            for (int j = i; j < Math.Min(i + 5, n); j++) { values[start + j] = (packed % 3 - 1) * scale; packed /= 3; }
                        }
                        at += bytes;
                    }
                }
                return at;
            case Kind.Entropy:
                return EntropyCode.Decode(data, length, out values);
            default:
                Need(data, 4);
                int k = BinaryPrimitives.ReadInt32LittleEndian(data);
                if (k < 0 || k > length) throw new SwarmMessageException($"{k} kept values for a vector of {length}");
                at = 4;
                indices = new int[k];
                long position = -1;
                for (int i = 0; i < k; i++)
                {
                    position += ReadVarint(data, ref at) + 1L;
                    if (position >= length) throw new SwarmMessageException($"index {position} outside a vector of {length}");
                    indices[i] = (int)position;
                }
                Need(data.Slice(at), (long)k * 4);
                values = new float[k];
                for (int i = 0; i < k; i++) values[i] = Finite(BinaryPrimitives.ReadSingleLittleEndian(data.Slice(at + 4 * i)));
                return at + 4 * k;
        }
    }

    /// <summary>
    /// The ternary code of a block with the least squared error: its values of magnitude ≥ <paramref name="threshold"/>
    /// become ±scale, the rest 0 (an all-zero block gets an infinite threshold). Keeping the k largest magnitudes, with sum S, at the scale S/k that fits them
    /// best leaves an error of Σv² − S²/k, so the best k is the one with the largest S²/k. Against the absmean
    /// code (threshold scale/2 at scale mean|v|) this cuts a Gaussian block's error from 26 % of its energy to 19 %
    /// (Lloyd-Max's optimum for three levels) at the same bytes: gossip merges every message it receives as it
    /// comes, so each message's own error matters, not only the errors' sum that error feedback corrects.
    /// </summary>
    private static float TernaryFit(ReadOnlySpan<float> block, out float threshold)
    {
        Span<float> magnitude = stackalloc float[block.Length];
        TensorPrimitives.Abs(block, magnitude);
        magnitude.Sort();
        float scale = 0, best = 0, sum = 0;
        threshold = float.PositiveInfinity;
        for (int k = 1; k <= magnitude.Length; k++)
        {
            float m = magnitude[^k];
            sum += m;
            // Equal magnitudes are kept or dropped together, so only a k at the end of a run is a threshold.
            if (m == 0 || (k < magnitude.Length && magnitude[^(k + 1)] == m)) continue;
            float fit = sum * sum / k;
            if (fit > best) { best = fit; scale = sum / k; threshold = m; }
        }
        return scale;
    }

    private int KeptCount(int length) => Math.Clamp((int)MathF.Round(Parameter * length), Math.Min(1, length), length);

    /// <summary>Indices of the <paramref name="k"/> values largest in magnitude, ascending (ties: the lower index).</summary>
    private static int[] Largest(ReadOnlySpan<float> v, int k)
    {
        var order = new int[v.Length];
        var magnitude = new float[v.Length];
        for (int i = 0; i < v.Length; i++) { order[i] = i; magnitude[i] = -MathF.Abs(v[i]); }
        Array.Sort(magnitude, order);
        var kept = order[..k];
        Array.Sort(kept);
        return kept;
    }

    private static void WriteVarint(List<byte> output, uint value)
    {
        while (value >= 0x80) { output.Add((byte)(value | 0x80)); value >>= 7; }
        output.Add((byte)value);
    }

    private static uint ReadVarint(ReadOnlySpan<byte> data, ref int at)
    {
        uint value = 0;
        for (int shift = 0; shift < 35; shift += 7)
        {
            if (at >= data.Length) throw new SwarmMessageException("the message ends inside an index");
            byte b = data[at++];
            value |= (uint)(b & 0x7F) << shift;
            if (b < 0x80) return value;
        }
        throw new SwarmMessageException("an index gap longer than five bytes");
    }

    private static void Need(ReadOnlySpan<byte> data, long bytes)
    {
        if (data.Length < bytes) throw new SwarmMessageException($"the message ends early: {bytes} more bytes needed, {data.Length} left");
    }

    private static float Finite(float x) => float.IsFinite(x) ? x : throw new SwarmMessageException($"a model value is {x}; values must be finite");
}

/// <summary>
/// Error feedback (Seide et al. 2014; Karimireddy et al. 2019): a sender compresses v + e, where e is what its
/// earlier messages left out, and keeps the new remainder, so nothing is dropped for good, only delayed.
/// </summary>
public sealed class ErrorFeedback(int length)
{
    public float[] Residual { get; } = new float[length];

    /// <summary>The vector to send: v plus the residual; call <see cref="Sent"/> with what the receiver decodes.</summary>
    public float[] WithResidual(ReadOnlySpan<float> v)
    {
        var u = new float[v.Length];
        TensorPrimitives.Add(v, Residual, u);
        return u;
    }

    public void Sent(ReadOnlySpan<float> intended, ReadOnlySpan<float> decoded) => TensorPrimitives.Subtract(intended, decoded, Residual);

    /// <summary>
    /// Sparse sending of a state (top-k gossip) keeps as residual each value's change since it was last sent: a
    /// message carries the values where it is largest, <see cref="Carried"/> clears them, and <see cref="Changed"/>
    /// adds what the model moved. This starts it at <paramref name="change"/> (nothing sent yet).
    /// </summary>
    public static ErrorFeedback Unsent(ReadOnlySpan<float> change)
    {
        var f = new ErrorFeedback(change.Length);
        change.CopyTo(f.Residual);
        return f;
    }

    public void Carried(ReadOnlySpan<int> indices)
    {
        foreach (int i in indices) Residual[i] = 0;
    }

    public void Changed(ReadOnlySpan<float> before, ReadOnlySpan<float> after)
    {
        TensorPrimitives.Add(Residual, after, Residual);
        TensorPrimitives.Subtract(Residual, before, Residual);
    }
}
