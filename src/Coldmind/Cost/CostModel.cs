namespace Coldmind.Cost;

/// <summary>One layer on a device: its compute and memory times (the roofline takes the larger) and its joules.</summary>
public sealed record LayerCost(string Name, double ComputeSeconds, double MemorySeconds, double Joules)
{
    public double Seconds => Math.Max(ComputeSeconds, MemorySeconds);
    public bool MemoryBound => MemorySeconds > ComputeSeconds;
}

/// <summary>What one inference (or token) of a workload costs on a device at a DVFS step.</summary>
public sealed record CostEstimate(
    Workload Workload, DeviceProfile Device, int Step, IReadOnlyList<LayerCost> Layers, MemoryLevel WeightLevel,
    double ComputeJoules, double MemoryJoules, double ArithmeticJoules, double LandauerJoules, double Celsius)
{
    public double Seconds => Layers.Sum(l => l.Seconds);
    public double Joules => ComputeJoules + MemoryJoules;
    /// <summary>The limit that binds for most of the time: "compute" or "memory".</summary>
    public string Bound => Layers.Where(l => l.MemoryBound).Sum(l => l.Seconds) > Seconds / 2 ? "memory" : "compute";
    public long BytesPerUnit => Workload.WeightBytes + Workload.ActivationBytes;
    /// <summary>The memory roofline: units per second ≤ bandwidth ÷ bytes read per unit, whatever the arithmetic.</summary>
    public double BandwidthBoundRate => 1 / Layers.Sum(l => l.MemorySeconds);
    public double LandauerRatio => Joules / LandauerJoules;
    public double Watts => Joules / Seconds;
}

/// <summary>
/// The roofline and energy model. Per layer, compute time is each op kind's count over the device's sustained
/// rate for it (scaled by the DVFS step's clock), memory time the weight bytes over the bandwidth of the level
/// holding them plus activation bytes over the fastest level's; the layer takes the larger. Energy is the
/// device's power at the step for that time plus what the bytes cost beyond it (DRAM), counted as memory
/// energy when the layer is memory-bound and as compute energy otherwise. Two floors are reported beside it:
/// the arithmetic alone at Horowitz's energies scaled to the process node, and Landauer's kT·ln 2 per bit the
/// arithmetic discards.
/// </summary>
public static class CostModel
{
    public const double Boltzmann = 1.380649e-23;

    /// <summary>
    /// Bits a kind of operation irreversibly discards: the operand bits in minus the result bits out (fp32 MAC:
    /// 3 × 32 in, 32 out; int8 MAC into a 32-bit sum: 8 + 8 + 32 in, 32 out; ternary add: an int8 activation and
    /// a trit into a 32-bit sum). Overwritten activations discard their bits too.
    /// </summary>
    public static double DiscardedBits(OpKind kind) => kind switch
    {
        OpKind.Fp32Mac => 64,
        OpKind.Int8Mac => 16,
        _ => 8 + Math.Log2(3),
    };

    /// <param name="ambientCelsius">the air around the device; the device itself is taken at its steady state under this load (for Landauer's kT)</param>
    public static CostEstimate Estimate(Workload workload, DeviceProfile device, double ambientCelsius = 25, int step = 0)
    {
        if (step < 0 || step >= device.Dvfs.Count) throw new ArgumentOutOfRangeException(nameof(step));
        var weightLevel = device.WeightLevel(workload.WeightBytes);
        var activationLevel = device.Memory[0];
        double clock = device.Dvfs[step].Hertz / device.Hertz, watts = device.Dvfs[step].Watts;
        double Bandwidth(MemoryLevel m) => m.BytesPerSecond * (m.OnChip ? clock : 1);
        var layers = new List<LayerCost>();
        double computeJoules = 0, memoryJoules = 0;
        foreach (var l in workload.Layers)
        {
            double compute = Enum.GetValues<OpKind>().Sum(k => l.Ops(k) / (device.OpsPerSecond[k] * clock));
            double memory = l.WeightBytes / Bandwidth(weightLevel) + l.ActivationBytes / Bandwidth(activationLevel);
            var cost = new LayerCost(l.Name, compute, memory, 0);
            double busy = watts * cost.Seconds, bytes = l.WeightBytes * weightLevel.JoulesPerByte + l.ActivationBytes * activationLevel.JoulesPerByte;
            if (cost.MemoryBound) memoryJoules += busy; else computeJoules += busy;
            memoryJoules += bytes;
            layers.Add(cost with { Joules = busy + bytes });
        }
        double arithmetic = Enum.GetValues<OpKind>().Sum(k => workload.Ops(k) * device.JoulesPerOp(k));
        double celsius = ambientCelsius + watts * device.CelsiusPerWatt;
        double bits = Enum.GetValues<OpKind>().Sum(k => workload.Ops(k) * DiscardedBits(k)) + 8.0 * workload.ActivationBytes / 2;
        double landauer = bits * Boltzmann * (celsius + 273.15) * Math.Log(2);
        return new CostEstimate(workload, device, step, layers, weightLevel, computeJoules, memoryJoules, arithmetic, landauer, celsius);
    }
}
