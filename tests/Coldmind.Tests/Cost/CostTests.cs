using System.Text.Json;
using Xunit;
using Coldmind.Cost;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>The cost model on hand-computable cases, the modal against the RC circuit's analytic solution, the shipped profiles, and bad input.</summary>
public class CostTests
{
    /// <summary>A device with round numbers: 1 G ops/s of each kind, 1 GB/s SRAM (activations) and 0.5 GB/s DRAM at 100 pJ/B, 1 W busy.</summary>
    private const string Toy = """
        {
          "name": "toy", "description": "round numbers", "process_nm": 45, "core_volts": 0.9,
          "ops_per_second": { "fp32_mac": 1e9, "int8_mac": 1e9, "ternary_add": 1e9 },
          "memory": [
            { "name": "sram", "bytes": 1000, "bytes_per_second": 1e9, "joules_per_byte": 0, "on_chip": true },
            { "name": "dram", "bytes": 1e9, "bytes_per_second": 5e8, "joules_per_byte": 1e-10, "on_chip": false }
          ],
          "idle_watts": 0.1,
          "dvfs": [ { "hertz": 1e9, "watts": 1.0 }, { "hertz": 5e8, "watts": 0.4 } ],
          "thermal": { "celsius_per_watt": 50, "joules_per_celsius": 2, "throttle_celsius": 70, "hysteresis_celsius": 5 },
          "battery_joules": 3600, "harvest_watts": 0.05
        }
        """;

    private static DeviceProfile Device(string json = Toy) => DeviceProfile.Parse(json, "toy.json");

    private static Workload One(LayerWork layer) => new("one", "inference", [layer]);

    [Fact]
    public void A_dense_layer_costs_its_macs_and_bytes_by_hand()
    {
        // 100 × 200 fp32: 20 000 MACs (20 µs), 80 000 weight bytes from DRAM (160 µs), 1 200 activation bytes from SRAM (1.2 µs)
        var e = CostModel.Estimate(One(LayerWork.Matrix("fc", OpKind.Fp32Mac, 100, 200, 20_000, 80_000, 4)), Device());
        Assert.Equal("dram", e.WeightLevel.Name);
        Assert.Equal(20e-6, e.Layers[0].ComputeSeconds, 12);
        Assert.Equal(161.2e-6, e.Layers[0].MemorySeconds, 12);
        Assert.Equal("memory", e.Bound);
        Assert.Equal(161.2e-6, e.Seconds, 12);
        Assert.Equal(1.0 * 161.2e-6 + 80_000 * 1e-10, e.Joules, 12);
        Assert.Equal(0, e.ComputeJoules);
        Assert.Equal(81_200, e.BytesPerUnit);
        Assert.Equal(1 / 161.2e-6, e.BandwidthBoundRate, 6);
        Assert.Equal(20_000 * 4.6e-12, e.ArithmeticJoules, 15);
        // Landauer: 64 bits per fp32 MAC and the 600 activation bytes written, at the steady 25 + 1 W × 50 °C/W
        double bits = 20_000 * 64 + 8 * 600;
        double landauer = bits * 1.380649e-23 * (75 + 273.15) * Math.Log(2);
        Assert.Equal(landauer, e.LandauerJoules, landauer * 1e-12);
    }

    [Fact]
    public void A_compute_bound_layer_spends_its_time_on_arithmetic_and_halving_the_clock_doubles_it()
    {
        // 1 M int8 MACs on 1 000 weight bytes (in SRAM): 1 ms of compute against 3 µs of memory
        var work = One(LayerWork.Matrix("conv", OpKind.Int8Mac, 1000, 1000, 1_000_000, 1000, 1));
        var fast = CostModel.Estimate(work, Device());
        var slow = CostModel.Estimate(work, Device(), step: 1);
        Assert.Equal("sram", fast.WeightLevel.Name);
        Assert.Equal("compute", fast.Bound);
        Assert.Equal(1e-3, fast.Seconds, 12);
        Assert.Equal(2e-3, slow.Seconds, 12);
        Assert.Equal(1.0 * 1e-3, fast.Joules, 12);
        Assert.Equal(0.4 * 2e-3, slow.Joules, 12); // the slower step costs less energy: power fell faster than the clock
    }

