using Coldmind.Formats;
using Coldmind.Runtime.Lm;

namespace Coldmind.Tests;

/// <summary>
/// The transformer written out in float64 from the GGUF's dequantized weights, one token at a time with a plain
/// list as the KV cache: what the runtime's layers and logits are compared against.
/// </summary>
internal sealed class RuntimeReference
{
    private readonly ModelConfig _c;
    private readonly GgufFile _file;
    private readonly List<double[]>[] _keys, _values;

    public RuntimeReference(GgufFile file)
    {
        _file = file;
        _c = ModelConfig.FromGguf(file);
        _keys = Enumerable.Range(0, _c.Layers).Select(_ => new List<double[]>()).ToArray();
        _values = Enumerable.Range(0, _c.Layers).Select(_ => new List<double[]>()).ToArray();
    }

    private double[] W(string name) => _file.ReadFloats(_file.Tensor(name)).Select(v => (double)v).ToArray();

    private static double[] MatVec(double[] w, double[] x)
    {
        var y = new double[w.Length / x.Length];
        for (int r = 0; r < y.Length; r++)
            for (int c = 0; c < x.Length; c++) y[r] += w[r * x.Length + c] * x[c];
        return y;
    }

    private double[] Norm(double[] x, string weight)
    {
        var g = W(weight);
        double ms = x.Sum(v => v * v) / x.Length;
        return x.Select((v, i) => v / Math.Sqrt(ms + _c.RmsEpsilon) * g[i]).ToArray();
    }

    private double Scale(string name) => _file.Tensors.Any(t => t.Name == name + ".scale") ? W(name + ".scale")[0] : 1;

    private double[] Project(string name, double[] x) => MatVec(W(name + ".weight"), x).Select(v => v * Scale(name)).ToArray();

    private void Rope(double[] v, int heads, int pos)
    {
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < _c.RopeDimensions / 2; i++)
            {
                double angle = pos / Math.Pow(_c.RopeBase, 2.0 * i / _c.RopeDimensions);
                int k = h * _c.HeadDim + (_c.RopeNeox ? i : 2 * i), k2 = k + (_c.RopeNeox ? _c.RopeDimensions / 2 : 1);
                (v[k], v[k2]) = (v[k] * Math.Cos(angle) - v[k2] * Math.Sin(angle), v[k] * Math.Sin(angle) + v[k2] * Math.Cos(angle));
            }
    }

    /// <summary>One token at position pos: the residual after each layer, and the logits.</summary>
    public (List<double[]> Layers, double[] Logits) Step(int token, int pos)
    {
        int d = _c.EmbeddingLength, hd = _c.HeadDim;
        var x = W("token_embd.weight").Skip(token * d).Take(d).ToArray();
        var layers = new List<double[]>();
        for (int l = 0; l < _c.Layers; l++)
        {
            string p = $"blk.{l}.";
            var h = Norm(x, p + "attn_norm.weight");
            var q = Project(p + "attn_q", h);
            var k = Project(p + "attn_k", h);
            var v = Project(p + "attn_v", h);
            Rope(q, _c.Heads, pos);
            Rope(k, _c.KvHeads, pos);
            _keys[l].Add(k);
            _values[l].Add(v);
            var attention = new double[d];
            for (int head = 0; head < _c.Heads; head++)
            {
                int kvHead = head / (_c.Heads / _c.KvHeads);
                var scores = _keys[l].Select(kk => Enumerable.Range(0, hd).Sum(i => q[head * hd + i] * kk[kvHead * hd + i]) / Math.Sqrt(hd)).ToArray();
                double max = scores.Max();
                var e = scores.Select(s => Math.Exp(s - max)).ToArray();
                double total = e.Sum();
                for (int j = 0; j < e.Length; j++)
                    for (int i = 0; i < hd; i++) attention[head * hd + i] += e[j] / total * _values[l][j][kvHead * hd + i];
            }
            if (_c.Architecture == Architecture.BitNet) attention = Norm(attention, p + "attn_sub_norm.weight");
            var o = Project(p + "attn_output", attention);
            x = x.Select((val, i) => val + o[i]).ToArray();
            h = Norm(x, p + "ffn_norm.weight");
            var gate = Project(p + "ffn_gate", h);
            var up = Project(p + "ffn_up", h);
            var act = _c.SiluFeedForward
                ? gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray()
                : gate.Select((g, i) => Math.Max(g, 0) * Math.Max(g, 0) * up[i]).ToArray();
            if (_c.Architecture == Architecture.BitNet) act = Norm(act, p + "ffn_sub_norm.weight");
            var down = Project(p + "ffn_down", act);
            x = x.Select((val, i) => val + down[i]).ToArray();
            layers.Add(x);
        }
        var head0 = _file.Tensors.Any(t => t.Name == "output.weight") ? "output.weight" : "token_embd.weight";
        return (layers, MatVec(W(head0), Norm(x, "output_norm.weight")));
    }
}
