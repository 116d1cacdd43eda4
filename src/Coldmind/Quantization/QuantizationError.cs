namespace Coldmind.Quantization;

/// <summary>How much a tensor lost in quantization.</summary>
public static class QuantizationError
{
    /// <summary>‖x − y‖ / ‖x‖, summed in double (0 for an all-zero x).</summary>
    public static double NormalizedRmse(ReadOnlySpan<float> original, ReadOnlySpan<float> restored)
    {
        if (original.Length != restored.Length) throw new ArgumentException("The two tensors differ in length.");
        double err = 0, sig = 0;
        for (int i = 0; i < original.Length; i++)
        {
            double d = original[i] - (double)restored[i];
            err += d * d;
            sig += original[i] * (double)original[i];
        }
        return sig == 0 ? 0 : Math.Sqrt(err / sig);
    }
}
