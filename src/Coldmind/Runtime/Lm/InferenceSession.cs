using Coldmind.Numerics;

namespace Coldmind.Runtime.Lm;

/// <summary>
/// One conversation with a <see cref="LanguageModel"/>: the KV cache (float32, layers × positions × KV
/// length for keys and for values) and the position reached. <see cref="Evaluate"/> runs a batch of tokens
/// through the model: a prompt as one batch (every projection a GEMM over the batch), then one token at a
/// time (GEMVs). Attention is causal over the cache, split over the worker pool by (token, head).
/// </summary>
public sealed class InferenceSession
{
    private readonly LanguageModel _model;
    private readonly float[][] _keys, _values;
    private readonly float[] _cos, _sin;
    private Buffers? _buffers;

    public int ContextLength { get; }
    public int Position { get; private set; }

    internal InferenceSession(LanguageModel model, int contextLength)
    {
        var c = model.Config;
        if (contextLength <= 0) throw new ColdmindException($"A context of {contextLength} tokens holds nothing.");
        _model = model;
        ContextLength = contextLength;
        _keys = new float[c.Layers][];
        _values = new float[c.Layers][];
        Reserve(Math.Min(contextLength, 256));
        // RoPE angles pos · base^(−2i / rot), as llama2.c and ggml's rope (NORM: adjacent pairs)
        int half = c.RopeDimensions / 2;
        _cos = new float[(long)contextLength * half];
        _sin = new float[(long)contextLength * half];
        for (int pos = 0; pos < contextLength; pos++)
            for (int i = 0; i < half; i++)
            {
                float angle = pos / MathF.Pow(c.RopeBase, 2f * i / c.RopeDimensions);
                _cos[pos * half + i] = MathF.Cos(angle);
                _sin[pos * half + i] = MathF.Sin(angle);
            }
    }

    /// <summary>Grows the cache to hold <paramref name="positions"/> (doubling, up to the context), so memory follows use.</summary>
    private void Reserve(int positions)
    {
        var c = _model.Config;
        if (_keys[0] != null && _keys[0].Length >= (long)positions * c.KvLength) return;
        int capacity = Math.Min(ContextLength, Math.Max(positions, 2 * (_keys[0]?.Length ?? 0) / c.KvLength));
        for (int l = 0; l < c.Layers; l++)
        {
            Array.Resize(ref _keys[l], capacity * c.KvLength);
            Array.Resize(ref _values[l], capacity * c.KvLength);
        }
    }

    /// <summary>Forgets the conversation (the cache is overwritten from position 0).</summary>
    public void Reset() => Position = 0;

    /// <summary>
    /// Runs <paramref name="tokens"/> at the next positions; returns the logits after the last one.
    /// <paramref name="onLayer"/>, when given, sees the residual stream (tokens × embedding) after each block.
    /// </summary>
    public float[] Evaluate(ReadOnlySpan<int> tokens, Action<int, float[]>? onLayer = null)
    {
        var c = _model.Config;
        int n = tokens.Length;
        if (n == 0) throw new ColdmindException("Nothing to evaluate: no tokens.");
        if (Position + n > ContextLength)
            throw new ColdmindException($"{Position + n} tokens do not fit the context of {ContextLength}; shorten the prompt or generate fewer tokens.");
        Reserve(Position + n);
        var b = _buffers is { } existing && existing.Tokens >= n ? existing : _buffers = new Buffers(c, n);
        int d = c.EmbeddingLength, kv = c.KvLength, ff = c.FeedForwardLength;
        var x = b.X.AsSpan(0, n * d);
        for (int i = 0; i < n; i++) _model.Embed(tokens[i], x.Slice(i * d, d));

        for (int l = 0; l < c.Layers; l++)
        {
            var w = _model.Layers[l];
            RmsNorm(x, w.AttentionNorm, b.H.AsSpan(0, n * d), c.RmsEpsilon);
            w.Query.Multiply(b.H.AsSpan(0, n * d), n, b.Q.AsSpan(0, n * d));
            var keys = _keys[l].AsSpan(Position * kv, n * kv);
            var values = _values[l].AsSpan(Position * kv, n * kv);
            w.Key.Multiply(b.H.AsSpan(0, n * d), n, keys);
            w.Value.Multiply(b.H.AsSpan(0, n * d), n, values);
            for (int i = 0; i < n; i++)
            {
                Rope(b.Q.AsSpan(i * d, d), c.Heads, Position + i);
                Rope(keys.Slice(i * kv, kv), c.KvHeads, Position + i);
            }
            Attend(l, n, b);
            if (w.AttentionSubNorm != null) RmsNorm(b.Attention.AsSpan(0, n * d), w.AttentionSubNorm, b.Attention.AsSpan(0, n * d), c.RmsEpsilon);
            w.Output.Multiply(b.Attention.AsSpan(0, n * d), n, b.H.AsSpan(0, n * d));
            TensorPrimitives.Add(x, b.H.AsSpan(0, n * d), x);

            RmsNorm(x, w.FeedForwardNorm, b.H.AsSpan(0, n * d), c.RmsEpsilon);
            var gate = b.Gate.AsSpan(0, n * ff);
            var up = b.Up.AsSpan(0, n * ff);
            w.Gate.Multiply(b.H.AsSpan(0, n * d), n, gate);
            w.Up.Multiply(b.H.AsSpan(0, n * d), n, up);
            if (c.SiluFeedForward)
            {
                var sigmoid = b.Sigmoid.AsSpan(0, n * ff); // silu(g) · u = g · σ(g) · u
                TensorPrimitives.Sigmoid(gate, sigmoid);
                TensorPrimitives.Multiply(gate, sigmoid, gate);
                TensorPrimitives.Multiply(gate, up, gate);
            }
            else
            {
                TensorPrimitives.Max(gate, 0f, gate); // relu(g)² · u
                TensorPrimitives.Multiply(gate, gate, gate);
                TensorPrimitives.Multiply(gate, up, gate);
            }
            if (w.FeedForwardSubNorm != null) RmsNorm(gate, w.FeedForwardSubNorm, gate, c.RmsEpsilon);
            w.Down.Multiply(gate, n, b.H.AsSpan(0, n * d));
            TensorPrimitives.Add(x, b.H.AsSpan(0, n * d), x);
            onLayer?.Invoke(l, x.ToArray());
        }
        Position += n;

        var last = b.H.AsSpan(0, d);
        RmsNorm(x.Slice((n - 1) * d, d), _model.OutputNorm, last, c.RmsEpsilon);
        var logits = new float[c.VocabSize];
        _model.OutputHead.Multiply(last, logits);
        return logits;
    }

