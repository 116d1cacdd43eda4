using Coldmind.Runtime;

namespace Coldmind.Cost;

/// <summary>
/// Joules per inference from operation and byte counts with Horowitz's 45 nm energies (ISSCC 2014, "Computing's
/// energy problem"): fp32 multiply 3.7 pJ + add 0.9 pJ per MAC; int8 multiply 0.2 pJ + add 0.03 pJ; 32-bit integer
/// add 0.1 pJ; 64-bit reads of
/// 10 pJ from an 8 KB SRAM, 20 pJ from 32 KB, 100 pJ from 1 MB, 1.3–2.6 nJ from DRAM (2 nJ taken). The level
/// is the smallest that holds the weights, which are read once per inference. An order-of-magnitude
/// estimate with no process-node scaling: the device-calibrated cost model replaces it (the cost issue).
/// </summary>
public static class EnergyEstimate
{
    public const double Fp32Mac = 4.6e-12, Int8Mac = 0.23e-12, Int32Add = 0.1e-12;

    /// <summary>Energy per byte read from the smallest memory level holding <paramref name="bytes"/>.</summary>
    public static double PerByte(long bytes) => bytes <= 8 << 10 ? 10e-12 / 8 : bytes <= 32 << 10 ? 20e-12 / 8 : bytes <= 1 << 20 ? 100e-12 / 8 : 2e-9 / 8;

    public static double Joules(CompactClassifier model)
    {
        var (macs, adds) = model.Operations();
        return macs * Fp32Mac + adds * Int32Add + model.WeightBytes * PerByte(model.WeightBytes);
    }
}
