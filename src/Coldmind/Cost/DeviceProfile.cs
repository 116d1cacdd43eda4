using System.Text.Json;

namespace Coldmind.Cost;

/// <summary>The kinds of arithmetic priced differently: a float multiply-add, an int8 multiply-add, and a ternary weight's add or subtract.</summary>
public enum OpKind { Fp32Mac, Int8Mac, TernaryAdd }

/// <summary>
/// One level of a device's memory, fastest first. Bandwidth is what kernels sustain, not the interface's peak;
/// joules per byte are what a byte costs beyond the device's active power (DRAM: its own chips; on-chip memories:
/// 0, their energy is inside the run-mode power). On-chip bandwidth follows the core clock under DVFS, DRAM's does not.
/// </summary>
public sealed record MemoryLevel(string Name, long Bytes, double BytesPerSecond, double JoulesPerByte, bool OnChip);

/// <summary>A DVFS operating point: clock and the whole device's power while computing at it.</summary>
public sealed record DvfsStep(double Hertz, double Watts);

/// <summary>
/// The device's network link, for escalation: sustained goodput, the energy of a byte sent or received beyond
/// idle, the fixed energy of one exchange (waking the radio, connection event, headers, the tail it stays on
/// after), and the round trip to the server.
/// </summary>
public sealed record RadioLink(string Name, double BytesPerSecond, double JoulesPerByteSent, double JoulesPerByteReceived, double JoulesPerMessage, double RoundTripSeconds)
{
    /// <summary>The device's energy for one request of <paramref name="sent"/> bytes answered by <paramref name="received"/>, idling while it waits.</summary>
    public double ExchangeJoules(long sent, long received, double idleWatts) =>
        JoulesPerMessage + sent * JoulesPerByteSent + received * JoulesPerByteReceived + idleWatts * ExchangeSeconds(sent, received);