    /// <summary>Each row of x (rows of weight.Length) scaled to unit RMS, times weight.</summary>
    private static void RmsNorm(ReadOnlySpan<float> x, float[] weight, Span<float> y, float eps)
    {
        int d = weight.Length;
        for (int r = 0; r < x.Length / d; r++)
        {
            var row = x.Slice(r * d, d);
            float scale = 1f / MathF.Sqrt(TensorPrimitives.Dot(row, row) / d + eps);
            TensorPrimitives.Multiply(row, scale, y.Slice(r * d, d));
            TensorPrimitives.Multiply(y.Slice(r * d, d), weight, y.Slice(r * d, d));
        }
    }

    /// <summary>
    /// Rotates the first RopeDimensions of each head by the angles of <paramref name="pos"/>: pairs (2i, 2i + 1)
    /// for llama (ggml's NORM), (i, i + rot/2) for bitnet (NEOX), as llama.cpp does for each architecture.
    /// </summary>
    private void Rope(Span<float> v, int heads, int pos)
    {
        var c = _model.Config;
        int half = c.RopeDimensions / 2, stride = c.RopeNeox ? 1 : 2, offset = c.RopeNeox ? half : 1;
        var cos = _cos.AsSpan(pos * half, half);
        var sin = _sin.AsSpan(pos * half, half);
        for (int h = 0; h < heads; h++)
        {
            var head = v.Slice(h * c.HeadDim, c.HeadDim);
            for (int i = 0; i < half; i++)
            {
                int j = stride * i;
                float a = head[j], b = head[j + offset];
                head[j] = a * cos[i] - b * sin[i];
                head[j + offset] = a * sin[i] + b * cos[i];
            }
        }
    }

    /// <summary>softmax(q·Kᵀ / √head_dim) V for every (token, head), causal over the cache.</summary>
    private void Attend(int layer, int n, Buffers b)
    {
        var c = _model.Config;
        int hd = c.HeadDim, group = c.Heads / c.KvHeads, kv = c.KvLength, d = c.EmbeddingLength, start = Position;
        float scale = 1f / MathF.Sqrt(hd);
        var keys = _keys[layer];
        var values = _values[layer];
        var q = b.Q;
        var output = b.Attention;
        int jobs = n * c.Heads, parts = Math.Min(WorkerPool.Shared.AvailableThreads, jobs);
        WorkerPool.Shared.Run(parts, part =>
        {
            var scores = new float[start + n];
            for (int job = part * jobs / parts; job < (part + 1) * jobs / parts; job++)
            {
                int i = job / c.Heads, h = job % c.Heads, kvHead = h / group, span = start + i + 1;
                var qh = q.AsSpan(i * d + h * hd, hd);
                for (int j = 0; j < span; j++) scores[j] = TensorPrimitives.Dot(qh, keys.AsSpan(j * kv + kvHead * hd, hd)) * scale;
                var s = scores.AsSpan(0, span);
                TensorPrimitives.SoftMax(s, s);
                var o = output.AsSpan(i * d + h * hd, hd);
                o.Clear();
                for (int j = 0; j < span; j++) TensorPrimitives.MultiplyAdd(values.AsSpan(j * kv + kvHead * hd, hd), s[j], o, o);
            }
        });
    }

    /// <summary>Activations for a batch of up to <see cref="Tokens"/> tokens, reused across calls.</summary>
    private sealed class Buffers(ModelConfig c, int tokens)
    {
        public int Tokens { get; } = tokens;
        public float[] X { get; } = new float[tokens * c.EmbeddingLength];
        public float[] H { get; } = new float[tokens * c.EmbeddingLength];
        public float[] Q { get; } = new float[tokens * c.EmbeddingLength];
        public float[] Attention { get; } = new float[tokens * c.EmbeddingLength];
        public float[] Gate { get; } = new float[tokens * c.FeedForwardLength];
        public float[] Up { get; } = new float[tokens * c.FeedForwardLength];
        public float[] Sigmoid { get; } = new float[tokens * c.FeedForwardLength];
    }
}
