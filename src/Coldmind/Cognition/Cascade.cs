using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Cognition;

/// <summary>Where escalations go: a model in this process, or a server over HTTP; an unanswered reply when the cloud cannot be reached.</summary>
public interface ICloud
{
    int Inputs { get; }
    int Classes { get; }
    CloudReply Ask(byte[] request);
}

/// <summary>The cloud model in this process, behind the same bytes a server would see: decode, calibrated softmax, top-k reply.</summary>
public sealed class LocalCloud(ClassifierModel model, float temperature) : ICloud
{
    public int Inputs => model.Inputs;
    public int Classes => model.Classes;

    public CloudReply Ask(byte[] request) => Read(Answer(model, temperature, request), request.Length, Classes);

    /// <summary>The reply bytes for a request: what `coldmind serve` sends back.</summary>
    public static byte[] Answer(ClassifierModel model, float temperature, ReadOnlySpan<byte> request)
    {
        var (x, topK) = Payload.Decode(request, model.Inputs);
        return Payload.EncodeReply(Calibration.Probabilities(model.Logits(x), model.Classes, temperature), topK);
    }

    public static CloudReply Read(ReadOnlySpan<byte> reply, long sent, int classes)
    {
        var (ids, p) = Payload.DecodeReply(reply, classes);
        return new CloudReply(ids, p, sent, reply.Length);
    }
}

public sealed record CascadeOptions
{
    /// <summary>Classes the cloud sends back.</summary>
    public int TopK { get; init; } = 1;
    /// <summary>The payload is the fewest-bytes encoding whose cloud accuracy is within this of the full-precision input's.</summary>
    public double PayloadTolerance { get; init; } = 0.005;
    /// <summary>
    /// Allow a second look (a one-pixel shift of an image: another sensor window). Off by default: on Fashion-MNIST
    /// the shifted look's reports depend on the first look beyond what the observer's contexts capture, so the
    /// agent overvalues it (docs/cascade.md).
    /// </summary>
    public bool Look { get; init; }
    public double ErrorNats { get; init; } = 4;
    public double Gamma { get; init; } = 32;
    /// <summary>Validation examples used to fit temperatures, confusion matrices and the payload (0: all).</summary>
    public int CalibrationExamples { get; init; }
    public ulong Seed { get; init; }
}

/// <summary>A payload encoding's size and the cloud's accuracy on it, over the calibration examples.</summary>
public sealed record PayloadChoice(int Bits, double MeanBytes, double CloudAccuracy);

/// <summary>One operating point: a policy run over a data set.</summary>
public sealed record CascadePoint(string Policy, double Parameter, double Accuracy, double EscalatedFraction, double LookedFraction, double FallbackFraction,
    double JoulesPerInference, double BytesSentPerInference, double BytesReceivedPerInference);

/// <summary>
/// An edge model and a cloud model as one system: the edge's calibration (temperature scaling on validation data;
/// the cloud calibrates itself with the temperature saved beside its model), the cheapest payload that keeps the
/// cloud's accuracy, each source's confusion matrix for the agent's
/// predictions, and the device's prices from the cost model and its radio. Then policies are run over data and
/// compared at equal joules.
/// </summary>
public sealed class Cascade
{
    /// <summary>The observers' contexts split the edge's confidence into this many bins of equal count on the calibration examples.</summary>
    public const int ConfidenceBins = 4;
    /// <summary>The second look: the scene through a neighbouring sensor window, the image moved one pixel.</summary>
    private static readonly Drift SecondLook = new("shift", 1);
    private readonly double[] _confidenceEdges;

    public ClassifierModel Edge { get; }
    public ICloud Cloud { get; }
    public DeviceProfile Device { get; }
    public RadioLink Radio { get; }
    public CascadeOptions Options { get; }
    public float EdgeTemperature { get; }
    public IReadOnlyList<PayloadChoice> Payloads { get; }
    public PayloadChoice Payload { get; }
    public Observer? LookObserver { get; }
    public Observer CloudObserver { get; }
    public double EdgeJoules { get; }
    public ActionPrices Prices { get; }
    public IReadOnlyList<ReliabilityBin> EdgeReliability { get; }
    public IReadOnlyList<ReliabilityBin> CalibratedEdgeReliability { get; }
    /// <summary>The calibration examples' evidence and the cloud's replies to them: what policies are tuned on.</summary>
    public Dataset Calibration { get; }
    public IReadOnlyList<Evidence> CalibrationEvidence { get; }
    public IReadOnlyList<CloudReply> CalibrationReplies { get; }