    [Fact]
    public void A_ternary_layer_counts_no_multiplications_and_zeros_are_skipped()
    {
        const string net = """
            { "name": "n", "precision": "ternary", "layers": [
              { "name": "a", "kind": "dense", "input": [100], "output": [40] },
              { "name": "b", "kind": "dense", "input": [40], "output": [10], "precision": "fp32", "sparsity": 0.75 } ] }
            """;
        var w = Workload.FromDescription(net, "n.json");
        Assert.Equal(4000, w.Layers[0].TernaryAdds);
        Assert.Equal(0, w.Layers[0].Fp32Macs + w.Layers[0].Int8Macs);
        Assert.Equal(1000 + 160, w.Layers[0].WeightBytes); // 2 bits a weight, 32-bit biases
        Assert.Equal(100, w.Layers[1].Fp32Macs);
        Assert.Equal(300, w.Layers[1].SkippedZeros);
        Assert.Equal(400 + 40, w.Layers[1].WeightBytes);
        var e = CostModel.Estimate(w, Device());
        Assert.Equal(4000 * 0.1e-12 + 100 * 4.6e-12, e.ArithmeticJoules, 1e-24);
    }

    [Fact]
    public void A_pruned_and_a_ternary_classifier_are_priced_by_their_kept_weights()
    {
        var mlp = new Mlp(8, [16], 4, new Rng(1));
        var first = mlp.NamedParameters().First(p => p.Tensor.Rank == 2).Tensor;
        var w = first.Span;
        for (int i = 0; i < w.Length; i++) if (i % 4 != 0) w[i] = 0; // 75 % pruned: stored sparse
        var work = Workload.FromClassifier(CompactClassifier.Compile(mlp), "pruned");
        Assert.Equal(32, work.Layers[0].Fp32Macs);
        Assert.Equal(96, work.Layers[0].SkippedZeros);
        Assert.Equal(64, work.Layers[1].Fp32Macs); // the dense output layer multiplies all 16 × 4

        var ternary = new Sequential(new BitLinear(8, 4, new Rng(2)));
        var tw = Workload.FromClassifier(CompactClassifier.Compile(ternary), "ternary");
        Assert.Equal(0, tw.Ops(OpKind.Int8Mac));
        Assert.True(tw.Ops(OpKind.TernaryAdd) > 0);
        Assert.Equal(32, tw.Ops(OpKind.TernaryAdd) + tw.SkippedZeros);
        Assert.Equal(3 * 8 + 4, tw.Ops(OpKind.Fp32Mac)); // norm, quantisation and the per-row scale only
    }

    [Fact]
    public void A_gguf_language_model_reads_every_weight_once_per_token()
    {
        string path = SharedFiles.Require("models/stories260K/stories260K.f32.gguf");
        var w = Workload.FromGguf(path, 64);
        using var file = Formats.GgufFile.Open(path);
        var config = ModelConfig.FromGguf(file);
        long matrices = file.Tensors.Where(t => t.Dims.Length == 2 && t.Name != "token_embd.weight").Sum(t => t.Count);
        bool tied = file.Tensors.All(t => t.Name != "output.weight");
        long head = tied ? (long)config.VocabSize * config.EmbeddingLength : 0;
        long attention = 2L * config.Heads * config.HeadDim * 64 * config.Layers;
        long vectors = file.Tensors.Where(t => t.Dims.Length == 1 && t.Name.StartsWith("blk.", StringComparison.Ordinal)).Sum(t => t.Count);
        Assert.Equal(matrices + head + attention + vectors, w.Ops(OpKind.Fp32Mac));
        Assert.Equal("token", w.Unit);
    }

