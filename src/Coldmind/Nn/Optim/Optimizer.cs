using System.Numerics;
using System.Runtime.InteropServices;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Nn.Optim;

/// <summary>Updates parameters from their gradients; the learning rate may be changed between steps (schedules).</summary>
public abstract class Optimizer(IReadOnlyList<Tensor> parameters, float learningRate)
{
    public IReadOnlyList<Tensor> Parameters { get; } = parameters;
    public float LearningRate { get; set; } = learningRate;

    public abstract void Step();

    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.ZeroGrad();
    }

    /// <summary>Scales all gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public float ClipGradNorm(float maxNorm)
    {
        double sq = 0;
        foreach (var p in Parameters)
            if (p.Grad != null) sq += TensorPrimitives.Dot(p.Grad, p.Grad);
        float norm = (float)Math.Sqrt(sq);
        if (norm > maxNorm && norm > 0)
        {
            float s = maxNorm / norm;
            foreach (var p in Parameters)
                if (p.Grad != null) TensorPrimitives.Multiply(p.Grad, s, p.Grad);
        }
        return norm;
    }
}

/// <summary>SGD with (optionally Nesterov) momentum and L2 weight decay, as torch.optim.SGD.</summary>
public sealed class Sgd(IReadOnlyList<Tensor> parameters, float learningRate, float momentum = 0.9f, float weightDecay = 0f, bool nesterov = false)
    : Optimizer(parameters, learningRate)
{
    private readonly float[][] _velocity = parameters.Select(p => new float[p.Numel]).ToArray();

    public override void Step()
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (p.Grad == null) continue;
            var w = p.Span;
            var g = p.Grad;
            var v = _velocity[i];
            if (weightDecay != 0) TensorPrimitives.MultiplyAdd(w, weightDecay, g, g);      // g += λw
            TensorPrimitives.MultiplyAdd(v, momentum, g, v);                               // v = μv + g
            if (nesterov) TensorPrimitives.MultiplyAdd(v, momentum, g, g);                 // g = g + μv
            else v.CopyTo(g.AsSpan());
            TensorPrimitives.MultiplyAdd(g, -LearningRate, w, w);                          // w -= lr·g
        }
    }
}

/// <summary>
/// AdamW (Loshchilov &amp; Hutter): Adam with decoupled weight decay, as torch.optim.AdamW. Large tensors
/// are updated in parallel on <paramref name="pool"/> (default: the shared pool).
/// </summary>
public sealed class AdamW(IReadOnlyList<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
    float eps = 1e-8f, float weightDecay = 0.01f, WorkerPool? pool = null) : Optimizer(parameters, learningRate)
{
    private readonly float[][] _m = parameters.Select(p => new float[p.Numel]).ToArray();
    private readonly float[][] _v = parameters.Select(p => new float[p.Numel]).ToArray();
    private int _t;

    public override void Step()
    {
        _t++;
        float c1 = 1f - MathF.Pow(beta1, _t), c2 = 1f - MathF.Pow(beta2, _t);
        float stepSize = LearningRate / c1, sqrtC2 = MathF.Sqrt(c2);
        float decay = 1f - LearningRate * weightDecay;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var p = Parameters[i];
            if (p.Grad == null) continue;
            var w = p.Span;
            var g = p.Grad;
            float[] m = _m[i], v = _v[i];
            // Element-wise, so splitting a large tensor over the pool changes no result bit.
            var workers = pool ?? WorkerPool.Shared;
            int parts = w.Length >= ParallelMinElements ? workers.Threads : 1;
            if (parts == 1) { Update(w, g, m, v, decay, stepSize, sqrtC2); continue; }
            int n = w.Length, chunk = (n / parts + 63) / 64 * 64;
            workers.Run(parts, part =>
            {
                int start = Math.Min(part * chunk, n), len = Math.Min(chunk, n - start);
                Update(p.Storage.AsSpan(p.Offset + start, len), g.AsSpan(start, len), m.AsSpan(start, len), v.AsSpan(start, len), decay, stepSize, sqrtC2);
            });
        }
    }

    private const int ParallelMinElements = 1 << 15;

    /// <summary>m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; w ← w·decay − stepSize·m / (√v/√c₂ + ε), vectorised.</summary>
    private void Update(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, float decay, float stepSize, float sqrtC2)
    {
        int j = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var b1 = new Vector<float>(beta1); var nb1 = new Vector<float>(1f - beta1);
            var b2 = new Vector<float>(beta2); var nb2 = new Vector<float>(1f - beta2);
            var dec = new Vector<float>(decay); var step = new Vector<float>(stepSize);
            var invC2 = new Vector<float>(1f / sqrtC2); var e = new Vector<float>(eps);
            var ws = MemoryMarshal.Cast<float, Vector<float>>(w);
            var gs = MemoryMarshal.Cast<float, Vector<float>>(g);
            var ms = MemoryMarshal.Cast<float, Vector<float>>(m);
            var vs = MemoryMarshal.Cast<float, Vector<float>>(v);
            for (int k = 0; k < ws.Length; k++)
            {
                var gk = gs[k];
                var mk = ms[k] = b1 * ms[k] + nb1 * gk;
                var vk = vs[k] = b2 * vs[k] + nb2 * gk * gk;
                ws[k] = ws[k] * dec - step * mk / (Vector.SquareRoot(vk) * invC2 + e);
            }
            j = ws.Length * Vector<float>.Count;
        }
        for (; j < w.Length; j++)
        {
            float gj = g[j];
            float mj = m[j] = beta1 * m[j] + (1f - beta1) * gj;
            float vj = v[j] = beta2 * v[j] + (1f - beta2) * gj * gj;
            w[j] = w[j] * decay - stepSize * mj / (MathF.Sqrt(vj) * (1f / sqrtC2) + eps);
        }
    }
}

/// <summary>Linear warm-up from 0 to the peak rate, then cosine decay to <see cref="MinFraction"/> of it.</summary>
public sealed record CosineSchedule(float PeakRate, int TotalSteps, int WarmupSteps = 0, float MinFraction = 0f)
{
    public float At(int step)
    {
        if (step < WarmupSteps) return PeakRate * (step + 1) / WarmupSteps;
        int span = Math.Max(1, TotalSteps - WarmupSteps);
        double progress = Math.Min(1.0, (double)(step - WarmupSteps) / span);
        return (float)(PeakRate * (MinFraction + (1 - MinFraction) * 0.5 * (1 + Math.Cos(Math.PI * progress))));
    }
}