    public Cascade(ClassifierModel edge, ICloud cloud, Dataset validation, DeviceProfile device, CascadeOptions options)
    {
        if (edge.Inputs != cloud.Inputs || edge.Classes != cloud.Classes)
            throw new ColdmindException($"The edge model takes {edge.Inputs} features and {edge.Classes} classes, the cloud model {cloud.Inputs} and {cloud.Classes}: they must serve the same task.");
        if (edge.Inputs != validation.FeatureCount || edge.Classes != validation.Classes)
            throw new ColdmindException($"The models take {edge.Inputs} features and {edge.Classes} classes; '{validation.Name}' has {validation.FeatureCount} and {validation.Classes}.");
        Radio = device.Radio ?? throw new ColdmindException($"Device '{device.Name}' has no radio in its profile; escalation needs one (add \"radio\" to a --device-file).");
        if (options.TopK is < 1 or > 255) throw new ColdmindException($"--top-k must be in 1..255, got {options.TopK}.");
        (Edge, Cloud, Device, Options) = (edge, cloud, device, options);
        int n = options.CalibrationExamples > 0 ? Math.Min(options.CalibrationExamples, validation.Count) : validation.Count;
        if (n < validation.Classes) throw new ColdmindException($"{n} validation examples for {validation.Classes} classes: too few to calibrate the cascade on.");
        Calibration = validation.Subset(Enumerable.Range(0, n).ToArray(), validation.Name + " (calibration)");

        int classes = edge.Classes;
        var logits = edge.Logits(Calibration);
        EdgeTemperature = Nn.Calibration.FitTemperature(logits, Calibration.Labels, classes);
        EdgeReliability = Nn.Calibration.Reliability(Nn.Calibration.Probabilities(logits, classes), Calibration.Labels, classes);
        CalibratedEdgeReliability = Nn.Calibration.Reliability(Nn.Calibration.Probabilities(logits, classes, EdgeTemperature), Calibration.Labels, classes);
        var confidence = Nn.Calibration.Probabilities(logits, classes, EdgeTemperature).Chunk(classes).Select(p => (double)p.Max()).Order().ToArray();
        _confidenceEdges = Enumerable.Range(1, ConfidenceBins - 1).Select(b => confidence[b * confidence.Length / ConfidenceBins]).ToArray();
        CalibrationEvidence = Observe(Calibration);
        var contexts = CalibrationEvidence.Select(e => e.Context).ToArray();
        if (CalibrationEvidence[0].SecondReport != null)
            LookObserver = Observer.Estimate("second look", CalibrationEvidence.Select(e => e.SecondReport!.Value).ToArray(), contexts, Calibration.Labels, classes, ConfidenceBins);

        // the payload: every encoding's cloud accuracy over the calibration examples, then the fewest bytes within tolerance of full precision
        var replies = new Dictionary<int, CloudReply[]>();
        var choices = new List<PayloadChoice>();
        foreach (int bits in Cognition.Payload.BitDepths)
        {
            var r = Enumerable.Range(0, n).Select(i => cloud.Ask(Request(Calibration, i, bits))).ToArray();
            if (r.Any(x => !x.Answered)) throw new ColdmindException("The cloud did not answer while the cascade was being calibrated; it must be reachable at the start.");
            replies[bits] = r;
            choices.Add(new PayloadChoice(bits, r.Average(x => x.BytesSent), r.Where((x, i) => x.Classes[0] == Calibration.Labels[i]).Count() / (double)n));
        }
        Payloads = choices;
        double full = choices.Single(c => c.Bits == 32).CloudAccuracy;
        Payload = choices.Where(c => c.CloudAccuracy >= full - options.PayloadTolerance).MinBy(c => c.MeanBytes)!;
        CalibrationReplies = replies[Payload.Bits];
        CloudObserver = Observer.Estimate("cloud", CalibrationReplies.Select(x => x.Classes[0]).ToArray(), contexts, Calibration.Labels, classes, ConfidenceBins);

        EdgeJoules = CostModel.Estimate(Workload.Of(edge), device).Joules;
        long replyBytes = 1 + 4L * Math.Min(options.TopK, classes);
        Prices = new ActionPrices(EdgeJoules, Radio.ExchangeJoules((long)Math.Ceiling(Payload.MeanBytes), replyBytes, device.IdleWatts), Payload.MeanBytes);
    }

