namespace Coldmind.Cost;

/// <summary>
/// Whether a model fits a device that keeps its weights in flash (an MCU profile's
/// <see cref="DeviceProfile.WeightsIn"/>): the weights as the cost model counts them against flash, and the largest
/// layer's input and output (the two activation buffers a layer-by-layer runtime holds at once, as the C export's
/// arena does) against RAM, the device's largest other memory. Null for a device without a separate weight memory.
/// </summary>
public sealed record Footprint(long FlashBytes, long FlashCapacity, long RamBytes, long RamCapacity, string RamName)
{
    public bool FitsFlash => FlashBytes <= FlashCapacity;
    public bool FitsRam => RamBytes <= RamCapacity;
    public bool Fits => FitsFlash && FitsRam;

    public static Footprint? Of(Workload workload, DeviceProfile device)
    {
        if (device.WeightsIn is not { } flashName) return null;
        var flash = device.Memory.First(m => m.Name == flashName);
        var ram = device.Memory.Where(m => m.Name != flashName).MaxBy(m => m.Bytes);
        if (ram == null) return null;
        long activations = workload.Layers.Select(l => l.ActivationBytes).DefaultIfEmpty(0).Max();
        return new Footprint(workload.WeightBytes, flash.Bytes, activations, ram.Bytes, ram.Name);
    }

    public string Describe() =>
        $"{(Fits ? "fits" : "does not fit")}: weights {FlashBytes:N0} B of {FlashCapacity:N0} B flash " +
        $"({(FitsFlash ? "fits" : "too big")}), " +
        $"activations {RamBytes:N0} B of {RamCapacity:N0} B {RamName} ({(FitsRam ? "fits" : "too big")})";
}