    [Fact]
    public void The_modal_follows_the_RC_circuits_exponential_approach_to_steady_state()
    {
        // always on at 100/s of a 1 ms, 1 mJ inference: 10 % busy, P = 0.9 × 0.1 W + 100 × 1 mJ = 0.19 W; no throttling below 70 °C
        var device = Device();
        var work = One(LayerWork.Matrix("conv", OpKind.Int8Mac, 1000, 1000, 1_000_000, 1000, 1));
        var v = Modal.Simulate(work, device, new ModalLoad(100, 20, 600));
        double p = 0.9 * 0.1 + 100 * 1e-3, tau = 50 * 2.0;
        foreach (var s in v.Series)
            Assert.Equal(20 + p * 50 * (1 - Math.Exp(-s.Seconds / tau)), s.Celsius, 9);
        Assert.Null(v.TimeToThrottleSeconds);
        Assert.Equal(100, v.SustainedRate, 6);
        Assert.True(v.Passes, v.Reason);
        Assert.Equal(p * 600, v.Joules, 6);
        // the battery drains by P − harvest
        Assert.Equal(3600 - (p - 0.05) * 600, v.Series[^1].BatteryJoules!.Value, 6);
        Assert.Equal(600 + (3600 - (p - 0.05) * 600) / (p - 0.05), v.BatteryLifeSeconds!.Value, 3);
    }

    [Fact]
    public void The_modal_throttles_when_the_analytic_curve_reaches_the_limit_and_then_holds_near_it()
    {
        // 1000/s saturates the fast step: P = 1 W, steady 25 + 50 = 75 °C, so the 70 °C limit is crossed at t = −τ ln(1 − 45/50)
        var device = Device();
        var work = One(LayerWork.Matrix("conv", OpKind.Int8Mac, 1000, 1000, 1_000_000, 1000, 1));
        var v = Modal.Simulate(work, device, new ModalLoad(1000, 25, 1200));
        double tau = 100, expected = -tau * Math.Log(1 - 45.0 / 50);
        Assert.NotNull(v.TimeToThrottleSeconds);
        Assert.InRange(v.TimeToThrottleSeconds!.Value, expected - 1, expected + 1);
        Assert.False(v.Passes);
        Assert.InRange(v.MaxCelsius, 70, 70.5);
        Assert.Contains(v.Series, s => s.Hertz == 5e8);
        Assert.InRange(v.SustainedRate, 500, 1000); // between the slow step's 500/s and the asked 1000/s
    }

    [Fact]
    public void Shipped_profiles_load_and_every_number_names_its_source()
    {
        Assert.Contains("stm32l4", DeviceProfile.Shipped);
        foreach (var name in new[] { "stm32l4", "stm32h7", "rpi5", "phone", "jetson-orin-nano", "x86-laptop", "host" })
        {
            var d = DeviceProfile.Load(name);
            Assert.Equal(name, d.Name);
            foreach (var field in DeviceProfile.SourcedFields)
                Assert.True(d.Sources.TryGetValue(field, out var source) && source.Length > 10, $"{name}: no source for {field}");
        }
    }

    [Fact]
    public void MLPerf_Tiny_reference_energies_are_estimated_within_2x()
    {
        foreach (var (file, device) in new[] { ("mlperf-tiny-kws-dscnn.json", "stm32h7"), ("mlperf-tiny-kws-dscnn.json", "stm32l4"), ("mlperf-tiny-ad-autoencoder.json", "stm32h7") })
        {
            var work = Workload.Open(RepoFiles.Path("networks/" + file));
            double ratio = CostModel.Estimate(work, DeviceProfile.Load(device)).Joules / work.PublishedResults.Single(p => p.Device == device).Joules!.Value;
            Assert.InRange(ratio, 0.5, 2.0);
        }
    }

