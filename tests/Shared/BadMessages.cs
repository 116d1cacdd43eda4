namespace Coldmind.Tests;

/// <summary>Swarm messages no honest sender produces.</summary>
internal static class BadMessages
{
    /// <summary>An f32 message with its last value overwritten by NaN (a sender cannot produce one).</summary>
    internal static byte[] WithNaN(byte[] f32Message)
    {
        var bad = (byte[])f32Message.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bad.AsSpan(bad.Length - 4), float.NaN);
        return bad;
    }
}
