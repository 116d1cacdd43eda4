using System.Globalization;
using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// How training examples are spread over nodes: <c>iid</c> (shuffled, equal shares); <c>dirichlet:α</c> (each class's
/// examples split over the nodes in proportions drawn from Dirichlet(α), as Hsu et al. 2019: small α, few classes
/// a node); <c>classes:k</c> (each node holds k classes, each class's examples split over the nodes holding it).
/// </summary>
public sealed record Partition(string Kind, double Parameter)
{
    public static Partition Parse(string spec)
    {
        string s = spec.Trim().ToLowerInvariant();
        if (s == "iid") return new("iid", 0);
        int colon = s.IndexOf(':');
        if (colon > 0 && double.TryParse(s.AsSpan(colon + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double p))
        {
            string kind = s[..colon];
            if (kind == "dirichlet" && p > 0 && double.IsFinite(p)) return new(kind, p);
            if (kind == "classes" && p >= 1 && p == Math.Floor(p)) return new(kind, p);
        }
        throw new ColdmindException($"--partition takes iid, dirichlet:α (α > 0, e.g. dirichlet:0.5) or classes:k (k ≥ 1), got '{spec}'.");
    }

    public override string ToString() => Kind == "iid" ? "iid" : string.Create(CultureInfo.InvariantCulture, $"{Kind}:{Parameter:G}");

    /// <summary>Indices into <paramref name="data"/> for each of <paramref name="nodes"/> nodes; every example goes to exactly one node.</summary>
    public int[][] Split(Dataset data, int nodes, Rng rng)
    {
        if (nodes < 1) throw new ColdmindException($"--nodes must be at least 1, got {nodes}.");
        var shards = Enumerable.Range(0, nodes).Select(_ => new List<int>()).ToArray();
        if (Kind == "iid")
        {
            var order = Enumerable.Range(0, data.Count).ToArray();
            rng.Shuffle(order.AsSpan());
            for (int i = 0; i < order.Length; i++) shards[i % nodes].Add(order[i]);
            return shards.Select(s => s.ToArray()).ToArray();
        }
        var byClass = Enumerable.Range(0, data.Classes).Select(_ => new List<int>()).ToArray();
        for (int i = 0; i < data.Count; i++) byClass[data.Labels[i]].Add(i);
        int k = Kind == "classes" ? Math.Min((int)Parameter, data.Classes) : 0;
        // classes:k: node n holds classes n·k … n·k+k−1 (mod C) after a seeded shuffle of the classes, so every class has holders
        var classOrder = Enumerable.Range(0, data.Classes).ToArray();
        rng.Shuffle(classOrder.AsSpan());
        var holders = Enumerable.Range(0, data.Classes).Select(_ => new List<int>()).ToArray();
        if (k > 0)
            for (int n = 0; n < nodes; n++)
                for (int j = 0; j < k; j++) holders[classOrder[(n * k + j) % data.Classes]].Add(n);
        for (int c = 0; c < data.Classes; c++)
        {
            var members = byClass[c].ToArray();
            rng.Shuffle(members.AsSpan());
            double[] share;
            int[] owners;
            if (k > 0)
            {
                owners = holders[c].Count > 0 ? [.. holders[c]] : [rng.NextInt(nodes)];
                share = Enumerable.Repeat(1.0 / owners.Length, owners.Length).ToArray();
            }
            else
            {
                owners = Enumerable.Range(0, nodes).ToArray();
                share = Dirichlet(rng, Parameter, nodes);
            }
            // cumulative shares → cut points, so rounding never loses or duplicates an example
            double cumulative = 0;
            int start = 0;
            for (int o = 0; o < owners.Length; o++)
            {
                cumulative += share[o];
                int end = o == owners.Length - 1 ? members.Length : (int)Math.Round(cumulative * members.Length);
                for (int i = start; i < end; i++) shards[owners[o]].Add(members[i]);
                start = Math.Max(start, end);
            }
        }
        return shards.Select(s => s.ToArray()).ToArray();
    }

    private static double[] Dirichlet(Rng rng, double alpha, int n)
    {
        var g = new double[n];
        double sum = 0;
        for (int i = 0; i < n; i++) sum += g[i] = Gamma(rng, alpha);
        if (sum <= 0) { g[rng.NextInt(n)] = 1; return g; }
        for (int i = 0; i < n; i++) g[i] /= sum;
        return g;
    }

    /// <summary>Gamma(α, 1) by Marsaglia and Tsang (2000); for α &lt; 1 through Gamma(α + 1) · U^(1/α).</summary>
    internal static double Gamma(Rng rng, double alpha)
    {
        if (alpha < 1) return Gamma(rng, alpha + 1) * Math.Pow(1 - rng.NextDouble(), 1 / alpha);
        double d = alpha - 1.0 / 3, c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double x, v;
            do { x = rng.NextNormal(); v = 1 + c * x; } while (v <= 0);
            v = v * v * v;
            double u = 1 - rng.NextDouble();
            if (Math.Log(u) < 0.5 * x * x + d - d * v + d * Math.Log(v)) return d * v;
        }
    }
}