    [Theory]
    [InlineData("\"process_nm\": 45,", "", "lacks process_nm")]
    [InlineData("\"idle_watts\": 0.1", "\"idle_watts\": -0.1", "idle_watts = -0.1 must be positive")]
    [InlineData("\"hertz\": 5e8, \"watts\": 0.4", "\"hertz\": 2e9, \"watts\": 0.4", "must go down in clock")]
    [InlineData("\"bytes_per_second\": 5e8", "\"bytes_per_second\": \"fast\"", "memory[1].bytes_per_second must be number")]
    public void A_bad_profile_names_what_is_wrong(string from, string to, string message)
    {
        string json = Toy.Replace(from, to, StringComparison.Ordinal);
        Assert.NotEqual(Toy, json);
        var e = Assert.Throws<ColdmindException>(() => DeviceProfile.Parse(json, "toy.json"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Unknown_devices_models_that_do_not_fit_and_impossible_loads_are_refused()
    {
        Assert.Contains("must hold one JSON object", Assert.Throws<ColdmindException>(() => DeviceProfile.Parse("[]", "list.json")).Message);
        Assert.Contains("Unknown device 'toaster'", Assert.Throws<ColdmindException>(() => DeviceProfile.Load("toaster")).Message);
        var huge = One(LayerWork.Matrix("fc", OpKind.Fp32Mac, 100_000, 100_000, 10_000_000_000, 40_000_000_000, 4));
        Assert.Contains("do not fit", Assert.Throws<ColdmindException>(() => CostModel.Estimate(huge, Device())).Message);
        var work = One(LayerWork.Matrix("fc", OpKind.Fp32Mac, 10, 10, 100, 400, 4));
        Assert.Contains("rate must be positive", Assert.Throws<ColdmindException>(() => Modal.Simulate(work, Device(), new ModalLoad(0, 25, 10))).Message);
        Assert.Contains("no headroom", Assert.Throws<ColdmindException>(() => Modal.Simulate(work, Device(), new ModalLoad(1, 80, 10))).Message);
        Assert.Contains("duty cycle", Assert.Throws<ColdmindException>(() => Modal.Simulate(work, Device(), new ModalLoad(1, 25, 10, 1.5))).Message);
    }

    [Fact]
    public void Cost_and_modal_print_the_promised_json_and_refuse_bad_input_in_one_line()
    {
        string kws = RepoFiles.Path("networks/mlperf-tiny-kws-dscnn.json");
        var (exit, stdout, stderr) = CliProcess.Run("cost", kws, "--device", "stm32h7", "--json");
        Assert.True(exit == 0, stderr);
        using (var json = JsonDocument.Parse(stdout))
        {
            var root = json.RootElement;
            foreach (var key in new[] { "joules_per_inference", "latency_seconds", "bytes_per_inference", "landauer_ratio" })
                Assert.True(root.GetProperty(key).GetDouble() > 0, key);
            Assert.Equal("compute", root.GetProperty("bound").GetString());
        }
        (exit, stdout, stderr) = CliProcess.Run("modal", kws, "--device", "stm32h7", "--rate", "5", "--ambient", "30", "--duration", "60", "--json");
        Assert.True(exit == 0, stderr);
        using (var json = JsonDocument.Parse(stdout))
        {
            var root = json.RootElement;
            Assert.True(root.GetProperty("passes").GetBoolean());
            Assert.Equal(JsonValueKind.Null, root.GetProperty("time_to_throttle_seconds").ValueKind);
            Assert.Equal(5, root.GetProperty("sustained_rate").GetDouble(), 6);
            Assert.InRange(root.GetProperty("max_temperature_c").GetDouble(), 30, 35);
        }
        foreach (var args in new[]
        {
            new[] { "cost", kws, "--device", "toaster" },
            ["modal", kws, "--device", "stm32h7", "--rate", "0"],
            ["modal", kws, "--device", "stm32h7", "--rate", "1", "--ambient", "130"],
            ["cost", kws, "--device", "stm32h7", "--measure"],
        })
        {
            (exit, stdout, stderr) = CliProcess.Run(args);
            Assert.Equal(1, exit);
            Assert.StartsWith("error: ", stderr);
            Assert.Single(stderr.Trim().Split('\n'));
        }
    }
}
