// A sensor program: load a shrunk classifier (what `coldmind shrink` writes) and classify a stream of readings, one
// CSV line of features each, with the class, its calibrated probability and the joules the device spends on it.
//   coldmind shrink --out shrunk.safetensors
//   dotnet run --project samples/SensorClassifier -- shrunk.safetensors stm32h7 - < readings.csv
// Without readings (a file, or - for standard input) it classifies the embedded digits' test split, as a sensor would
// send them.
using System.Globalization;
using Coldmind;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;

if (args.Length is < 1 or > 3)
{
    Console.Error.WriteLine("usage: SensorClassifier MODEL.safetensors [DEVICE] [READINGS.csv|-]");
    Console.Error.WriteLine("       (a reading is a CSV line of features; - reads them from standard input)");
    return 2;
}
try
{
    var model = CompactClassifier.Load(args[0]);
    var device = DeviceProfile.Load(args.Length > 1 ? args[1] : "stm32h7");
    var cost = CostModel.Estimate(Workload.FromClassifier(model, Path.GetFileName(args[0])), device);
    // the temperature `shrink` fitted on held-out data makes the softmax a calibrated probability
    float temperature = model.Metadata.TryGetValue("coldmind.temperature", out var t)
        ? float.Parse(t, CultureInfo.InvariantCulture) : 1f;
    Console.Error.WriteLine($"{model.Describe()} on {device.Name}: {cost.Joules:E2} J and {cost.Seconds * 1e6:F1} µs "
        + "an inference");

    double joules = 0;
    int count = 0;
    foreach (var reading in Readings(model.Inputs, args.Length > 2 ? args[2] : null))
    {
        var logits = model.Predict(reading);
        var p = logits.Select(l => Math.Exp((l - logits.Max()) / temperature)).ToArray();
        int best = Array.IndexOf(p, p.Max());
        joules += cost.Joules;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{count++}: class {best} (p = {p[best] / p.Sum():F3}), {joules:E2} J so far"));
    }
    return 0;
}
catch (ColdmindException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}

static IEnumerable<float[]> Readings(int features, string? source)
{
    if (source == null)
    {
        var test = BuiltinData.Load("digits").Test;
        for (int i = 0; i < Math.Min(20, test.Count); i++)
            yield return test.Features.AsSpan(i * test.FeatureCount, test.FeatureCount).ToArray();
        yield break;
    }
    using var input = source == "-" ? Console.In : new StreamReader(source);
    int line = 0;
    while (input.ReadLine() is { } text)
    {
        line++;
        if (text.Length == 0) continue;
        var values = text.Split(',');
        var x = new float[values.Length];
        bool numbers = values.Length == features
            && values.Select((v, i) => float.TryParse(v, CultureInfo.InvariantCulture, out x[i])).All(ok => ok);
        if (!numbers)
            throw new ColdmindException($"line {line}: expected {features} numbers separated by commas.");
        yield return x;
    }
}
