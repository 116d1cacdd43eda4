using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cognition;
using Coldmind.Models;
using Coldmind.Network;
using Coldmind.Reports;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind cascade --edge SMALL --cloud BIG`: the small model answers on the device, and escalates to the big one
/// only when the expected free energy says it is worth the joules and bytes; against a confidence-threshold cascade,
/// always-local and always-cloud.
/// </summary>
internal static class CascadeCommand
{
    public static Command Create()
    {
        var edge = new Option<string>("--edge") { Description = "the device's model (a shrunk model, or a checkpoint)", Required = true };
        var cloud = new Option<string?>("--cloud") { Description = "the cloud's model, run in this process" };
        var cloudUrl = new Option<string?>("--cloud-url") { Description = "the cloud over the network: a `coldmind serve` address, e.g. http://127.0.0.1:8080" };
        var keyFile = new Option<string?>("--key-file") { Description = "the key shared with the server (with --cloud-url)" };
        var data = new ModelDataOptions();
        var device = new DeviceOptions();
        var policy = new Option<string>("--policy") { Description = "efe (expected free energy) or threshold: the policy of the chosen operating point (with --cloud-url, the one that runs)", DefaultValueFactory = _ => "efe" };
        var joulesPerNat = new Option<double?>("--joules-per-nat") { Description = "EFE: the energy preference J₀ (default: the cheapest that reaches --target on validation)" };
        var threshold = new Option<double?>("--threshold") { Description = "threshold policy: escalate below this top probability (default: the cheapest that reaches --target)" };
        var target = new Option<double>("--target") { Description = "choose operating points that reach this fraction of the cloud's accuracy on validation", DefaultValueFactory = _ => 0.99 };
        var gamma = new Option<double>("--gamma") { Description = "EFE: precision γ of softmax(−γG)", DefaultValueFactory = _ => 32 };
        var errorNats = new Option<double>("--error-nats") { Description = "EFE: how much less an error is preferred than a right answer (nats)", DefaultValueFactory = _ => 4 };
        var topK = new Option<int>("--top-k") { Description = "classes the cloud sends back", DefaultValueFactory = _ => 1 };
        var look = new Option<bool>("--look") { Description = "allow a second look on the device (the image moved one pixel: another sensor window)" };
        var calibration = new Option<int>("--calibration") { Description = "validation examples to calibrate on (0: all; with --cloud-url default 1000)" };
        var seed = CommonOptions.Seed();
        var json = CommonOptions.Json();
        var report = new Option<string?>("--report") { Description = "write an HTML report with the curves and reliability diagrams" };
        var cmd = new Command("cascade", "Edge model + cloud model: escalate only when worth the joules and bytes (active inference), with a minimal payload.")
            { edge, cloud, cloudUrl, keyFile, policy, joulesPerNat, threshold, target, gamma, errorNats, topK, look, calibration, seed, json, report };
        data.AddTo(cmd);
        device.AddTo(cmd);
        cmd.SetAction(r =>
        {
            bool asJson = r.GetValue(json);
            string policyName = r.GetValue(policy)!;
            if (policyName is not ("efe" or "threshold")) throw new ColdmindException($"--policy must be efe or threshold, got '{policyName}'.");
            if (r.GetValue(cloud) == null == (r.GetValue(cloudUrl) == null)) throw new ColdmindException("Give the cloud either as a model file (--cloud) or as a server (--cloud-url), not both or neither.");
            if (r.GetValue(target) is var tgt && !(tgt is > 0 and <= 1)) throw new ColdmindException($"--target must be a fraction in (0, 1], got {tgt}.");
            if (r.GetValue(joulesPerNat) is { } j0 && !(j0 > 0)) throw new ColdmindException($"--joules-per-nat must be positive, got {j0}.");
            if (r.GetValue(gamma) is var g && !(g > 0)) throw new ColdmindException($"--gamma must be positive, got {g}.");

            var edgeModel = ClassifierModel.Load(r.GetValue(edge)!);
            var (dataSpec, splits) = data.Splits(r, edgeModel.Provenance);
            var profile = device.Load(r);

            ICloud cloudSide;
            HttpCloud? remote = null;
            string cloudName;
            if (r.GetValue(cloudUrl) is { } url)
            {
                if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")) throw new ColdmindException($"--cloud-url must be an http(s) address, got '{url}'.");
                var auth = MessageAuth.FromKeyFile(r.GetValue(keyFile) ?? throw new ColdmindException("--cloud-url needs --key-file, the key shared with the server."),
                    Environment.MachineName);
                cloudSide = remote = new HttpCloud(uri, auth, TimeSpan.FromSeconds(2));
                cloudName = $"{remote.ModelName} at {uri}";
            }
            else
            {
                var cloudModel = ClassifierModel.Load(r.GetValue(cloud)!);
                cloudSide = new LocalCloud(cloudModel, cloudModel.Provenance.Temperature ?? 1f);
                cloudName = cloudModel.Name;
            }
            var options = new CascadeOptions
            {
                TopK = r.GetValue(topK), Look = r.GetValue(look), Gamma = r.GetValue(gamma), ErrorNats = r.GetValue(errorNats), Seed = r.GetValue(seed),
                CalibrationExamples = r.GetValue(calibration) is > 0 and var c ? c : remote != null ? 1000 : 0,
            };
            if (!asJson) AnsiConsole.MarkupLineInterpolated($"Calibrating [bold]{edgeModel.Name}[/] (edge, {profile.Name}) and [bold]{cloudName}[/] (cloud) on {dataSpec}'s validation split…");
            var cascade = new Cascade(edgeModel, cloudSide, splits.Validation, profile, options);

            // operating points chosen on the calibration examples, never on the test split
            var calibrationReplies = cascade.CalibrationReplies;
            var (valThreshold, valEfe) = cascade.Sweep(cascade.CalibrationEvidence, cascade.Calibration.Labels, i => calibrationReplies[i]);
            double goal = r.GetValue(target) * cascade.Payload.CloudAccuracy;
            double chosenJ0 = r.GetValue(joulesPerNat) ?? Cheapest(valEfe, goal).Parameter;
            double chosenThreshold = r.GetValue(threshold) ?? Cheapest(valThreshold, goal).Parameter;

            var test = splits.Test;
            var evidence = cascade.Observe(test);
            var replies = new CloudReply?[test.Count];
            CloudReply Ask(int i) => remote != null
                ? cloudSide.Ask(cascade.Request(test, i)) // every escalation a real request
                : replies[i] ??= cloudSide.Ask(cascade.Request(test, i));
            IEdgePolicy Chosen(string name) => name == "efe" ? cascade.Efe(chosenJ0) : new ThresholdPolicy(chosenThreshold);

            var rows = new List<(string Name, CascadePoint Point)>();
            IReadOnlyList<CascadePoint> thresholdCurve = [], efeCurve = [];
            if (remote != null)
            {
                long failuresShown = 0;
                remote.OnFailure += reason =>
                {
                    if (failuresShown++ == 0 && !asJson) AnsiConsole.MarkupLineInterpolated($"[yellow]The cloud is unreachable ({reason}); answering locally and retrying every {HttpCloud.RetryAfter.TotalSeconds:F0} s.[/]");
                };
                CascadePoint? point = null;
                ProgressView.Steps($"{policyName} over HTTP", test.Count, asJson, tick =>
                    point = cascade.Run(Chosen(policyName), evidence, test.Labels, Ask, (_, _) => tick()));
                rows.Add(($"{policyName} (over HTTP)", point!));
            }
            else
            {
                (thresholdCurve, efeCurve) = cascade.Sweep(evidence, test.Labels, Ask);
                rows.Add(("always local", thresholdCurve[0]));
                rows.Add(("always cloud", thresholdCurve[^1]));
                rows.Add(("threshold", cascade.Run(Chosen("threshold"), evidence, test.Labels, Ask)));
                rows.Add(("efe", cascade.Run(Chosen("efe"), evidence, test.Labels, Ask)));
            }
            long rawBytes = test.FeatureCount; // one byte a feature: an 8-bit sensor's own reading
            var equalJoules = remote == null ? CompareAtEqualJoules(efeCurve, thresholdCurve) : null;

            if (asJson)
            {
                object Point(CascadePoint p) => new
                {
                    policy = p.Policy, parameter = p.Parameter, accuracy = p.Accuracy, escalated_fraction = p.EscalatedFraction, looked_fraction = p.LookedFraction,
                    fallback_fraction = p.FallbackFraction, joules_per_inference = p.JoulesPerInference, bytes_sent_per_inference = p.BytesSentPerInference,
                    bytes_received_per_inference = p.BytesReceivedPerInference,
                };
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    data = dataSpec, device = profile.Name, radio = cascade.Radio.Name, edge = edgeModel.Name, cloud = cloudName, test_examples = test.Count,
                    edge_temperature = cascade.EdgeTemperature, edge_ece = Coldmind.Nn.Calibration.ErrorOf(cascade.EdgeReliability),
                    edge_ece_calibrated = Coldmind.Nn.Calibration.ErrorOf(cascade.CalibratedEdgeReliability),
                    payload = new { bits = cascade.Payload.Bits, mean_bytes = cascade.Payload.MeanBytes, cloud_accuracy = cascade.Payload.CloudAccuracy },
                    payloads = cascade.Payloads.Select(p => new { bits = p.Bits, mean_bytes = p.MeanBytes, cloud_accuracy = p.CloudAccuracy }),
                    edge_joules = cascade.EdgeJoules, escalation_joules = cascade.Prices.EscalateJoules, raw_bytes_per_input = rawBytes,
                    joules_per_nat = chosenJ0, threshold = chosenThreshold,
                    points = rows.ToDictionary(x => x.Name, x => Point(x.Point)),
                    efe_minus_threshold_at_equal_joules = equalJoules is { } eq ? new { mean = eq.Mean, min = eq.Min, points = eq.Count } : null,
                    http_request_overhead_bytes = remote?.RequestOverheadBytes, cloud_failures = remote?.Failures,
                    curves = new { threshold = thresholdCurve.Select(Point), efe = efeCurve.Select(Point) },
                }));
            }
            else
            {
                var table = new Table().Border(TableBorder.Rounded).AddColumns("policy", "test acc", "escalated", "looked again", "µJ / input", "bytes sent / input", "fell back");
                foreach (var col in table.Columns.Skip(1)) col.RightAligned();
                foreach (var (name, p) in rows)
                    table.AddRow(name, $"{p.Accuracy:P2}", $"{p.EscalatedFraction:P1}", $"{p.LookedFraction:P1}", (p.JoulesPerInference * 1e6).ToString("F1", CultureInfo.InvariantCulture),
                        p.BytesSentPerInference.ToString("F1", CultureInfo.InvariantCulture), $"{p.FallbackFraction:P1}");
                AnsiConsole.Write(table);
                AnsiConsole.MarkupLineInterpolated($"Edge: {cascade.EdgeJoules * 1e6:F1} µJ an inference on {profile.Name}; escalation over {cascade.Radio.Name}: {cascade.Prices.EscalateJoules * 1e6:F1} µJ. Edge ECE on the calibration examples {Coldmind.Nn.Calibration.ErrorOf(cascade.EdgeReliability):F3} → {Coldmind.Nn.Calibration.ErrorOf(cascade.CalibratedEdgeReliability):F3} at T = {cascade.EdgeTemperature:F2}.");
                AnsiConsole.MarkupLineInterpolated($"Payload: {cascade.Payload.Bits} bits a feature, {cascade.Payload.MeanBytes:F0} bytes on average (raw: {rawBytes} bytes at 8 bits), cloud accuracy {cascade.Payload.CloudAccuracy:P2} on it; reply {1 + 4 * Math.Min(options.TopK, edgeModel.Classes)} bytes.");
                AnsiConsole.MarkupLineInterpolated($"Chosen on validation to reach {r.GetValue(target):P0} of the cloud's accuracy: EFE J₀ = {chosenJ0:G3} J/nat, threshold {chosenThreshold:G3}.");
                if (equalJoules is { } e)
                    AnsiConsole.MarkupLineInterpolated($"EFE minus threshold accuracy at equal joules over {e.Count} points of the curves: mean {Signed(100 * e.Mean)} pt, worst {Signed(100 * e.Min)} pt.");
                if (remote != null)
                    AnsiConsole.MarkupLineInterpolated($"Over HTTP: {remote.Failures} failed requests (answered locally); HTTP/1.1 framing adds about {remote.RequestOverheadBytes} bytes a request beyond the payload counted above.");
            }
            if (r.GetValue(report) is { } reportPath)
                WriteReport(reportPath, dataSpec, profile.Name, cascade, rows, thresholdCurve, efeCurve, rawBytes);
            return 0;
        });
        return cmd;
    }

    private static string Signed(double v) => (v >= 0 ? "+" : "−") + Math.Abs(v).ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>The point with the fewest joules reaching <paramref name="goal"/>, or the most accurate one when none does.</summary>
    private static CascadePoint Cheapest(IReadOnlyList<CascadePoint> curve, double goal) =>
        curve.Where(p => p.Accuracy >= goal).MinBy(p => p.JoulesPerInference) ?? curve.MaxBy(p => p.Accuracy)!;

    /// <summary>For each EFE point inside the threshold curve's joule range, its accuracy minus the threshold curve's (interpolated) at the same joules.</summary>
    private static (double Mean, double Min, int Count)? CompareAtEqualJoules(IReadOnlyList<CascadePoint> efe, IReadOnlyList<CascadePoint> threshold)
    {
        var curve = threshold.OrderBy(p => p.JoulesPerInference).ToArray();
        var diffs = new List<double>();
        foreach (var p in efe)
        {
            int k = Array.FindIndex(curve, q => q.JoulesPerInference >= p.JoulesPerInference);
            if (k <= 0) continue;
            var (a, b) = (curve[k - 1], curve[k]);
            double span = b.JoulesPerInference - a.JoulesPerInference;
            double accuracy = span > 0 ? a.Accuracy + (b.Accuracy - a.Accuracy) * (p.JoulesPerInference - a.JoulesPerInference) / span : Math.Max(a.Accuracy, b.Accuracy);
            diffs.Add(p.Accuracy - accuracy);
        }
        return diffs.Count == 0 ? null : (diffs.Average(), diffs.Min(), diffs.Count);
    }

    private static void WriteReport(string path, string dataSpec, string device, Cascade cascade, List<(string Name, CascadePoint Point)> rows,
        IReadOnlyList<CascadePoint> threshold, IReadOnlyList<CascadePoint> efe, long rawBytes)
    {
        LineChart Chart(string title, string xLabel, Func<CascadePoint, double> x)
        {
            var chart = new LineChart(title, xLabel, "test accuracy (%)");
            if (threshold.Count > 0) chart.Add(new Series("threshold cascade", threshold.Select(x).ToArray(), threshold.Select(p => 100 * p.Accuracy).ToArray()));
            if (efe.Count > 0) chart.Add(new Series("expected free energy", efe.Select(x).ToArray(), efe.Select(p => 100 * p.Accuracy).ToArray()));
            foreach (var (name, p) in rows) chart.Add(new Series(name, [x(p)], [100 * p.Accuracy]));
            return chart;
        }
        new HtmlReport($"coldmind cascade on {dataSpec}, {device}")
            .Paragraph($"Edge {cascade.Edge.Name}: {cascade.EdgeJoules * 1e6:F1} µJ an inference; an escalation over {cascade.Radio.Name} {cascade.Prices.EscalateJoules * 1e6:F1} µJ for a {cascade.Payload.Bits}-bit payload of {cascade.Payload.MeanBytes:F0} bytes on average (raw input: {rawBytes} bytes).")
            .Table(["policy", "test accuracy", "escalated", "looked again", "µJ / input", "bytes sent / input"],
                rows.Select(x => (IReadOnlyList<string>)[x.Name, $"{100 * x.Point.Accuracy:F2} %", $"{100 * x.Point.EscalatedFraction:F1} %", $"{100 * x.Point.LookedFraction:F1} %",
                    (x.Point.JoulesPerInference * 1e6).ToString("F1", CultureInfo.InvariantCulture), x.Point.BytesSentPerInference.ToString("F1", CultureInfo.InvariantCulture)]))
            .Table(["payload bits", "mean bytes", "cloud accuracy"], cascade.Payloads.Select(p => (IReadOnlyList<string>)[p.Bits.ToString(CultureInfo.InvariantCulture),
                p.MeanBytes.ToString("F1", CultureInfo.InvariantCulture), $"{100 * p.CloudAccuracy:F2} %"]))
            .Chart(Chart("Accuracy against the device's joules", "µJ per input", p => p.JoulesPerInference * 1e6))
            .Chart(Chart("Accuracy against the fraction escalated", "escalated (%)", p => 100 * p.EscalatedFraction))
            .Chart(Chart("Accuracy against bytes sent", "bytes sent per input", p => p.BytesSentPerInference))
            .Chart(ReliabilityChart.Of("Edge model reliability (calibration examples)", [("raw softmax", cascade.EdgeReliability), ($"T = {cascade.EdgeTemperature:F2}", cascade.CalibratedEdgeReliability)]))
            .Write(path);
    }
}