    public double ExchangeSeconds(long sent, long received) => RoundTripSeconds + (sent + received) / BytesPerSecond;
}
/// <summary>
/// What the cost model and the modal need to know about a device, as data: shipped as JSON in devices/
/// (embedded), or a user's file. Every number of a shipped profile names its source or says it is an assumption
/// (<see cref="Sources"/>). Op rates are sustained by good kernels at the top DVFS step, all cores; power is the
/// whole device's (what its battery sees), so idle power is the floor between inferences.
/// </summary>
public sealed record DeviceProfile(
    string Name, string Description, double ProcessNm, double CoreVolts,
    IReadOnlyDictionary<OpKind, double> OpsPerSecond, IReadOnlyList<MemoryLevel> Memory, string? WeightsIn,
    double IdleWatts, IReadOnlyList<DvfsStep> Dvfs,
    double CelsiusPerWatt, double JoulesPerCelsius, double ThrottleCelsius, double HysteresisCelsius,
    double BatteryJoules, double HarvestWatts, IReadOnlyDictionary<string, string> Sources)
{
    /// <summary>The network link escalation uses; null when the profile has none.</summary>
    public RadioLink? Radio { get; init; }

    /// <summary>Horowitz, ISSCC 2014 ("Computing's energy problem"), 45 nm at 0.9 V: fp32 multiply 3.7 pJ + add 0.9 pJ; int8 multiply 0.2 pJ + add 0.03 pJ; 32-bit integer add 0.1 pJ.</summary>
    public static readonly IReadOnlyDictionary<OpKind, double> Horowitz45nm = new Dictionary<OpKind, double>
    {
        [OpKind.Fp32Mac] = 4.6e-12, [OpKind.Int8Mac] = 0.23e-12, [OpKind.TernaryAdd] = 0.1e-12,
    };

    public double Hertz => Dvfs[0].Hertz;
    public double ActiveWatts => Dvfs[0].Watts;
    public double ThermalTimeConstant => CelsiusPerWatt * JoulesPerCelsius;

    /// <summary>
    /// Energy of one operation's arithmetic alone: Horowitz's 45 nm figure scaled by switched capacitance (∝ feature
    /// size) and the square of the core voltage, E ∝ C·V². Optimistic below ~28 nm, where capacitance shrinks slower
    /// than the node's name: this is the arithmetic floor, not the device's cost (instruction fetch, control and
    /// clocking make a CPU spend 10–100× more, and that is in <see cref="ActiveWatts"/>).
    /// </summary>
    public double JoulesPerOp(OpKind kind) => Horowitz45nm[kind] * (ProcessNm / 45) * Math.Pow(CoreVolts / 0.9, 2);

    /// <summary>The level weights are read from: <see cref="WeightsIn"/> if set (an MCU's flash), else the fastest that holds them.</summary>
    public MemoryLevel WeightLevel(long weightBytes)
    {
        if (WeightsIn != null) return Memory.First(m => m.Name == WeightsIn);
        if (weightBytes > Memory[^1].Bytes)
            throw new ColdmindException($"The model's {weightBytes:N0} bytes of weights do not fit '{Name}', whose largest memory ({Memory[^1].Name}) holds {Memory[^1].Bytes:N0}.");
        return Memory.First(m => m.Bytes >= weightBytes);
    }

    public static IReadOnlyList<string> Shipped { get; } = typeof(DeviceProfile).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)).Select(n => n[ResourcePrefix.Length..^".json".Length]).Order().ToArray();

    private const string ResourcePrefix = "Coldmind.Devices.";

    /// <summary>A shipped profile by name, or the profile in <paramref name="deviceFile"/> (whose name must match when both are given).</summary>
    public static DeviceProfile Load(string name, string? deviceFile = null)
    {
        if (deviceFile != null)
        {
            var profile = Parse(InputFileText(deviceFile), deviceFile);
            if (profile.Name != name) throw new ColdmindException($"'{deviceFile}' describes '{profile.Name}', not '{name}'.");
            return profile;
        }
        using var stream = typeof(DeviceProfile).Assembly.GetManifestResourceStream(ResourcePrefix + name + ".json")
            ?? throw new ColdmindException($"Unknown device '{name}': the shipped ones are {string.Join(", ", Shipped)}, and host (this machine, measured); or describe yours with --device-file.");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), $"devices/{name}.json");
    }

    private static string InputFileText(string path)
    {
        if (!File.Exists(path)) throw new ColdmindException($"Device file '{path}' does not exist.");
        return File.ReadAllText(path);
    }

    /// <summary>Reads and checks a profile: every field present, numbers finite and in range, DVFS steps descending.</summary>
    public static DeviceProfile Parse(string json, string origin)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ColdmindException($"'{origin}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ColdmindException($"'{origin}' must hold one JSON object.");
            JsonElement Field(JsonElement e, string path, string key, JsonValueKind kind)
            {
                if (!e.TryGetProperty(key, out var v)) throw new ColdmindException($"'{origin}' lacks {path}{key}.");
                if (v.ValueKind != kind && !(kind == JsonValueKind.True && v.ValueKind == JsonValueKind.False))
                    throw new ColdmindException($"'{origin}': {path}{key} must be {(kind == JsonValueKind.True ? "true or false" : kind.ToString().ToLowerInvariant())}.");
                return v;
            }
            double Number(JsonElement e, string path, string key, bool positive = true)
            {
                double v = Field(e, path, key, JsonValueKind.Number).GetDouble();
                if (!double.IsFinite(v) || v < 0 || (positive && v == 0))
                    throw new ColdmindException($"'{origin}': {path}{key} = {v} must be {(positive ? "positive" : "zero or more")}.");
                return v;
            }
            string Text(JsonElement e, string path, string key) => Field(e, path, key, JsonValueKind.String).GetString()!;

            var ops = Field(root, "", "ops_per_second", JsonValueKind.Object);
            var rates = new Dictionary<OpKind, double>
            {
                [OpKind.Fp32Mac] = Number(ops, "ops_per_second.", "fp32_mac"),
                [OpKind.Int8Mac] = Number(ops, "ops_per_second.", "int8_mac"),
                [OpKind.TernaryAdd] = Number(ops, "ops_per_second.", "ternary_add"),
            };
            var memory = Field(root, "", "memory", JsonValueKind.Array).EnumerateArray().Select((m, i) => new MemoryLevel(
                Text(m, $"memory[{i}].", "name"), (long)Number(m, $"memory[{i}].", "bytes"), Number(m, $"memory[{i}].", "bytes_per_second"),
                Number(m, $"memory[{i}].", "joules_per_byte", positive: false), Field(m, $"memory[{i}].", "on_chip", JsonValueKind.True).GetBoolean())).ToArray();
            if (memory.Length == 0) throw new ColdmindException($"'{origin}': memory must list at least one level.");
            string? weightsIn = root.TryGetProperty("weights_in", out var w) ? w.GetString() : null;
            if (weightsIn != null && memory.All(m => m.Name != weightsIn))
                throw new ColdmindException($"'{origin}': weights_in names '{weightsIn}', which is not one of its memory levels.");
            var dvfs = Field(root, "", "dvfs", JsonValueKind.Array).EnumerateArray()
                .Select((s, i) => new DvfsStep(Number(s, $"dvfs[{i}].", "hertz"), Number(s, $"dvfs[{i}].", "watts"))).ToArray();
            if (dvfs.Length == 0) throw new ColdmindException($"'{origin}': dvfs must list at least one operating point.");
            for (int i = 1; i < dvfs.Length; i++)
                if (dvfs[i].Hertz >= dvfs[i - 1].Hertz || dvfs[i].Watts > dvfs[i - 1].Watts)
                    throw new ColdmindException($"'{origin}': dvfs steps must go down in clock and not up in power (step {i}).");
            double idle = Number(root, "", "idle_watts");
            if (idle > dvfs[^1].Watts) throw new ColdmindException($"'{origin}': idle_watts {idle} exceeds the power of the slowest dvfs step ({dvfs[^1].Watts}).");
            var thermal = Field(root, "", "thermal", JsonValueKind.Object);
            var sources = root.TryGetProperty("sources", out var s) && s.ValueKind == JsonValueKind.Object
                ? s.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "")
                : new Dictionary<string, string>();
            return new DeviceProfile(Text(root, "", "name"), Text(root, "", "description"), Number(root, "", "process_nm"), Number(root, "", "core_volts"),
                rates, memory, weightsIn, idle, dvfs,
                Number(thermal, "thermal.", "celsius_per_watt"), Number(thermal, "thermal.", "joules_per_celsius"),
                Number(thermal, "thermal.", "throttle_celsius"), Number(thermal, "thermal.", "hysteresis_celsius"),
                Number(root, "", "battery_joules", positive: false), Number(root, "", "harvest_watts", positive: false), sources)
            {
                Radio = root.TryGetProperty("radio", out var radio)
                    ? new RadioLink(Text(radio, "radio.", "name"), Number(radio, "radio.", "bytes_per_second"), Number(radio, "radio.", "joules_per_byte_sent", positive: false),
                        Number(radio, "radio.", "joules_per_byte_received", positive: false), Number(radio, "radio.", "joules_per_message", positive: false),
                        Number(radio, "radio.", "round_trip_seconds", positive: false))
                    : null,
            };
        }
    }

    /// <summary>The fields a shipped profile must source (every number, by its JSON name).</summary>
    public static readonly string[] SourcedFields =
    [
        "process_nm", "core_volts", "ops_per_second", "memory", "idle_watts", "dvfs", "thermal", "battery_joules", "harvest_watts", "radio",
    ];
}
