using Coldmind.Swarm;

namespace Coldmind.Tests;

/// <summary>What a receiver decodes from <paramref name="v"/> sent in <paramref name="codec"/>, dense (unsent values 0).</summary>
internal static class CodecExtensions
{
    public static float[] RoundTrip(this ExchangeCodec codec, float[] v)
    {
        var bytes = new List<byte>();
        codec.Encode(v, bytes);
        codec.Decode(bytes.ToArray(), v.Length, out var values, out var indices);
        if (indices == null) return values;
        var dense = new float[v.Length];
        for (int i = 0; i < indices.Length; i++) dense[indices[i]] = values[i];
        return dense;
    }
}
