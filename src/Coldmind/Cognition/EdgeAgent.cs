using Coldmind.Cost;
using Coldmind.Tensors;

namespace Coldmind.Cognition;

/// <summary>What an edge device can do about one input: answer with its belief, look again (another sensor window), or ask the cloud.</summary>
public enum EdgeAction { Answer, Look, Escalate }

/// <summary>The device's price of the actions beyond its first inference: joules of another look, and joules and bytes of one escalation.</summary>
public sealed record ActionPrices(double LookJoules, double EscalateJoules, double EscalateBytes);

/// <summary>Chooses the next action from the current belief over the classes and the context of the edge's first look (<see cref="Evidence.Context"/>).</summary>
public interface IEdgePolicy
{
    string Name { get; }
    /// <summary>What a sweep varies: the threshold, or the joules per nat.</summary>
    double Parameter { get; }
    EdgeAction Choose(ReadOnlySpan<double> belief, int context, bool canLook, bool canEscalate);
}

/// <summary>The usual cascade (FrugalGPT-style routers): answer when the top probability reaches the threshold, otherwise escalate; never looks again.</summary>
public sealed class ThresholdPolicy(double threshold) : IEdgePolicy
{
    public double Parameter => threshold;
    public string Name => $"threshold {threshold:G3}";

    public EdgeAction Choose(ReadOnlySpan<double> belief, int context, bool canLook, bool canEscalate) =>
        canEscalate && TensorPrimitives.Max(belief) < threshold ? EdgeAction.Escalate : EdgeAction.Answer;
}

/// <summary>
/// Active inference: each action's expected free energy, G(a) = risk + ambiguity, in nats, and the action drawn
/// from softmax(−γ G). The hidden state is the true class, the belief q(s) the calibrated posterior so far;
/// the outcomes the agent has preferences over are its answer being wrong (ln P̃(wrong) − ln P̃(right) =
/// −errorNats) and the joules it spends (ln P̃ falls by one nat every joulesPerNat joules, the policy's <see cref="Parameter"/>). So
/// <code>
/// G(answer)   = ρ · (1 − max q) + H[q]
/// G(look)     = E_look / J₀ + ρ · P(error | look)     + E_o H[q(· | o)]   (o: the second look's report)
/// G(escalate) = E_esc / J₀  + ρ · P(error | escalate) + E_o H[q(· | o)]   (o: the cloud's answer)
/// </code>
/// risk being the expected cost of the outcomes under the preferences, ambiguity the uncertainty about the class
/// that is expected to remain when the agent answers, predicted through each source's confusion matrix in the
/// context of the edge's first look (<see cref="Observer"/>). The first inference is already paid for, so answering costs no joules. A threshold
/// cascade sees only max q; this policy also weighs what an observation is expected to resolve against its price.
/// </summary>
public sealed class ExpectedFreeEnergyPolicy(Observer? look, Observer cloud, ActionPrices prices, double joulesPerNat, double errorNats = 4, double gamma = 32, ulong seed = 0) : IEdgePolicy
{
    private readonly Rng _rng = new(seed);

    public double Parameter => joulesPerNat;
    public string Name => $"efe J₀={joulesPerNat:G3}";

    /// <summary>G of answer, look and escalate (+∞ for an action not available).</summary>
    public double[] FreeEnergy(ReadOnlySpan<double> belief, int context, bool canLook, bool canEscalate)
    {
        var g = new double[3];
        g[(int)EdgeAction.Answer] = errorNats * (1 - TensorPrimitives.Max(belief)) + Observer.Entropy(belief);
        g[(int)EdgeAction.Look] = double.PositiveInfinity;
        g[(int)EdgeAction.Escalate] = double.PositiveInfinity;
        if (canLook && look != null)
        {
            var (error, entropy) = look.Predict(belief, context, answerIsReport: false);
            g[(int)EdgeAction.Look] = prices.LookJoules / joulesPerNat + errorNats * error + entropy;
        }
        if (canEscalate)
        {
            var (error, entropy) = cloud.Predict(belief, context, answerIsReport: true);
            g[(int)EdgeAction.Escalate] = prices.EscalateJoules / joulesPerNat + errorNats * error + entropy;
        }
        return g;
    }