    /// <summary>The escalation request for example <paramref name="i"/> at the chosen (or given) bit depth.</summary>
    public byte[] Request(Dataset data, int i, int? bits = null) =>
        Cognition.Payload.Encode(data.Features.AsSpan(i * data.FeatureCount, data.FeatureCount), bits ?? Payload.Bits, Options.TopK);

    /// <summary>The edge's calibrated posterior for every example, and its report on a second look (a one-pixel shift) for images when looking again is allowed.</summary>
    public IReadOnlyList<Evidence> Observe(Dataset data)
    {
        int classes = Edge.Classes;
        var first = Nn.Calibration.Probabilities(Edge.Logits(data), classes, EdgeTemperature);
        float[]? second = Options.Look && data.SampleShape is [_, >= 4, >= 4] ? Edge.Logits(SecondLook.Apply(data)) : null;
        return Enumerable.Range(0, data.Count).Select(i =>
        {
            var p = first.AsSpan(i * classes, classes).ToArray().Select(v => (double)v).ToArray();
            int top = TensorPrimitives.IndexOfMax<double>(p), bin = _confidenceEdges.Count(edge => p[top] >= edge);
            return new Evidence(p, top * ConfidenceBins + bin,
                second != null ? TensorPrimitives.IndexOfMax(second.AsSpan(i * classes, classes)) : null);
        }).ToArray();
    }

    public ExpectedFreeEnergyPolicy Efe(double joulesPerNat) =>
        new(LookObserver, CloudObserver, Prices, joulesPerNat, Options.ErrorNats, Options.Gamma, Options.Seed);

    /// <summary>Runs <paramref name="policy"/> over examples; <paramref name="ask"/> escalates example i.</summary>
    public CascadePoint Run(IEdgePolicy policy, IReadOnlyList<Evidence> evidence, IReadOnlyList<int> labels, Func<int, CloudReply> ask,
        Action<int, CascadeOutcome>? onOutcome = null)
    {
        int correct = 0, escalated = 0, looked = 0, fellBack = 0;
        double joules = 0, sent = 0, received = 0;
        for (int i = 0; i < evidence.Count; i++)
        {
            int index = i;
            var o = EdgeAgent.Run(policy, evidence[i], LookObserver, () => ask(index), EdgeJoules, Prices, Radio, Device.IdleWatts);
            onOutcome?.Invoke(i, o);
            if (o.Answer == labels[i]) correct++;
            if (o.Escalated) escalated++;
            if (o.Looked) looked++;
            if (o.FellBack) fellBack++;
            (joules, sent, received) = (joules + o.Joules, sent + o.BytesSent, received + o.BytesReceived);
        }
        double n = evidence.Count;
        return new CascadePoint(policy.Name, policy.Parameter, correct / n, escalated / n, looked / n, fellBack / n, joules / n, sent / n, received / n);
    }

    /// <summary>
    /// Both policies over their parameter: thresholds from 0 (always local) to above 1 (always escalate), and the
    /// EFE policy's joules per nat from a thousandth to a thousand times an escalation's joules.
    /// </summary>
    public (IReadOnlyList<CascadePoint> Threshold, IReadOnlyList<CascadePoint> Efe) Sweep(IReadOnlyList<Evidence> evidence, IReadOnlyList<int> labels, Func<int, CloudReply> ask)
    {
        double[] thresholds = [0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.01];
        var threshold = thresholds.Select(t => Run(new ThresholdPolicy(t), evidence, labels, ask)).ToArray();
        var efe = Enumerable.Range(0, 25).Select(k => Prices.EscalateJoules * Math.Pow(10, -3 + 0.25 * k))
            .Select(j0 => Run(Efe(j0), evidence, labels, ask)).ToArray();
        return (threshold, efe);
    }
}