    public EdgeAction Choose(ReadOnlySpan<double> belief, int context, bool canLook, bool canEscalate)
    {
        var g = FreeEnergy(belief, context, canLook, canEscalate);
        double min = g.Min(), total = 0;
        var p = g.Select(v => Math.Exp(-gamma * (v - min))).ToArray();
        foreach (double v in p) total += v;
        double u = _rng.NextDouble() * total;
        for (int a = 0; a < p.Length; a++)
        {
            u -= p[a];
            if (u < 0) return (EdgeAction)a;
        }
        return (EdgeAction)Array.IndexOf(g, min);
    }
}

/// <summary>The cloud's answer as the edge received it (no classes when none came), and the bytes the exchange took each way.</summary>
public sealed record CloudReply(int[] Classes, float[] Probabilities, long BytesSent, long BytesReceived)
{
    public bool Answered => Classes.Length > 0;

    /// <summary>No answer: the cloud could not be reached after <paramref name="sent"/> bytes went out (0 when the edge did not even try).</summary>
    public static CloudReply Unanswered(long sent) => new([], [], sent, 0);
}

/// <summary>
/// What the edge holds about one input: its calibrated posterior from the first look, the context the observers
/// are conditioned on (its first report and confidence bin: report × bins + bin), and the second look's report
/// when the sensor gives one.
/// </summary>
public sealed record Evidence(double[] First, int Context, int? SecondReport);

/// <summary>How one input ended: the answer, what it took, and whether the cloud was unreachable so the edge answered alone.</summary>
public sealed record CascadeOutcome(int Answer, bool Escalated, bool Looked, bool FellBack, double Joules, long BytesSent, long BytesReceived);

/// <summary>
/// Runs a policy on one input: the device's first inference, then actions until it answers. A second look updates
/// the belief by Bayes' rule through the look's <see cref="Observer"/>, the model the policy predicted it with.
/// </summary>
public static class EdgeAgent
{
    /// <param name="ask">sends the escalation request</param>
    /// <param name="edgeJoules">the device's first inference (the cost model's estimate)</param>
    public static CascadeOutcome Run(IEdgePolicy policy, Evidence evidence, Observer? look, Func<CloudReply> ask, double edgeJoules, ActionPrices prices, RadioLink radio, double idleWatts)
    {
        var belief = evidence.First;
        double joules = edgeJoules;
        bool looked = false, fellBack = false;
        long triedBytes = 0;
        while (true)
        {
            switch (policy.Choose(belief, evidence.Context, canLook: look != null && evidence.SecondReport != null && !looked, canEscalate: !fellBack))
            {
                case EdgeAction.Look:
                    belief = look!.Update(belief, evidence.Context, evidence.SecondReport!.Value);
                    joules += prices.LookJoules;
                    looked = true;
                    break;
                case EdgeAction.Escalate:
                    var reply = ask();
                    if (!reply.Answered)
                    {
                        if (reply.BytesSent > 0) joules += radio.ExchangeJoules(reply.BytesSent, 0, idleWatts); // it went out; nothing came back
                        triedBytes = reply.BytesSent;
                        fellBack = true;
                        break;
                    }
                    joules += radio.ExchangeJoules(reply.BytesSent, reply.BytesReceived, idleWatts);
                    return new CascadeOutcome(reply.Classes[0], true, looked, false, joules, reply.BytesSent, reply.BytesReceived);
                default:
                    return new CascadeOutcome(TensorPrimitives.IndexOfMax<double>(belief), false, looked, fellBack, joules, triedBytes, 0);
            }
        }
    }
}
